"""What the `hpo` template runs on Ray Tune: NNI's search space in Tune's terms, and each
trial's code, run unchanged inside a Tune trial.

A search space is NNI's JSON (`{"lr": {"_type": "loguniform", "_value": [1e-4, 0.1]}}`), so
experiments written for NNI carry over. Trial code is a Python file or module, NNI-style:
it calls `get_next_parameter` and `report_*_result`, from `fabric.runtime` (which runs
anywhere) or from `nni`, which the trial's process resolves to Fabric's calls while it runs
(see `_nni_module`). Private and light at import: Ray is imported inside the functions.
"""

from __future__ import annotations

import itertools
import os
import runpy
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fabric import runtime

BUILTIN = "builtin:"
# The built-in trial code by name: modules under jobs/.
BUILTINS = {"example": "jobs._hpo_example"}
# Each NNI type and how many numbers its _value holds.
NUMERIC_ARITY = {
    "randint": 2,
    "uniform": 2,
    "quniform": 3,
    "loguniform": 2,
    "qloguniform": 3,
}
DISCRETE = ("choice", "randint", "quniform", "qloguniform")
STOP_TIMEOUT_S = "60"


class Dimension(BaseModel):
    """One hyperparameter's range, as NNI writes it: `{"_type": ..., "_value": [...]}`."""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    type: Literal["choice", "randint", "uniform", "quniform", "loguniform", "qloguniform"] = Field(
        alias="_type",
        description="choice: one of the values; randint: an integer in [lower, upper); "
        "uniform / loguniform: a number in [low, high], evenly or on a log scale; "
        "quniform / qloguniform: the same rounded to a multiple of q",
    )
    value: list[Any] = Field(
        alias="_value",
        description="choice: the values; randint: [lower, upper]; uniform and loguniform: "
        "[low, high]; quniform and qloguniform: [low, high, q]",
    )

    @model_validator(mode="after")
    def _fits_its_type(self) -> Dimension:
        if self.type == "choice":
            if not self.value or not all(
                isinstance(v, str | int | float | bool) for v in self.value
            ):
                raise ValueError("choice takes a non-empty list of numbers, strings or booleans")
            return self
        arity = NUMERIC_ARITY[self.type]
        numbers = self.value
        if len(numbers) != arity or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in numbers
        ):
            raise ValueError(f"{self.type} takes {arity} numbers")
        if self.type == "randint" and not all(isinstance(v, int) for v in numbers):
            raise ValueError("randint takes two integers")
        if numbers[0] >= numbers[1]:
            raise ValueError(f"{self.type} needs its low bound below its high one")
        if self.type.endswith("loguniform") and numbers[0] <= 0:
            raise ValueError(f"{self.type} needs a low bound above 0")
        if arity == 3 and numbers[2] <= 0:
            raise ValueError(f"{self.type} needs q above 0")
        return self


def tune_domain(dimension: Dimension) -> Any:
    """The Tune search-space object that samples as NNI's type does."""
    from ray import tune

    low, high, *q = dimension.value
    return {
        "choice": lambda: tune.choice(dimension.value),
        "randint": lambda: tune.randint(low, high),
        "uniform": lambda: tune.uniform(low, high),
        "quniform": lambda: tune.quniform(low, high, *q),
        "loguniform": lambda: tune.loguniform(low, high),
        "qloguniform": lambda: tune.qloguniform(low, high, *q),
    }[dimension.type]()


def _grid_values(dimension: Dimension) -> list[Any]:
    if dimension.type == "choice":
        return list(dimension.value)
    if dimension.type == "randint":
        return list(range(*dimension.value))
    low, high, q = dimension.value
    if dimension.type == "quniform":
        return [round(k * q, 12) for k in range(round(low / q), round(high / q) + 1)]
    # qloguniform: the multiples of q in range, as Tune's sampler rounds them.
    start = max(round(low / q), 1)
    return [round(k * q, 12) for k in range(start, round(high / q) + 1)]


def grid(space: Mapping[str, Dimension]) -> list[dict[str, Any]]:
    """Every combination of the space's values, in order; only discrete types have a grid."""
    names = list(space)
    values = [_grid_values(space[name]) for name in names]
    return [dict(zip(names, point, strict=True)) for point in itertools.product(*values)]


