"""`feature-process`: fit feature transforms (scaling, one-hot, hashing, bucketing) on a train
split, save them, and apply the same fitted transforms to every split with Ray Data."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from fabric import runtime
from fabric.runtime import names
from jobs import _data

NAME = "feature-process"
PREPROCESSOR_FILE = "preprocessor.joblib"
COLUMNS_FILE = "preprocessor.json"


class Params(BaseModel):
    train: str = Field(
        description="the Parquet file or folder the transforms are fitted on (its columns "
        "to transform are read whole into the job's driver), e.g. data-process's train_uri"
    )
    validation: str | None = Field(
        default=None, description="a Parquet split transformed as fitted on train, if any"
    )
    test: str | None = Field(
        default=None, description="another Parquet split transformed as fitted on train, if any"
    )
    name: str = Field(
        pattern=names.NAME_PATTERN,
        description="the result's name: the folder datasets/NAME/ holds train/, validation/ "
        "and test/",
    )
    standard: list[str] = Field(
        default_factory=list, description="numeric columns scaled to mean 0 and variance 1"
    )
    min_max: list[str] = Field(
        default_factory=list, description="numeric columns scaled to the range 0 to 1"
    )
    one_hot: list[str] = Field(
        default_factory=list,
        description="category columns turned into one 0/1 column per value seen in train "
        "(COLUMN_VALUE); values not seen in train are all zeros",
    )
    hashing: list[str] = Field(
        default_factory=list,
        description="category columns (many values) hashed into hash_features 0/1 columns "
        "each (COLUMN_hashN); needs no vocabulary, so unseen values still land somewhere",
    )
    hash_features: int = Field(
        default=16, ge=2, le=4096, description="how many columns each hashed column becomes"
    )
    buckets: list[str] = Field(
        default_factory=list,
        description="numeric columns replaced by their bucket number (0 to n_buckets - 1)",
    )
    n_buckets: int = Field(default=5, ge=2, le=1000, description="how many buckets per column")
    bucket_strategy: Literal["quantile", "uniform"] = Field(
        default="quantile",
        description="quantile: about as many train rows in each bucket; uniform: equal widths",
    )
    drop: list[str] = Field(
        default_factory=list, description="columns left out; the others pass through unchanged"
    )

    @model_validator(mode="after")
    def _each_column_once(self) -> Params:
        named = [*self.standard, *self.min_max, *self.one_hot, *self.hashing, *self.buckets]
        twice = sorted({c for c in named + self.drop if (named + self.drop).count(c) > 1})
        if twice:
            raise ValueError(f"a column may take one transform only: {', '.join(twice)}")
        if not named:
            raise ValueError("name at least one column to transform")
        return self

    def transformed(self) -> list[str]:
        return [*self.standard, *self.min_max, *self.one_hot, *self.hashing, *self.buckets]


def _transformer(params: Params) -> Any:
    """An unfitted scikit-learn ColumnTransformer of every transform asked for."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.preprocessing import KBinsDiscretizer, MinMaxScaler, OneHotEncoder, StandardScaler

    steps: list[tuple[str, Any, Any]] = []
    if params.standard:
        steps.append(("standard", StandardScaler(), params.standard))
    if params.min_max:
        steps.append(("min_max", MinMaxScaler(), params.min_max))
    if params.one_hot:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        steps.append(("one_hot", encoder, params.one_hot))
    for column in params.hashing:
        # Each value whole is one token (str of it, so numbers and None hash too).
        hasher = HashingVectorizer(
            n_features=params.hash_features,
            preprocessor=str,
            token_pattern=r"(?s).+",
            # scikit-learn has no type hints: pyright takes the default's type ("l2") for it.
            norm=None,  # pyright: ignore[reportArgumentType]
            alternate_sign=False,
            binary=True,
        )
        steps.append((f"hash_{column}", hasher, column))
    if params.buckets:
        bucketer = KBinsDiscretizer(
            n_bins=params.n_buckets,
            encode="ordinal",
            strategy=params.bucket_strategy,
            quantile_method="averaged_inverted_cdf",
        )
        steps.append(("buckets", bucketer, params.buckets))
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0)


