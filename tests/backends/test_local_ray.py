"""The local Ray backend against the session's real Ray head."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from fabric.backends.base import BackendUnavailable
from fabric.backends.local_head import LocalRayHead
from fabric.backends.local_ray import LocalRayBackend
from fabric.backends.ray_jobs import fabric_resources
from fabric.config import Settings


@pytest.fixture(scope="module")
def head(ray_settings: dict[str, object]) -> LocalRayHead:
    return LocalRayHead(Settings(home=Path(str(ray_settings["ray_folder"])), **ray_settings))


@pytest.fixture(scope="module")
def backend(head: LocalRayHead) -> LocalRayBackend:
    backend = LocalRayBackend(head)
    yield backend
    backend.close()


def test_the_head_refuses_callers_without_its_token(head: LocalRayHead) -> None:
    for path in ("/api/version", "/api/jobs/"):
        assert httpx.get(f"{head.dashboard_url}{path}").status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert httpx.get(f"{head.dashboard_url}{path}", headers=wrong).status_code == 403
    assert stat.S_IMODE(head.token_file.stat().st_mode) == 0o600


def test_starting_a_running_head_is_a_no_op(head: LocalRayHead) -> None:
    pid = head.pid()
    assert pid is not None
    assert head.start() is False
    assert head.pid() == pid


def test_cluster_reports_resources_in_fabric_units(backend: LocalRayBackend) -> None:
    info = backend.cluster("any")
    assert info.ray_version == "2.60.0"
    assert info.resources["cpu"] == 2
    assert info.resources["memory"] > 0.1


def test_ray_resource_names_become_fabric_names() -> None:
    nodes = [
        {"CPU": 8.0, "GPU": 2.0, "memory": 4 * 2**30, "node:10.0.0.1": 1.0, "NPU": 8.0},
        {"CPU": 4.0, "object_store_memory": 1e9, "accelerator_type:A100": 1.0, "disk": 3.0},
    ]
    assert fabric_resources(nodes) == {"cpu": 12, "gpu": 2, "memory": 4, "npu": 8, "disk": 3}


def test_a_too_long_session_folder_is_refused_with_advice(tmp_path: Path) -> None:
    long_folder = tmp_path / ("x" * 60)
    head = LocalRayHead(Settings(home=tmp_path, ray_folder=long_folder))
    with pytest.raises(BackendUnavailable, match="FABRIC_RAY_FOLDER"):
        head.start()
    assert head.pid() is None
