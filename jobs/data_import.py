"""`data-import`: a CSV, Parquet or JSON file (a path or a URL) into the project's datasets."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field

from fabric import runtime
from fabric.runtime import names

FORMATS = ("csv", "parquet", "json", "jsonl")


class Params(BaseModel):
    source: str = Field(description="a file path or an http(s) URL to read")
    name: str = Field(
        pattern=names.NAME_PATTERN,
        description="the dataset's name: it becomes datasets/NAME.parquet in the project",
    )
    format: Literal["auto", "csv", "parquet", "json", "jsonl"] = Field(
        default="auto", description="how to read the source; auto goes by its extension"
    )
    delimiter: str = Field(default=",", min_length=1, description="the CSV field separator")


def _format(params: Params) -> str:
    if params.format != "auto":
        return params.format
    suffix = PurePosixPath(urlparse(params.source).path).suffix.lower().lstrip(".")
    suffix = {"pq": "parquet", "ndjson": "jsonl", "tsv": "csv"}.get(suffix, suffix)
    if suffix not in FORMATS:
        raise SystemExit(
            f"data-import: cannot tell the format of {params.source!r}; pass --format "
            f"({', '.join(FORMATS)})"
        )
    return suffix


def run(params: Params) -> dict[str, Any]:
    import pandas as pd

    kind = _format(params)
    if kind == "csv":
        frame = pd.read_csv(params.source, sep=params.delimiter)
    elif kind == "parquet":
        frame = pd.read_parquet(params.source)
    else:
        frame = pd.read_json(params.source, lines=kind == "jsonl")
    # Parquet needs text column names; JSON arrays of arrays have numbers.
    frame.columns = [str(column) for column in frame.columns]
    target = runtime.project_dir() / "datasets" / f"{params.name}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target, index=False)
    runtime.report_metrics(rows=len(frame), columns=len(frame.columns))
    return {
        "dataset_uri": str(target),
        "rows": len(frame),
        "columns": list(frame.columns),
    }


TEMPLATE = runtime.Template(
    name="data-import",
    group="data",
    description="Read a CSV, Parquet or JSON file from a path or URL into the project's "
    "storage as a Parquet dataset.",
    params=Params,
    run=run,
    resources={"cpu": 1.0},
    outputs={
        "dataset_uri": "the Parquet file written",
        "rows": "how many rows it holds",
        "columns": "its column names",
    },
)

if __name__ == "__main__":
    TEMPLATE.main()
