"""What code running on Ray needs from Fabric: storage folders, metrics, the outputs manifest.

Templates (`jobs/`) and Serve apps import this module and nothing else of Fabric, so it
stays light: the standard library and pydantic, never the server, the database or Ray.
Fabric sets `FABRIC_USER_DIR`, `FABRIC_PROJECT_DIR`, `FABRIC_RUN_DIR`, `FABRIC_PROJECT` and
`FABRIC_JOB_ID` on every job; outside a job (`python -m jobs.NAME` on a laptop, a test)
each folder falls back to one under `./fabric-local/`, so a template runs the same there
(and `Template.main` gives each such run a folder of its own under `fabric-local/runs/`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from fabric.runtime import environment
from fabric.runtime.cli import ParamsError, parse_args

LOCAL_FOLDER = "fabric-local"
METRICS_FILE = "metrics.jsonl"
OUTPUTS_FILE = "outputs.json"
PARAMS_FILE = "params.json"
# Fabric's names for resources Ray knows by other names; memory is GiB in Fabric, bytes in Ray.
RAY_RESOURCE_NAMES = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU"}
# The Python environments a template may run in: the cluster's own (`default`), or the LLM
# environment (vLLM, transformers, peft), kept apart because vLLM pins libraries the server's
# environment needs newer; the server names its Python (FABRIC_LLM_PYTHON).
DEFAULT_ENVIRONMENT = "default"
LLM_ENVIRONMENT = "llm"
Environment = Literal["default", "llm"]


def _folder(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable)
    path = Path(value) if value else Path.cwd() / LOCAL_FOLDER / fallback
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_dir() -> Path:
    """The job's user's own folder (`/mnt/USER` on KubeRay)."""
    return _folder(environment.USER_DIR, "user")


def project_dir() -> Path:
    """The project's shared folder: datasets and models other jobs of the project read."""
    return _folder(environment.PROJECT_DIR, "project")


def run_dir() -> Path:
    """This job's own folder: its metrics, outputs manifest and files."""
    return _folder(environment.RUN_DIR, "run")


def project() -> str:
    return os.environ.get(environment.PROJECT, "local")


def job_id() -> int | None:
    value = os.environ.get(environment.JOB_ID)
    return int(value) if value else None


@dataclass(frozen=True)
class Workers:
    """The Ray workers a job was granted beside its driver (Ray Train's workers, Tune's
    trials, a script's tasks): how many, and what each may use, in Fabric's names.

    The quota counted them all at submit; the driver itself holds only the job's own
    `resources`, so a template must ask Ray for its workers with `ray_resources()`.
    """

    count: int
    resources: Mapping[str, float]

    @property
    def use_gpu(self) -> bool:
        return self.resources.get("gpu", 0) > 0

    def ray_resources(self) -> dict[str, float]:
        """One worker's request in Ray's names, e.g. for `ScalingConfig.resources_per_worker`."""
        return ray_resources(self.resources)


def ray_resources(resources: Mapping[str, float]) -> dict[str, float]:
    """Fabric's resource names and units (`cpu`, `memory` in GiB, `gpu`, `npu`) in Ray's."""
    named = {}
    for name, amount in resources.items():
        if name == "memory":
            named["memory"] = amount * 2**30
        else:
            named[RAY_RESOURCE_NAMES.get(name, name)] = amount
    return named


def workers() -> Workers:
    """The workers Fabric granted this job (`FABRIC_WORKERS`); none outside a job that has
    none. `Template.main` fills in the template's defaults when run outside Fabric."""
    value = os.environ.get(environment.WORKERS)
    if not value:
        return Workers(count=0, resources={})
    granted = json.loads(value)
    return Workers(count=int(granted["count"]), resources=dict(granted["resources"]))


def report_metrics(step: int | None = None, **metrics: float) -> None:
    """Append one line of metrics to the run's `metrics.jsonl`, with the time and step."""
    line = {"time": time.time(), "step": step, **metrics}
    with (run_dir() / METRICS_FILE).open("a") as handle:
        handle.write(json.dumps(line) + "\n")


