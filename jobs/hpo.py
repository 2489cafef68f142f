"""`hpo`: hyperparameter search on Ray Tune, over NNI's search-space format and trial code.

Each trial runs the trial code (a user's file or module, or `builtin:example`) with one
configuration, on one of the job's workers; the code reads it and reports with NNI's calls
(`fabric.runtime`'s, or `import nni`, which resolves to them inside a trial). A search
algorithm picks the configurations (random, grid, Optuna, HyperOpt), a scheduler may stop
trials early (ASHA) or make weak trials continue strong ones with mutated values (PBT).
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from fabric import runtime
from jobs import _hpo, _ray

# Columns Tune adds to every result; the rest of a trial's last result is what it reported.
TUNE_COLUMNS = {
    "training_iteration",
    "time_total_s",
    "time_this_iter_s",
    "time_since_restore",
    "iterations_since_restore",
    "timestamp",
    "date",
    "pid",
    "hostname",
    "node_ip",
    "done",
    "trial_id",
    "experiment_tag",
    "checkpoint_dir_name",
    "config",
    "should_checkpoint",
}


class Params(BaseModel):
    search_space: dict[str, _hpo.Dimension] = Field(
        min_length=1,
        description='each hyperparameter\'s range in NNI\'s format, e.g. {"lr": {"_type": '
        '"loguniform", "_value": [0.0001, 0.1]}, "layers": {"_type": "choice", "_value": '
        "[2, 3, 4]}}",
    )
    trial: str = Field(
        default="builtin:example",
        min_length=1,
        description="the trial code, run unchanged in each trial: a Python file (train.py, "
        "relative to the job's working directory), a module (pkg.train), or builtin:example",
    )
    trial_args: list[str] = Field(
        default_factory=list, description="the arguments the trial code reads from sys.argv"
    )
    algorithm: Literal["random", "grid", "optuna", "hyperopt"] = Field(
        default="random",
        description="how configurations are picked: at random; every point of the grid "
        "(choice, randint and quantized types only); by Bayesian optimisation (Optuna's "
        "TPE); or by HyperOpt's TPE",
    )
    scheduler: Literal["fifo", "asha", "pbt"] = Field(
        default="fifo",
        description="fifo runs every trial to its end; asha stops the weaker trials early; "
        "pbt makes the weaker trials continue from the stronger ones' checkpoints with "
        "mutated values (their code must report checkpoints, see load_checkpoint)",
    )
    max_trials: int = Field(default=10, ge=1, le=10000, description="how many trials to run")
    concurrency: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="trials at a time, at most the job's workers: each trial takes one "
        "worker's resources",
    )
    metric: str = Field(
        default="default",
        min_length=1,
        description="the reported value to optimise: default is the number NNI's calls "
        "report; a trial reporting a dict may name others",
    )
    mode: Literal["max", "min"] = Field(default="max", description="maximise or minimise it")
    max_iterations: int = Field(
        default=100,
        ge=1,
        le=1000000,
        description="the most results a trial reports (its final one included) before it "
        "is stopped: ASHA's longest run",
    )
    grace_period: int = Field(
        default=1, ge=1, description="asha: the iterations every trial gets before it may stop"
    )
    reduction_factor: int = Field(
        default=3, ge=2, le=100, description="asha: one trial in this many goes on at each rung"
    )
    perturbation_interval: int = Field(
        default=4, ge=1, description="pbt: the iterations between two exploit-and-explore steps"
    )
    reuse_workers: bool = Field(
        default=True,
        description="run trials one after another in the same worker process, so imports "
        "and startup happen once; false starts a fresh process for each trial, as NNI does",
    )
    seed: int | None = Field(
        default=0, description="seeds the search: the same seed picks the same configurations"
    )

    @model_validator(mode="after")
    def _fits_the_algorithm(self) -> Params:
        if self.algorithm == "grid":
            loose = [n for n, d in self.search_space.items() if d.type not in _hpo.DISCRETE]
            if loose:
                raise ValueError(
                    f"grid search needs choice, randint or quantized types; "
                    f"{', '.join(loose)} has none"
                )
        if self.scheduler == "pbt" and self.algorithm not in ("random", "grid"):
            raise ValueError("pbt picks its own configurations: use it with random or grid")
        return self


def _searcher(params: Params, concurrency: int) -> tuple[Any, dict[str, Any], int]:
    """The search algorithm, the param space Tune samples from, and how many trials.

    Each limits how many trials run at a time: Tune's own generator itself, the others
    through Tune's ConcurrencyLimiter."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator

    space = {name: _hpo.tune_domain(d) for name, d in params.search_space.items()}
    if params.algorithm == "grid":
        # Each trial takes the next point; Tune wants the space beside them all the same.
        points = _hpo.grid(params.search_space)[: params.max_trials]
        grid = BasicVariantGenerator(points_to_evaluate=points, max_concurrent=concurrency)
        return grid, space, len(points)
    if params.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        optuna = ConcurrencyLimiter(OptunaSearch(seed=params.seed), concurrency)
        return optuna, space, params.max_trials
    if params.algorithm == "hyperopt":
        from ray.tune.search.hyperopt import HyperOptSearch

        hyperopt = ConcurrencyLimiter(HyperOptSearch(random_state_seed=params.seed), concurrency)
        return hyperopt, space, params.max_trials
    random = BasicVariantGenerator(random_state=params.seed, max_concurrent=concurrency)
    return random, space, params.max_trials


