"""The contract a compute backend keeps, run on the fake backend and on the real local Ray
backend alike: the fast tests run the services on the fake, so the fake must answer as Ray
does wherever the services read an answer."""

from __future__ import annotations

import importlib.metadata
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fabric.backends.base import BackendRefused, ComputeBackend, Feature, JobSpec, JobState, Runner
from fabric.backends.local_head import LocalRayHead
from fabric.backends.local_ray import LocalRayBackend
from fabric.config import Settings
from fabric.runtime.serve_contract import ServeStatus
from fabric.services.serving import serve_config
from fabric.states import JobStatus
from tests.fakes.backend import FakeBackend
from tests.serve_apps import models
from tests.serve_apps.serving import SETTLED, application, version

PROJECT = "contract"


@pytest.fixture(scope="module", params=["fake", pytest.param("ray", marks=pytest.mark.ray)])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComputeBackend]:
    home = tmp_path_factory.mktemp(f"contract-{request.param}")
    if request.param == "fake":
        fake = FakeBackend(home)
        yield fake
        fake.close()
        return
    settings = Settings(home=home, **request.getfixturevalue("ray_settings"))
    ray = LocalRayBackend(LocalRayHead(settings))
    yield ray
    ray.warm.shutdown()
    ray.close()


def _spec(entrypoint: str, *, warm: bool = False, **fields: Any) -> JobSpec:
    return JobSpec(
        submission_id=f"fabric-{PROJECT}-{uuid.uuid4().hex[:8]}",
        entrypoint=entrypoint,
        runner=Runner.WARM if warm else Runner.RAY_JOB,
        metadata={"fabric_project": PROJECT},
        **fields,
    )


def _run(backend: ComputeBackend, spec: JobSpec) -> tuple[str, JobState, str]:
    """Submit the job and follow its logs to its end: the id the backend knows it by, its
    last state and everything it logged."""
    submission_id = backend.submit_job(PROJECT, spec)
    followed = "".join(backend.follow_job_logs(PROJECT, submission_id))
    return submission_id, backend.job_state(PROJECT, submission_id), followed


def _wait_running(backend: ComputeBackend, submission_id: str, text: str) -> None:
    for logged in backend.follow_job_logs(PROJECT, submission_id):
        if text in logged:
            return
    raise AssertionError(f"{submission_id} ended before it logged {text!r}")


def test_it_runs_jobs_and_serve_and_names_its_ray_version(backend: ComputeBackend) -> None:
    assert {Feature.JOBS, Feature.SERVE, Feature.DASHBOARD, Feature.WARM_TASKS} <= (
        backend.features
    )
    assert backend.version() == importlib.metadata.version("ray")
    info = backend.cluster(PROJECT)
    assert info.ray_version == backend.version()
    assert info.dashboard_url.startswith("http://")
    assert info.resources["cpu"] > 0 and info.resources["memory"] > 0
    base, headers = backend.dashboard(PROJECT)
    assert base.startswith("http://") and isinstance(headers, dict)
    assert backend.serve_address(PROJECT).startswith("http://127.0.0.1:")


@pytest.mark.parametrize("warm", [False, True], ids=["ray-job", "warm"])
def test_a_job_runs_its_shell_command_with_its_environment_and_logs(
    backend: ComputeBackend, warm: bool
) -> None:
    spec = _spec(
        'echo "hello $FABRIC_GREETING" && python -c "print(\'two\', 1 + 1)"',
        warm=warm,
        runtime_env={"env_vars": {"FABRIC_GREETING": "from-fabric"}},
        cpu=0.1,
    )
    submission_id, state, followed = _run(backend, spec)
    assert state.status is JobStatus.SUCCEEDED, state.message
    assert state.start_time and state.end_time and state.end_time >= state.start_time
    assert "hello from-fabric" in followed and "two 2" in followed
    assert followed == backend.job_logs(PROJECT, submission_id)


@pytest.mark.parametrize(
    ("warm", "message"),
    [
        (False, "Job entrypoint command failed with exit code 3, last available logs"),
        (True, "exited with code 3"),
    ],
    ids=["ray-job", "warm"],
)
def test_a_failing_job_fails_with_its_exit_code(
    backend: ComputeBackend, warm: bool, message: str
) -> None:
    _, state, followed = _run(backend, _spec("echo about-to-fail && exit 3", warm=warm, cpu=0.1))
    assert state.status is JobStatus.FAILED
    assert state.message.startswith(message), state.message
    assert "about-to-fail" in followed
    if not warm:
        assert "about-to-fail" in state.message, "Ray's message ends with the log's tail"


def test_a_job_the_free_resources_cannot_fit_waits_pending_until_they_free(
    backend: ComputeBackend, tmp_path: Path
) -> None:
    """The services meter a job from its start, not its submission: a backend must report a
    job that waits for resources as PENDING, with Ray's reason."""
    gate = tmp_path / "go"
    whole = backend.cluster(PROJECT).resources["cpu"]
    holder = backend.submit_job(
        PROJECT,
        _spec(
            "python -c \"import os, time; print('holding', flush=True)\n"
            f"while not os.path.exists('{gate}'): time.sleep(0.05)\"",
            cpu=whole,
        ),
    )
    _wait_running(backend, holder, "holding")
    waiting = backend.submit_job(PROJECT, _spec("echo ran", cpu=1))
    state = backend.job_state(PROJECT, waiting)
    assert state.status is JobStatus.PENDING
    assert state.message.startswith("Job has not started yet."), state.message
    gate.touch()
    followed = "".join(backend.follow_job_logs(PROJECT, waiting))
    assert backend.job_state(PROJECT, waiting).status is JobStatus.SUCCEEDED
    assert "ran" in followed


