"""What a fresh Python process loads: code that runs in Ray workers must stay light."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_after(statement: str, modules: set[str]) -> list[str]:
    """Those of `modules` that a new interpreter has imported once it ran `statement`."""
    code = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps(sorted(set({sorted(modules)!r}) & set(sys.modules))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)
