"""`builtin:example`, the `hpo` template's trial code for trying things out and for tests:
NNI-style, so it also shows what a user's trial code looks like.

Its score is 1 at x=0.3, lr=0.01, layers=3, activation=relu (each parameter the search
space leaves out counts as at its best), lower the farther away. Each iteration reports
a point of a learning curve rising to that score, which ranks trials at every iteration as
at the end, and saves the iteration reached so that PBT can continue a trial from it.

    FABRIC_TRIAL_PARAMETERS='{"x": 0.5}' python -m jobs._hpo_example --iterations 5
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from fabric import runtime as nni

OPTIMUM = {"x": 0.3, "lr": 0.01, "layers": 3, "activation": "relu"}
STATE_FILE = "state.json"


def score(params: dict[str, Any]) -> float:
    """1 at the optimum; the distance from it in each parameter given lowers it."""
    best = {**OPTIMUM, **params}
    return (
        1.0
        - (best["x"] - 0.3) ** 2
        - 0.1 * (math.log10(best["lr"]) + 2) ** 2
        - 0.05 * (best["layers"] - 3) ** 2
        - (0.0 if best["activation"] == "relu" else 0.1)
    )


def _resumed_iteration() -> int:
    folder = nni.load_checkpoint()
    return json.loads((folder / STATE_FILE).read_text())["iteration"] if folder else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=10, help="results to report")
    parser.add_argument("--seconds", type=float, default=0.0, help="each iteration's work")
    args = parser.parse_args()
    params = nni.get_next_parameter()
    final = score(params)
    with tempfile.TemporaryDirectory() as state:
        for iteration in range(_resumed_iteration() + 1, args.iterations + 1):
            time.sleep(args.seconds)
            value = final - 0.5**iteration
            (Path(state) / STATE_FILE).write_text(json.dumps({"iteration": iteration}))
            result = {"default": value, "loss": 1 - value, "iteration": iteration}
            nni.report_intermediate_result(result, state)
    nni.report_final_result({"default": final, "loss": 1 - final, "iteration": args.iterations})
    print(f"trial {nni.get_trial_id()} ({nni.get_sequence_id()}): {final:.4f}", flush=True)


if __name__ == "__main__":
    main()
