"""Small tables the template tests make for themselves."""

from __future__ import annotations

import pandas as pd


def points(rows: int = 200) -> pd.DataFrame:
    """A class that two columns separate, and a number nearly linear in them."""
    x = [float(i % 20) for i in range(rows)]
    z = [float((i * 7) % 11) for i in range(rows)]
    frame = pd.DataFrame({"x": x, "z": z, "noise": [float((i * 13) % 5) for i in range(rows)]})
    frame["label"] = (frame["x"] + frame["z"] > 14).astype(int)
    frame["y"] = 3.0 * frame["x"] + 2.0 * frame["z"] + frame["noise"]
    return frame