def _names(fitted: Any, params: Params) -> list[str]:
    """The fitted transformer's output columns, in order (hashers name none of their own)."""
    names: list[str] = []
    for step, transformer, columns in fitted.transformers_:
        if step == "remainder":
            continue
        if step.startswith("hash_"):
            names += [f"{columns}_hash{i}" for i in range(params.hash_features)]
        elif step == "one_hot":
            names += list(transformer.get_feature_names_out(columns))
        else:
            names += list(columns)
    return names


def _apply(fitted: Any, names: list[str], passthrough: list[str]) -> Any:
    def apply(frame: Any) -> Any:
        import pandas as pd

        # Ray's batches hold read-only Arrow-backed columns; some transformers write in place.
        inputs = pd.DataFrame({c: frame[c].to_numpy(copy=True) for c in fitted.feature_names_in_})
        values = fitted.transform(inputs)
        values = pd.DataFrame(values, columns=names, index=frame.index)
        return pd.concat([frame[passthrough], values], axis=1)

    return apply


def run(params: Params) -> dict[str, Any]:
    import joblib
    import pandas as pd
    import ray.data

    splits = {"train": params.train, "validation": params.validation, "test": params.test}
    splits = {split: path for split, path in splits.items() if path}
    wanted = [*params.transformed(), *params.drop]
    columns = {}
    for split, path in splits.items():
        columns[split] = _data.parquet_columns(NAME, path)
        _data.check_columns(NAME, wanted, columns[split], f"the {split} split ({path})")
    passthrough = [c for c in columns["train"] if c not in wanted]

    train = pd.read_parquet(params.train, columns=params.transformed())
    try:
        fitted = _transformer(params).fit(train)
    except ValueError as exc:
        raise SystemExit(f"{NAME}: cannot fit on {params.train}: {exc}") from None
    names = _names(fitted, params)
    preprocessor = runtime.run_dir() / PREPROCESSOR_FILE
    joblib.dump(fitted, preprocessor)
    features = [*passthrough, *names]
    sidecar = {"input_columns": params.transformed(), "output_columns": names}
    (runtime.run_dir() / COLUMNS_FILE).write_text(json.dumps(sidecar))
    print(f"{NAME}: fitted on {len(train)} train rows: {len(names)} columns", flush=True)

    _data.start_ray()
    target = _data.datasets_dir() / params.name
    staged = _data.staging(target)
    outputs: dict[str, Any] = {}
    for split, path in splits.items():
        source = ray.data.read_parquet(path, **_data.read_options())
        part = source.map_batches(
            _apply(fitted, names, passthrough), batch_format="pandas", **_data.map_options()
        )
        outputs[f"{split}_rows"] = _data.write_parquet(part, staged / split)
        outputs[f"{split}_uri"] = str(target / split)
    _data.replace(staged, target)
    runtime.report_metrics(**{k: v for k, v in outputs.items() if k.endswith("_rows")})
    return {
        **outputs,
        "dataset_uri": outputs["train_uri"],
        "preprocessor_uri": str(preprocessor),
        "features": features,
        "transformed_features": names,
    }


TEMPLATE = runtime.Template(
    name=NAME,
    group="data",
    description="Fit feature transforms on a train split (standard or min-max scaling, "
    "one-hot, hashing, bucketing), save the fitted scikit-learn transformer, and apply it to "
    "the train, validation and test splits with Ray Data.",
    params=Params,
    run=run,
    resources={"cpu": 0.25},
    outputs={
        "dataset_uri": "the transformed train split (Parquet folder)",
        "train_uri": "the transformed train split; also validation_uri and test_uri when given",
        "train_rows": "rows in each transformed split (also validation_rows, test_rows)",
        "preprocessor_uri": "the fitted scikit-learn ColumnTransformer (joblib): its "
        "transform(rows) gives transformed_features, in order",
        "features": "the transformed datasets' columns: passed-through ones, then transformed",
        "transformed_features": "the columns the preprocessor outputs, in order",
    },
    workers=2,
    worker_resources={"cpu": 0.5},
)

if __name__ == "__main__":
    TEMPLATE.main()