@pytest.mark.parametrize("warm", [False, True], ids=["ray-job", "warm"])
def test_a_job_starts_in_the_folder_it_names(
    backend: ComputeBackend, tmp_path: Path, warm: bool
) -> None:
    """Without it, a Ray Job starts wherever the head was started: a user's `python train.py`
    would look for train.py there."""
    folder = tmp_path / "run folder"
    folder.mkdir()
    (folder / "train.py").write_text("import os; print('ran in', os.getcwd())")
    _, state, followed = _run(backend, _spec("python train.py", warm=warm, cwd=str(folder)))
    assert state.status is JobStatus.SUCCEEDED, state.message
    assert f"ran in {folder}" in followed


@pytest.mark.parametrize("warm", [False, True], ids=["ray-job", "warm"])
def test_a_running_job_can_be_stopped(backend: ComputeBackend, warm: bool) -> None:
    spec = _spec(
        "python -c \"print('started', flush=True); import time; time.sleep(300)\"", warm=warm
    )
    submission_id = backend.submit_job(PROJECT, spec)
    _wait_running(backend, submission_id, "started")
    assert backend.job_state(PROJECT, submission_id).status is JobStatus.RUNNING
    assert backend.stop_job(PROJECT, submission_id) is True
    for _ in backend.follow_job_logs(PROJECT, submission_id):
        pass
    # The services end a stopped job STOPPED themselves (jobs.halt): they read no more than
    # that it ended. The warm runner reports a command it killed as FAILED (exit code -9).
    ended = backend.job_state(PROJECT, submission_id).status
    assert ended.terminal if warm else ended is JobStatus.STOPPED


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_a_job_runs_in_its_working_dir_and_imports_its_py_modules(
    backend: ComputeBackend, tmp_path: Path
) -> None:
    unique = uuid.uuid4().hex[:8]
    code = _zip(
        tmp_path / "code.zip", {"main.py": "import helper_lib\nprint(helper_lib.GREETING)\n"}
    )
    library = _zip(tmp_path / "lib.zip", {"helper_lib/__init__.py": "GREETING = 'from a module'\n"})
    uris = {"code": f"gcs://_fabric_contract_code_{unique}.zip"}
    uris["library"] = f"gcs://_fabric_contract_lib_{unique}.zip"
    backend.ensure_package(PROJECT, uris["code"], code)
    backend.ensure_package(PROJECT, uris["library"], library)
    backend.ensure_package(PROJECT, uris["code"], code)  # a second time changes nothing
    spec = _spec(
        "python main.py",
        runtime_env={"working_dir": uris["code"], "py_modules": [uris["library"]]},
    )
    _, state, followed = _run(backend, spec)
    assert state.status is JobStatus.SUCCEEDED, followed
    assert "from a module" in followed


def test_unknown_and_repeated_submissions_are_refused(backend: ComputeBackend) -> None:
    with pytest.raises(BackendRefused, match="does not exist"):
        backend.job_state(PROJECT, f"fabric-{PROJECT}-never-submitted")
    spec = _spec("true")
    _, state, _ = _run(backend, spec)
    assert state.status is JobStatus.SUCCEEDED
    with pytest.raises(BackendRefused, match="already exists"):
        backend.submit_job(PROJECT, spec)


def _settled(backend: ComputeBackend, project: str, names: set[str]) -> ServeStatus:
    deadline = time.monotonic() + 150
    while True:
        status = backend.serve_status(project)
        if set(status) == names and all(app.status in SETTLED for app in status.values()):
            return status
        assert time.monotonic() < deadline, {name: app.status for name, app in status.items()}
        time.sleep(0.25)


def _endpoint_app(project: str, model: Path, revision: int) -> dict[str, Any]:
    """An endpoint's application as the server writes it, with one sklearn version."""
    app = application(
        serve_config.app_name(project, "e"),
        f"{project}/e",
        [version("v1", "m", 1, str(model), "sklearn", weight=100)],
    )
    app["args"]["revision"] = revision
    return app


def test_serve_applications_are_each_projects_own(backend: ComputeBackend, tmp_path: Path) -> None:
    unique = uuid.uuid4().hex[:6]
    first, second = f"contract{unique}a", f"contract{unique}b"
    model = models.sklearn(tmp_path, models.points(20))
    try:
        backend.apply_serve_config(first, [_endpoint_app(first, model, 3)])
        backend.apply_serve_config(second, [_endpoint_app(second, model, 5)])
        ours = _settled(backend, first, {serve_config.app_name(first, "e")})
        theirs = _settled(backend, second, {serve_config.app_name(second, "e")})
        [app] = ours.values()
        assert app.status == "RUNNING", app
        assert app.revision == 3
        assert next(iter(theirs.values())).revision == 5
        backend.apply_serve_config(first, [])
        _settled(backend, first, set())
        assert set(backend.serve_status(second)) == {serve_config.app_name(second, "e")}
    finally:
        backend.apply_serve_config(first, [])
        backend.apply_serve_config(second, [])
    _settled(backend, second, set())


def test_releasing_a_project_on_a_shared_head_frees_nothing(backend: ComputeBackend) -> None:
    backend.release(PROJECT)
    assert backend.release_idle() == []