@dataclass(frozen=True)
class TrialCode:
    """What each trial runs: a file (`train.py`) or module (`pkg.train`), its arguments,
    and the folder it runs in (the job's working directory, as with NNI's trial code)."""

    target: str
    args: tuple[str, ...]
    folder: str

    @property
    def module(self) -> str | None:
        """The module to run, or None for a file."""
        if self.target.startswith(BUILTIN):
            return BUILTINS[self.target.removeprefix(BUILTIN)]
        return None if self.target.endswith(".py") or os.sep in self.target else self.target


def check_trial_code(target: str) -> None:
    """Exit naming the problem when the trial code cannot be found, before any trial starts."""
    import importlib.util

    if target.startswith(BUILTIN):
        if target.removeprefix(BUILTIN) not in BUILTINS:
            raise SystemExit(f"hpo: no built-in trial {target!r}; there is {', '.join(BUILTINS)}")
        return
    code = TrialCode(target, (), os.getcwd())
    if code.module is None:
        if not Path(target).is_file():
            raise SystemExit(
                f"hpo: trial file {target} not found in {os.getcwd()}; give its path, relative "
                "to the job's working directory"
            )
        return
    try:
        found = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise SystemExit(f"hpo: trial module {target} cannot be imported from {os.getcwd()}")


def _merge_parameter(base: Any, override: Mapping[str, Any]) -> Any:
    """NNI's `nni.utils.merge_parameter`: tuned values over an argparse namespace or dict."""
    for name, value in override.items():
        present = name in base if isinstance(base, dict) else hasattr(base, name)
        if not present:
            raise ValueError(f"Key '{name}' not found in base parameters.")
        if isinstance(base, dict):
            base[name] = value
        else:
            setattr(base, name, value)
    return base


def _nni_module() -> types.ModuleType:
    """An `nni` module whose trial calls are Fabric's: what `import nni` gives trial code in
    a trial, so NNI code runs unchanged whether or not NNI is installed."""
    nni = types.ModuleType("nni", "Fabric's stand-in for NNI's trial API inside a Tune trial")
    for name in (
        "get_next_parameter",
        "report_intermediate_result",
        "report_final_result",
        "get_trial_id",
        "get_experiment_id",
        "get_sequence_id",
    ):
        setattr(nni, name, getattr(runtime, name))
    utils = types.ModuleType("nni.utils")
    utils.merge_parameter = _merge_parameter  # type: ignore[attr-defined]
    nni.utils = utils  # type: ignore[attr-defined]
    return nni


def _run_code(code: TrialCode) -> None:
    """Run the trial code as `python FILE ARGS` or `python -m MODULE ARGS` would.

    A SystemExit passes through: Tune stops a trial by raising SystemExit(0) in its report,
    and takes the code's own `sys.exit(0)` as its end and any other code as its failure."""
    nni = _nni_module()
    saved_modules = {name: sys.modules.get(name) for name in ("nni", "nni.utils")}
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.modules.update({"nni": nni, "nni.utils": nni.utils})
    module = code.module
    sys.argv = [code.target, *code.args]
    try:
        if module is None:
            sys.path.insert(0, str(Path(code.target).resolve().parent))
            runpy.run_path(code.target, run_name="__main__")
        else:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        for name, saved in saved_modules.items():
            if saved is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved


def run_trial(code: TrialCode, config: dict[str, Any]) -> None:
    """A Tune function trainable: the trial code, with NNI's calls bound to this trial."""
    # Before Tune reuses this process for another trial (or PBT's exploit), the trial's
    # thread must stop at its next report; Tune's 2 s is too short for a busy machine.
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", STOP_TIMEOUT_S)
    os.chdir(code.folder)
    runtime.tune_trial(config, lambda: _run_code(code))


def trainable(code: TrialCode) -> Callable[[dict[str, Any]], None]:
    """The function Tune runs for each trial; Tune names trials and their folders after it."""

    def trial(config: dict[str, Any]) -> None:
        run_trial(code, config)

    return trial
