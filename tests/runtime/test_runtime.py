"""`fabric.runtime` and its flag parsing: what templates see inside and outside a job."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from fabric import runtime
from fabric.runtime import environment
from fabric.runtime.cli import ParamsError, command, parse_args, to_args, validate
from tests.imports import loaded_after

FABRIC_VARIABLES = ("FABRIC_USER_DIR", "FABRIC_PROJECT_DIR", "FABRIC_RUN_DIR", "FABRIC_JOB_ID")


class Color(StrEnum):
    RED = "red"
    BLUE = "blue"


class Window(BaseModel):
    start: int
    end: int


class Params(BaseModel):
    source: str
    max_depth: int | None = Field(default=None, ge=1)
    rate: float = 0.5
    shuffle: bool = True
    kind: Literal["csv", "json"] = "csv"
    columns: list[str] | None = None
    color: Color = Color.RED
    window: Window | None = None
    weights: dict[str, float] = Field(default_factory=dict)


@pytest.fixture
def outside_a_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in FABRIC_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_folders_come_from_the_job_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable, folder in (("FABRIC_RUN_DIR", "r"), ("FABRIC_PROJECT_DIR", "p")):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    monkeypatch.setenv("FABRIC_JOB_ID", "7")
    monkeypatch.setenv("FABRIC_PROJECT", "vision")
    assert runtime.run_dir() == tmp_path / "r"
    assert runtime.project_dir() == tmp_path / "p"
    assert (runtime.job_id(), runtime.project()) == (7, "vision")


def test_outside_a_job_folders_fall_back_under_the_current_directory(outside_a_job: Path) -> None:
    assert runtime.run_dir() == outside_a_job / "fabric-local" / "run"
    assert runtime.user_dir().is_dir()
    assert runtime.job_id() is None


def test_metrics_append_and_outputs_merge(outside_a_job: Path) -> None:
    runtime.report_metrics(step=1, loss=0.5)
    runtime.report_metrics(step=2, loss=0.25)
    assert [(m["step"], m["loss"]) for m in runtime.read_metrics()] == [(1, 0.5), (2, 0.25)]
    runtime.write_outputs(model_uri="/m", metrics={"accuracy": 0.9})
    runtime.write_outputs(metrics={"accuracy": 0.95})
    assert runtime.read_outputs() == {"model_uri": "/m", "metrics": {"accuracy": 0.95}}
    assert not list(runtime.run_dir().glob("*.tmp"))


def test_flags_round_trip_every_kind_of_parameter() -> None:
    params = Params(
        source="a b.csv",
        max_depth=3,
        shuffle=False,
        columns=["x", "y"],
        color=Color.BLUE,
        window=Window(start=1, end=2),
        weights={"a": 0.5},
    )
    args = to_args(params)
    assert args[:2] == ["--source", "a b.csv"]
    assert "--max-depth" in args and "--shuffle" in args
    assert parse_args(Params, args) == params
    assert command("jobs.x", Params(source="a b.csv")).startswith(
        "python -m jobs.x --source 'a b.csv'"
    )


def test_flags_accept_underscores_and_equals() -> None:
    parsed = parse_args(Params, ["--source=s", "--max_depth", "2", "--columns", '["c"]'])
    assert (parsed.max_depth, parsed.columns) == (2, ["c"])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"source": "s", "max_depth": "0"}, "params.max_depth: Input should be greater than"),
        ({"source": "s", "depth": 1}, "params.depth: no such parameter"),
        ({"source": "s", "columns": "[x"}, "params.columns: expects JSON"),
        ({}, "params.source: Field required"),
    ],
)
def test_bad_parameters_name_the_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamsError, match=message.replace(".", r"\.")):
        validate(Params, raw, where="params.")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("max-depth", "params.max-depth: no such parameter (did you mean max_depth?)"),
        ("colour", "params.colour: no such parameter (did you mean color or columns?)"),
        ("zzz", "params.zzz: no such parameter"),
    ],
)
def test_a_misspelt_parameter_is_told_the_closest_names(name: str, message: str) -> None:
    with pytest.raises(ParamsError) as refused:
        validate(Params, {"source": "s", name: 1}, where="params.")
    assert str(refused.value) == message


def test_a_misspelt_flag_on_ray_is_told_the_closest_parameter() -> None:
    with pytest.raises(ParamsError) as refused:
        parse_args(Params, ["--source", "s", "--max-dept", "2", "--rat", "1"])
    assert str(refused.value) == (
        "max_dept: no such parameter (did you mean max_depth?); "
        "rat: no such parameter (did you mean rate?)"
    )


def test_parse_args_refuses_a_flag_without_a_value() -> None:
    with pytest.raises(ParamsError, match="--source needs a value"):
        parse_args(Params, ["--source"])


def test_runtime_stays_light() -> None:
    """Templates import it inside Ray workers: no server, database, web framework or Ray."""
    heavy = {"sqlalchemy", "fastapi", "ray", "fabric.api", "fabric.db", "fabric.services"}
    assert loaded_after("import fabric.runtime", heavy) == []


@pytest.fixture
def standalone_trial(outside_a_job: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Trial code run on its own: no Tune, and no trial bound from an earlier test."""
    monkeypatch.setattr(runtime, "_trial", None)
    monkeypatch.delenv(environment.TRIAL_PARAMETERS, raising=False)
    return outside_a_job