def read_metrics(folder: Path | None = None) -> list[dict[str, Any]]:
    path = (folder or run_dir()) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_outputs(**outputs: Any) -> dict[str, Any]:
    """Record named outputs (`model_uri`, `metrics`, `dataset_uri`, `tables`, ...) in the
    run's `outputs.json`, merged with those written before; pipelines and the UI read it.

    Written to a temporary file and renamed, so a reader never sees half a manifest.
    """
    path = run_dir() / OUTPUTS_FILE
    merged = {**read_outputs(path.parent), **outputs}
    write_json(path, merged)
    return merged


def write_json(path: Path, data: Any) -> None:
    """Write a JSON file whole or not at all: it is written beside and renamed, so that a
    reader never sees half of it."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2, default=str))
    partial.replace(path)


def read_outputs(folder: Path | None = None) -> dict[str, Any]:
    path = (folder or run_dir()) / OUTPUTS_FILE
    return json.loads(path.read_text()) if path.exists() else {}


@dataclass(frozen=True)
class Template:
    """A job template: what the platform shows and validates, and the function that runs.

    Declared at the top of `jobs/NAME.py` as `TEMPLATE`, with heavy imports (pandas,
    scikit-learn, Ray Data) inside `run`, so that the server can list templates cheaply.
    """

    name: str
    group: str
    description: str
    params: type[BaseModel]
    run: Callable[[Any], Mapping[str, Any] | None]
    # Resources the job asks for when the request names none, e.g. {"cpu": 1}.
    resources: Mapping[str, float] = field(default_factory=lambda: {"cpu": 1.0})
    # Each output's name and what it holds, as written to `outputs.json`.
    outputs: Mapping[str, str] = field(default_factory=dict)
    # Ray workers beside the driver, each with `worker_resources`; the quota counts them all.
    workers: int = 0
    worker_resources: Mapping[str, float] = field(default_factory=lambda: {"cpu": 1.0})
    # The Python environment its job runs in, driver and workers (`Environment`): `llm` runs
    # it as a Ray Job of its own with the LLM environment's Python (`runtime_env.py_executable`).
    environment: Environment = DEFAULT_ENVIRONMENT

    def main(self, argv: Sequence[str] | None = None) -> None:
        """`python -m jobs.NAME --param value ...`: parse, run, record the outputs."""
        try:
            params = parse_args(self.params, sys.argv[1:] if argv is None else argv)
        except ParamsError as exc:
            sys.exit(f"{self.name}: {exc}")
        if not os.environ.get(environment.RUN_DIR):
            # Outside Fabric each run gets a folder of its own, as it would in a job.
            local = Path.cwd() / LOCAL_FOLDER / "runs" / f"{self.name}-{time.time_ns()}"
            os.environ[environment.RUN_DIR] = str(local)
        if not os.environ.get(environment.WORKERS):
            granted = {"count": self.workers, "resources": dict(self.worker_resources)}
            os.environ[environment.WORKERS] = json.dumps(granted)
        print(f"{self.name}: {params.model_dump_json()}", flush=True)
        # Beside the outputs, so that what a run was asked for stays with what it made
        # (model-register copies it into the model's manifest).
        (run_dir() / PARAMS_FILE).write_text(params.model_dump_json(indent=2))
        outputs = self.run(params)
        if outputs:
            write_outputs(**outputs)
            print(f"{self.name}: outputs {json.dumps(dict(outputs), default=str)}", flush=True)


# Trials: the calls NNI trial code makes (`get_next_parameter`, `report_intermediate_result`,
# `report_final_result`, ...), answered by Ray Tune inside a trial and by the environment and
# `metrics.jsonl` outside one, so that the same trial code runs in a search and on its own.

STANDALONE = "STANDALONE"


@dataclass
class _Trial:
    """The trial this process's NNI calls talk to, and how many results it has reported."""

    parameters: dict[str, Any]
    trial_id: str
    experiment_id: str
    sequence_id: int
    tune: bool
    steps: int = 0


_trial: _Trial | None = None


