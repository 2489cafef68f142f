"""`data-process`: clean and reshape a Parquet dataset with Ray Data, split it, and write each
split as a Parquet dataset in the project's `datasets/`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from fabric import runtime
from fabric.runtime import names
from jobs import _data

NAME = "data-process"
SPLITS = ("train", "validation", "test")
SPLIT_COLUMN = "__fabric_split"
# pandas' nullable types, so a cast keeps missing values missing instead of failing.
CASTS = {"int": "Int64", "float": "Float64", "str": "string", "bool": "boolean"}


class Params(BaseModel):
    dataset: str = Field(
        description="a Parquet file or folder, e.g. data-import's or data-process's dataset_uri"
    )
    name: str = Field(
        pattern=names.NAME_PATTERN,
        description="the result's name: it becomes the folder datasets/NAME in the project "
        "(with train/, validation/ and test/ inside when the data is split)",
    )
    fill_na: dict[str, bool | int | float | str] = Field(
        default_factory=dict,
        description='missing values to fill, by column, e.g. {"age": 0, "city": "unknown"}',
    )
    casts: dict[str, Literal["int", "float", "str", "bool", "datetime"]] = Field(
        default_factory=dict,
        description='types to convert columns to, by column, e.g. {"age": "int"}; '
        "missing values stay missing",
    )
    derive: dict[str, str] = Field(
        default_factory=dict,
        description="new (or replaced) columns, by name, each computed by an expression, in "
        f"order (a later one may read an earlier one). Expression grammar: {_data.GRAMMAR}",
    )
    filter: str | None = Field(
        default=None,
        description="keep only the rows where this expression is true, e.g. "
        f"\"age >= 18 and city != 'Paris'\". Grammar: {_data.GRAMMAR}",
    )
    columns: list[str] | None = Field(
        default=None,
        min_length=1,
        description="the columns to keep, in this order (derived ones included); all if not given",
    )
    validation_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="the share of rows for the validation split"
    )
    test_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="the share of rows for the test split"
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=10**16 - 1,
        description="seeds the split: each row goes to a split by a seeded hash of its values, "
        "so the same data and seed always split the same way (identical rows stay together)",
    )

    @model_validator(mode="after")
    def _some_rows_train(self) -> Params:
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError("validation_fraction + test_fraction must leave rows to train on")
        return self


def _plan(params: Params, columns: list[str]) -> tuple[list[_data.Expression], Any]:
    """Every expression parsed and every column name checked before any data is read."""
    _data.check_columns(NAME, params.fill_na, columns, "fill_na")
    _data.check_columns(NAME, params.casts, columns, "casts")
    known = list(columns)
    derived = []
    for column, text in params.derive.items():
        expression = _expression(text, f"derive.{column}")
        _data.check_columns(NAME, expression.columns, known, f"derive.{column}")
        derived.append(expression)
        known += [column] if column not in known else []
    keep = _expression(params.filter, "filter") if params.filter else None
    if keep:
        _data.check_columns(NAME, keep.columns, known, "filter")
    _data.check_columns(NAME, params.columns or [], known, "columns")
    return derived, keep


def _expression(text: str, where: str) -> _data.Expression:
    try:
        return _data.Expression(text)
    except _data.ExpressionError as exc:
        raise SystemExit(f"{NAME}: {where}: {exc}") from None


def _process(params: Params, derived: list[_data.Expression], keep: Any) -> Any:
    """The function Ray Data runs on each batch (a pandas DataFrame)."""
    fractions = [1 - params.validation_fraction - params.test_fraction, params.validation_fraction]
    split = params.validation_fraction + params.test_fraction > 0

    def process(frame: Any) -> Any:
        import numpy as np
        import pandas as pd

        frame = frame.fillna(params.fill_na) if params.fill_na else frame
        for column, kind in params.casts.items():
            try:
                if kind == "datetime":
                    frame[column] = pd.to_datetime(frame[column])
                else:
                    frame[column] = frame[column].astype(CASTS[kind])
            except (ValueError, TypeError) as exc:
                raise _data.BadData(
                    f"{NAME}: cannot cast column {column} to {kind}: {exc}"
                ) from None
        for column, expression in zip(params.derive, derived, strict=True):
            frame[column] = expression.evaluate(frame)
        if keep is not None:
            frame = frame[keep.evaluate(frame).fillna(False).astype(bool)]
        if params.columns:
            frame = frame[params.columns]
        if split:
            hashes = pd.util.hash_pandas_object(frame, index=False, hash_key=f"{params.seed:016d}")
            share = hashes.to_numpy() / 2.0**64
            frame = frame.assign(**{SPLIT_COLUMN: np.digitize(share, np.cumsum(fractions))})
        return frame

    return process


def _only(split: int) -> Any:
    def only(frame: Any) -> Any:
        return frame[frame[SPLIT_COLUMN] == split].drop(columns=SPLIT_COLUMN)

    return only


def run(params: Params) -> dict[str, Any]:
    import ray.data

    source_columns = _data.parquet_columns(NAME, params.dataset)
    derived, keep = _plan(params, source_columns)
    _data.start_ray()
    options = _data.map_options()
    source = ray.data.read_parquet(params.dataset, **_data.read_options())
    processed = source.map_batches(
        _process(params, derived, keep), batch_format="pandas", **options
    )
    target = _data.datasets_dir() / params.name
    parts = {"dataset": processed}
    shares = {"train": 1, "validation": params.validation_fraction, "test": params.test_fraction}
    if params.validation_fraction + params.test_fraction > 0:
        # Computed once, then each split picked out of it.
        processed = _data.materialize(processed)
        parts = {
            name: processed.map_batches(_only(index), batch_format="pandas", **options)
            for index, name in enumerate(SPLITS)
            if shares[name] > 0
        }
    outputs: dict[str, Any] = {}
    staging = _data.staging(target)
    for name, part in parts.items():
        folder = staging / name if len(parts) > 1 else staging
        outputs[f"{name}_rows"] = _data.write_parquet(part, folder)
        outputs[f"{name}_uri"] = str(target / name if len(parts) > 1 else target)
        print(f"{NAME}: {name}: {outputs[f'{name}_rows']} rows", flush=True)
    written = staging / "train" if len(parts) > 1 else staging
    outputs["columns"] = _data.parquet_columns(NAME, str(written))
    _data.replace(staging, target)
    outputs["dataset_uri"] = outputs.get("train_uri", outputs.get("dataset_uri"))
    outputs["rows"] = sum(outputs[f"{name}_rows"] for name in parts)
    runtime.report_metrics(**{k: v for k, v in outputs.items() if k.endswith("rows")})
    return outputs


TEMPLATE = runtime.Template(
    name=NAME,
    group="data",
    description="Clean and reshape a Parquet dataset with Ray Data (fill missing values, cast "
    "types, derive columns and filter rows by expressions, select columns), optionally split "
    "it into train/validation/test, and write each as a Parquet dataset in the project.",
    params=Params,
    run=run,
    resources={"cpu": 0.25},
    outputs={
        "dataset_uri": "the processed dataset: its train split when split",
        "train_uri": "the train split's Parquet folder (when split)",
        "validation_uri": "the validation split's Parquet folder (when asked for)",
        "test_uri": "the test split's Parquet folder (when asked for)",
        "rows": "rows written in all",
        "train_rows": "rows in each split (also validation_rows, test_rows; dataset_rows "
        "when not split)",
        "columns": "the result's column names",
    },
    workers=2,
    worker_resources={"cpu": 0.5},
)

if __name__ == "__main__":
    TEMPLATE.main()