def test_nni_calls_outside_tune_read_the_environment_and_write_metrics(
    standalone_trial: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(environment.TRIAL_PARAMETERS, '{"lr": 0.01, "layers": 3}')
    assert runtime.get_next_parameter() == {"lr": 0.01, "layers": 3}
    assert (runtime.get_trial_id(), runtime.get_sequence_id()) == ("STANDALONE", 0)
    assert runtime.get_experiment_id() == "STANDALONE"
    runtime.report_intermediate_result(0.5)
    runtime.report_intermediate_result({"default": 0.75, "loss": 0.25})
    runtime.report_final_result(0.875)
    assert runtime.load_checkpoint() is None
    reported = [{k: v for k, v in m.items() if k != "time"} for m in runtime.read_metrics()]
    assert reported == [
        {"step": 1, "default": 0.5},
        {"step": 2, "default": 0.75, "loss": 0.25},
        {"step": 3, "default": 0.875, "final": True},
    ]


def test_nni_calls_in_a_job_name_its_experiment(
    standalone_trial: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABRIC_JOB_ID", "12")
    assert runtime.get_next_parameter() == {}
    assert runtime.get_experiment_id() == "job-12"


def test_nni_metrics_are_numbers_or_dicts_with_a_default(standalone_trial: Path) -> None:
    with pytest.raises(ValueError, match="a metric dict needs a 'default' key"):
        runtime.report_final_result({"accuracy": 0.9})
    with pytest.raises(TypeError, match="a metric is a number or a dict"):
        runtime.report_intermediate_result("high")  # type: ignore[arg-type]
    assert runtime.read_metrics() == []


def test_parameters_that_are_not_an_object_are_refused(
    standalone_trial: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(environment.TRIAL_PARAMETERS, "[1, 2]")
    with pytest.raises(ValueError, match="FABRIC_TRIAL_PARAMETERS must hold a JSON object"):
        runtime.get_next_parameter()


def test_nni_calls_outside_tune_import_no_ray(tmp_path: Path) -> None:
    statement = (
        f"import os; os.environ['FABRIC_RUN_DIR'] = {str(tmp_path)!r}\n"
        "from fabric import runtime\n"
        "runtime.get_next_parameter(); runtime.report_intermediate_result(1.0)\n"
        "runtime.report_final_result({'default': 2.0}); runtime.load_checkpoint()"
    )
    assert loaded_after(statement, {"ray"}) == []
    assert len(runtime.read_metrics(tmp_path)) == 2