def _standalone() -> _Trial:
    """Outside Tune the parameters are the JSON object in FABRIC_TRIAL_PARAMETERS, if set."""
    value = os.environ.get(environment.TRIAL_PARAMETERS)
    parameters = json.loads(value) if value else {}
    if not isinstance(parameters, dict):
        raise ValueError(f"{environment.TRIAL_PARAMETERS} must hold a JSON object, got {value!r}")
    job = job_id()
    experiment = STANDALONE if job is None else f"job-{job}"
    return _Trial(parameters, STANDALONE, experiment, sequence_id=0, tune=False)


def _current() -> _Trial:
    global _trial
    if _trial is None:
        _trial = _standalone()
    return _trial


def _sequence_id(trial_id: str, trial_dir: str) -> int:
    """The trial's number as Tune's names tell it: its own generator (random and grid search)
    ends an id with the number from 0 (`ab12c_00003`); with a searcher the folder is named
    TRAINABLE_TRIALID_N_..., N counting from 1."""
    prefix, _, number = trial_id.rpartition("_")
    if prefix and number.isdigit():
        return int(number)
    _, _, rest = Path(trial_dir).name.partition(f"_{trial_id}_")
    number = rest.split("_", 1)[0]
    return int(number) - 1 if number.isdigit() else 0


def tune_trial(config: Mapping[str, Any], code: Callable[[], Any]) -> Any:
    """Run `code()`, trial code, inside a Ray Tune function trainable given `config`: its NNI
    calls read the config and report with `ray.tune.report`. The `hpo` template runs every
    trial through it; a Tune function of one's own may too."""
    from ray import tune

    global _trial
    context = tune.get_context()
    trial_id = context.get_trial_id()
    outer, _trial = (
        _trial,
        _Trial(
            parameters=dict(config),
            trial_id=trial_id,
            experiment_id=context.get_experiment_name(),
            sequence_id=_sequence_id(trial_id, context.get_trial_dir()),
            tune=True,
        ),
    )
    try:
        return code()
    finally:
        _trial = outer


def get_next_parameter() -> dict[str, Any]:
    """The trial's hyperparameters, as NNI gives them."""
    return dict(_current().parameters)


def get_trial_id() -> str:
    return _current().trial_id


def get_experiment_id() -> str:
    return _current().experiment_id


def get_sequence_id() -> int:
    """The trial's number in its experiment, from 0."""
    return _current().sequence_id


def _metrics(metric: float | Mapping[str, Any]) -> dict[str, Any]:
    """NNI's metric, a number or a dict with a `default` key, as named values."""
    if isinstance(metric, Mapping):
        if "default" not in metric:
            raise ValueError("a metric dict needs a 'default' key, as in NNI")
        return {str(name): value for name, value in metric.items()}
    try:
        return {"default": float(metric)}
    except (TypeError, ValueError):
        raise TypeError(
            f"a metric is a number or a dict with a 'default' key, as in NNI; got {metric!r}"
        ) from None


def _report(metrics: dict[str, Any], final: bool, checkpoint: str | Path | None) -> None:
    trial = _current()
    trial.steps += 1
    if not trial.tune:
        report_metrics(step=trial.steps, **metrics, **({"final": True} if final else {}))
        return
    from ray import tune

    saved = tune.Checkpoint.from_directory(str(checkpoint)) if checkpoint else None
    tune.report(metrics, checkpoint=saved)


def report_intermediate_result(
    metric: float | Mapping[str, Any], checkpoint: str | Path | None = None
) -> None:
    """One step's result (an epoch's): in Tune, a report at the next `training_iteration`,
    which ASHA and PBT judge the trial by. `checkpoint`, a folder of the trial's state as of
    this result, is Fabric's addition to NNI's call: PBT hands it to the trials it makes
    continue from this one, which find it with `load_checkpoint`."""
    _report(_metrics(metric), final=False, checkpoint=checkpoint)


def report_final_result(metric: float | Mapping[str, Any]) -> None:
    """The trial's result: in Tune one more report, the last, which the search ranks it by."""
    _report(_metrics(metric), final=True, checkpoint=None)


def load_checkpoint() -> Path | None:
    """The folder to resume from: a checkpoint this trial reported before Tune restarted it,
    or one of the better trial that PBT made it continue; None when it starts afresh."""
    if not _current().tune:
        return None
    from ray import tune

    checkpoint = tune.get_checkpoint()
    return Path(checkpoint.to_directory()) if checkpoint else None