def _scheduler(params: Params) -> Any:
    from ray.tune import schedulers

    if params.scheduler == "asha":
        return schedulers.ASHAScheduler(
            time_attr="training_iteration",
            max_t=params.max_iterations,
            grace_period=min(params.grace_period, params.max_iterations),
            reduction_factor=params.reduction_factor,
        )
    if params.scheduler == "pbt":
        mutations = {
            name: list(d.value) if d.type == "choice" else _hpo.tune_domain(d)
            for name, d in params.search_space.items()
        }
        return schedulers.PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=params.perturbation_interval,
            hyperparam_mutations=mutations,
        )
    return schedulers.FIFOScheduler()


def _concurrency(params: Params) -> tuple[int, dict[str, float]]:
    """Trials at a time and each trial's resources in Ray's names, from the job's workers."""
    workers = runtime.workers()
    if workers.count == 0:
        raise SystemExit(
            "hpo: the job has no workers to run trials on; submit it with workers (e.g. "
            'workers: 2, worker_resources: {"cpu": 1})'
        )
    concurrency = min(params.concurrency, workers.count)
    if concurrency < params.concurrency:
        print(
            f"hpo: {workers.count} workers granted: {concurrency} trials at a time, "
            f"not {params.concurrency}",
            flush=True,
        )
    device = "a GPU" if workers.use_gpu else "no GPU: trial code runs on CPU"
    print(f"hpo: each trial gets {dict(workers.resources)}, {device}", flush=True)
    return concurrency, workers.ray_resources()


def _progress(params: Params) -> Any:
    """A Tune callback that logs each ended trial, records the best score so far, and
    knows each trial's id by its folder."""
    from ray import tune

    class Progress(tune.Callback):
        def __init__(self) -> None:
            self.ended = 0
            self.best: float | None = None
            # Each trial's id by its folder: a trial PBT cloned another into carries the
            # other's last result, its id included, until it reports one of its own.
            self.ids: dict[str, str] = {}

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.ids[trial.path] = trial.trial_id

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.ended += 1
            result = trial.last_result or {}
            score = result.get(params.metric)
            if isinstance(score, int | float) and (
                self.best is None or (score > self.best) == (params.mode == "max")
            ):
                self.best = float(score)
            iterations = result.get("training_iteration", 0)
            print(
                f"hpo: trial {trial.trial_id} ended after {iterations} iterations: "
                f"{params.metric}={score} config={trial.config}",
                flush=True,
            )
            best = {"best": self.best} if self.best is not None else {}
            runtime.report_metrics(step=self.ended, trials=self.ended, **best)

    return Progress()


