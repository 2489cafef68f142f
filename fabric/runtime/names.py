"""The rule for the names users give jobs, models and datasets. The server checks it
(`fabric.names`) and so do the templates on Ray (a dataset's name becomes the folder
`datasets/NAME`, a model's `models/NAME`), so it is written here, where both may read it.
"""

from __future__ import annotations

# Unanchored, to be part of larger patterns (`NAME@VERSION`).
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
NAME_PATTERN = rf"^{NAME}$"
