"""What the gradient-boosting templates share (`jobs/xgboost.py`, `jobs/lightgbm.py`): one flow
from a Parquet dataset to a saved, scored booster, around the few steps each library takes its
own way.

The driver splits the dataset as the scikit-learn templates do, Ray Train's workers boost on
their shards (each round's validation loss reaching the job's metrics), and the driver saves
the booster under the file name `fabric.runtime.model_files` looks for and scores it on the
held-out rows. Each template declares its parameters (on top of `Boosting`) and a `Library`:
its parameters and objectives in the library's own words, the loop its workers run, and the
steps that need the library, which import it when called. Private (the registry skips modules
starting with `_`) and light at import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field

from fabric import runtime
from fabric.runtime import model_files
from jobs import _ray, _tabular, _train

if TYPE_CHECKING:
    import pandas as pd
    from ray.train import Checkpoint


class Boosting(_train.Tabular):
    """Parameters of a gradient-boosting template: a tabular template's, and how many trees."""

    num_boost_round: int = Field(default=100, ge=1, le=100000, description="how many trees")


@dataclass(frozen=True)
class Objectives:
    """The objective and evaluation metric a library names for each kind of target."""

    regression: dict[str, str]
    binary: dict[str, str]
    multiclass: dict[str, str]

    def of(self, task: str, classes: list[Any]) -> dict[str, Any]:
        """For a number, two classes, or more (whose count the library is told)."""
        if task == "regression":
            return dict(self.regression)
        if len(classes) == 2:
            return dict(self.binary)
        return {**self.multiclass, "num_class": len(classes)}


@dataclass(frozen=True)
class Library:
    """A boosting library as its template drives it."""

    # The template's name, and the framework its model is saved and loaded as.
    name: str
    # The library as the template's description names it.
    title: str
    # The template's parameters in the library's words (objectives aside).
    settings: Callable[[Any], dict[str, Any]]
    objectives: Objectives
    # On each worker: boost on its shards of "train" and "validation" (`examples`) with the
    # settings in `config["booster"]` for `config["num_boost_round"]` rounds, reporting each
    # round's validation loss and checkpointing the booster at the end.
    train_loop: Callable[[dict[str, Any]], None]
    # Ray Train's trainer class for the library.
    trainer: Callable[[], Callable[..., Any]]
    # The booster the workers checkpointed.
    checkpointed: Callable[[Checkpoint], Any]
    # The booster's output for a frame of features: a number, P(class 1), or one per class.
    predict: Callable[[Any, Any], Any]

    @property
    def model_file(self) -> str:
        """The booster's file, named as `fabric.runtime.model_files` looks for it."""
        return model_files.FILES[self.name]


def template(params: type[Boosting], library: Library) -> runtime.Template:
    """The template that trains with `library`, on two workers unless the job asks otherwise."""

    def run(values: Any) -> dict[str, Any]:
        return _fit(library, values)

    return runtime.Template(
        name=library.name,
        group=_train.GROUP,
        description=(
            f"Train gradient-boosted trees with {library.title} on Ray Train workers on a "
            "Parquet dataset, evaluate them on a held-out validation split, and save the model "
            f"({library.model_file})."
        ),
        params=params,
        run=run,
        resources=_train.DRIVER_RESOURCES,
        outputs={
            **_train.TABULAR_OUTPUTS,
            "model_uri": f"the saved booster ({library.title}'s {library.model_file})",
            "classes": "the class of each predicted index (classification)",
        },
        workers=2,
        worker_resources={"cpu": 1.0},
    )


def examples(frame: pd.DataFrame, config: dict[str, Any]) -> tuple[Any, Any]:
    """Inside a worker: a shard's features, and its labels as the libraries want them (a
    classifier's as indices 0..K-1 into the training split's classes)."""
    classes, target = config["classes"], config["target"]
    labels = _train.label_index(frame[target], classes) if classes else frame[target]
    return frame[config["features"]], labels


def _fit(library: Library, params: Boosting) -> dict[str, Any]:
    scaling = _train.scaling(library.name)
    data = _train.load_tabular(library.name, params)
    classes = _train.classes(params, data)
    _ray.connect()
    trainer = library.trainer()(
        library.train_loop,
        train_loop_config={
            "features": data.features,
            "target": params.target,
            "classes": classes,
            "booster": {**library.settings(params), **library.objectives.of(params.task, classes)},
            "num_boost_round": params.num_boost_round,
        },
        scaling_config=scaling,
        run_config=_train.run_config(library.name),
        datasets=data.datasets(),
    )
    result = trainer.fit()
    booster = library.checkpointed(result.checkpoint)
    path = runtime.run_dir() / library.model_file
    booster.save_model(str(path))

    predicted = library.predict(booster, data.validation[data.features])
    if classes:
        predicted = _train.predicted_classes(predicted, classes)
    scores = _tabular.scores(params.task, data.validation[params.target], predicted)
    runtime.report_metrics(step=params.num_boost_round, **scores)
    return _train.tabular_outputs(data, str(path), library.name, scores, classes)