def _table(params: Params, results: Any, ids: dict[str, str]) -> Any:
    """One row a trial: its id, configuration, last reported values, iterations, time."""
    import pandas as pd

    rows = []
    for result in results:
        last = result.metrics or {}
        rows.append(
            {
                "trial_id": ids.get(result.path) or last.get("trial_id"),
                **{name: result.config.get(name) for name in params.search_space},
                **{k: v for k, v in last.items() if k not in TUNE_COLUMNS},
                "iterations": int(last.get("training_iteration", 0)),
                "seconds": float(last.get("time_total_s", 0.0)),
                "error": str(result.error) if result.error else "",
            }
        )
    return pd.DataFrame(rows)


def run(params: Params) -> dict[str, Any]:
    _hpo.check_trial_code(params.trial)
    concurrency, resources = _concurrency(params)
    _ray.connect()
    from ray import tune

    searcher, space, trials = _searcher(params, concurrency)
    code = _hpo.TrialCode(params.trial, tuple(params.trial_args), os.getcwd())
    folder = runtime.run_dir()
    progress = _progress(params)
    tuner = tune.Tuner(
        tune.with_resources(_hpo.trainable(code), resources),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=params.metric,
            mode=params.mode,
            search_alg=searcher,
            scheduler=_scheduler(params),
            num_samples=trials,
            reuse_actors=params.reuse_workers,
        ),
        run_config=tune.RunConfig(
            name=f"hpo-{time.time_ns()}",
            storage_path=str(folder / "tune"),
            stop={"training_iteration": params.max_iterations},
            # PBT restores a weak trial from a strong one's checkpoint, which the strong one
            # may have moved well past by the time the weak one restarts: with a limit, that
            # checkpoint can be gone (seen: FileNotFoundError in the restored trial). So PBT
            # keeps them all; other schedulers never read another trial's checkpoints.
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=None if params.scheduler == "pbt" else 4
            ),
            callbacks=[progress],
            verbose=1,
        ),
    )
    results = tuner.fit()
    table = _table(params, results, progress.ids)
    table.to_csv(folder / "trials.csv", index=False)
    table.to_parquet(folder / "trials.parquet", index=False)
    scored = table[table[params.metric].notna()] if params.metric in table else table.iloc[:0]
    if scored.empty:
        errors = [e for e in table["error"] if e]
        raise SystemExit(
            f"hpo: no trial reported {params.metric!r}"
            + (f"; the first error: {errors[0]}" if errors else "")
        )
    best = results.get_best_result(params.metric, params.mode, scope="last")
    # A trial that reported the metric (checked above) has its metrics and its config.
    assert best.metrics is not None and best.config is not None
    best_score = float(best.metrics[params.metric])
    print(f"hpo: best {params.metric}={best_score} with {best.config}", flush=True)
    return {
        "best_config": {name: best.config[name] for name in params.search_space},
        "best_score": best_score,
        "best_trial_id": progress.ids.get(best.path, best.metrics["trial_id"]),
        "metrics": {
            params.metric: best_score,
            "trials": float(len(table)),
            "trial_iterations": float(table["iterations"].sum()),
            "trial_seconds": float(table["seconds"].sum()),
        },
        "tables": {"trials": str(folder / "trials.csv")},
        "trials_uri": str(folder / "trials.parquet"),
        "experiment_uri": results.experiment_path,
    }


TEMPLATE = runtime.Template(
    name="hpo",
    group="tuning",
    description=(
        "Search hyperparameters with Ray Tune: NNI's search-space format, random, grid, "
        "Optuna or HyperOpt search, FIFO, ASHA or PBT scheduling; NNI-style trial code runs "
        "unchanged, each trial on one of the job's workers."
    ),
    params=Params,
    run=run,
    resources={"cpu": 0.25},
    outputs={
        "best_config": "the best trial's hyperparameters",
        "best_score": "its last reported value of the metric",
        "best_trial_id": "its Tune trial id",
        "metrics": "the best score (under the metric's name), and trials, trial_iterations "
        "and trial_seconds: what the search computed",
        "tables": "trials: a CSV of every trial's configuration, last results, iterations",
        "trials_uri": "the same table as Parquet",
        "experiment_uri": "Tune's experiment folder (results, checkpoints)",
    },
    workers=2,
    worker_resources={"cpu": 0.5},
)

if __name__ == "__main__":
    TEMPLATE.main()
