"""The Ray Jobs door, driven by Ray's own tools: the `ray job` CLI and `JobSubmissionClient`.

Jobs that enter through the door are Fabric jobs: admitted against quota, listed by Fabric,
metered; and one project's door shows nothing of another's.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray
import websockets
from ray.job_submission import JobStatus, JobSubmissionClient

from fabric.api.routers import ray_door
from tests import stacks
from tests.factories import Project, create_project
from tests.jobs import TERMINAL, WAIT_FOR_GO, signal_go, wait_for
from tests.server import Server

RAY = str(Path(sys.executable).with_name("ray"))


def door(server: Server, project: str) -> str:
    return f"{server.url}/ray/{project}"


def ray_cli(server: Server, project: str, token: str, *args: str, cwd: Path | None = None):
    """`ray job ARGS --address DOOR --headers ...`, as a user on a laptop runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    command, *rest = args
    return subprocess.run(
        [
            RAY,
            "job",
            command,
            "--address",
            door(server, project),
            "--headers",
            json.dumps({"Authorization": f"Bearer {token}"}),
            *rest,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=180,
    )


def sdk(server: Server, project: str, token: str) -> JobSubmissionClient:
    return JobSubmissionClient(door(server, project), headers={"Authorization": f"Bearer {token}"})


def fabric_job(server: Server, project: Project, job_id: int | str) -> dict:
    with server.client(project.owner.token) as client:
        response = client.get(f"/api/v1/projects/{project.name}/jobs/{job_id}")
        response.raise_for_status()
        return response.json()


def test_ray_job_submit_with_a_working_dir_runs_as_a_fabric_job(
    server: Server, tmp_path: Path
) -> None:
    project = create_project(server)
    code = tmp_path / "code"
    code.mkdir()
    (code / "settings.txt").write_text("learning-rate=0.1")
    (code / "train.py").write_text(
        "import os, pathlib\n"
        "print('read', pathlib.Path('settings.txt').read_text())\n"
        "print('project', os.environ['FABRIC_PROJECT'])\n"
    )
    member = project.member.token
    submitted = ray_cli(
        server,
        project.name,
        member,
        "submit",
        "--working-dir",
        str(code),
        "--entrypoint-num-cpus",
        "0.5",
        "--",
        "python",
        "train.py",
    )
    assert submitted.returncode == 0, submitted.stderr + submitted.stdout
    assert "read learning-rate=0.1" in submitted.stdout
    assert f"project {project.name}" in submitted.stdout
    assert "succeeded" in submitted.stdout

    # It is a Fabric job of the member's, admitted with what the ray CLI asked for.
    with server.client(member) as client:
        listed = client.get(f"/api/v1/projects/{project.name}/jobs").json()
        usage = client.get(f"/api/v1/projects/{project.name}/usage").json()
    [job] = listed
    assert (job["user"], job["status"]) == (project.member.username, "SUCCEEDED")
    assert job["resources"] == {"cpu": 0.5}
    assert job["entrypoint"] == "python train.py"
    assert [line["user"] for line in usage] == [project.member.username]
    packages = Path(server.settings.storage_root) / "projects" / project.name / "packages"
    assert [p.name.startswith("_ray_pkg_") for p in packages.iterdir()] == [True]

    # Ray's other commands see it by Fabric's id.
    status = ray_cli(server, project.name, member, "status", str(job["id"]))
    assert f"Job '{job['id']}' succeeded" in status.stdout, status.stderr
    logs = ray_cli(server, project.name, member, "logs", str(job["id"]))
    assert "read learning-rate=0.1" in logs.stdout, logs.stderr
    listing = ray_cli(server, project.name, member, "list")
    assert f"submission_id='{job['id']}'" in listing.stdout, listing.stderr


def test_job_submission_client_names_follows_and_stops_jobs(server: Server) -> None:
    project = create_project(server)
    client = sdk(server, project.name, project.member.token)
    name = "named-run"
    assert client.submit_job(entrypoint=WAIT_FOR_GO, submission_id=name) == name
    with pytest.raises(RuntimeError, match="already used"):
        client.submit_job(entrypoint="python -c pass", submission_id=name)

    async def until_waiting() -> str:
        seen = ""
        async for chunk in client.tail_job_logs(name):
            seen += chunk
            if "waiting" in seen:
                break
        return seen

    assert "waiting" in asyncio.run(until_waiting())
    # Fabric learns that Ray runs it at its next reconciler pass.
    wait_for(lambda: fabric_job(server, project, fabric_id(client, name)), {"RUNNING"})
    assert client.get_job_status(name) == JobStatus.RUNNING
    assert client.stop_job(name) is True
    job = wait_for(lambda: fabric_job(server, project, fabric_id(client, name)), TERMINAL)
    assert job["status"] == "STOPPED"
    assert client.get_job_info(name).status == JobStatus.STOPPED
    with pytest.raises(RuntimeError, match="keeps every job"):
        client.delete_job(name)


def fabric_id(client: JobSubmissionClient, name: str) -> int:
    return int(client.get_job_info(name).metadata["fabric_job"])


def test_log_tail_follows_retries_until_the_job_has_ended(server: Server) -> None:
    project = create_project(server)
    client = sdk(server, project.name, project.member.token)
    failing = "python -c \"print('attempt', flush=True); raise SystemExit(3)\""
    job = client.submit_job(entrypoint=failing, metadata={"fabric_max_retries": "1"})

    async def everything() -> str:
        return "".join([chunk async for chunk in client.tail_job_logs(job)])

    # The stream closes only once Fabric has recorded the end: the status read next agrees.
    assert asyncio.run(everything()).count("\nattempt\n") == 2
    info = client.get_job_info(job)
    assert info.status == JobStatus.FAILED
    assert fabric_job(server, project, job)["attempt"] == 2


def test_quota_applies_at_the_door(server: Server) -> None:
    project = create_project(server)
    with server.admin() as admin:
        admin.put(
            f"/api/v1/projects/{project.name}/quotas",
            json={"resource": "cpu", "kind": "single", "limit": 1},
        ).raise_for_status()
    refused = ray_cli(
        server,
        project.name,
        project.member.token,
        "submit",
        "--entrypoint-num-cpus",
        "2",
        "--",
        "python",
        "-c",
        "pass",
    )
    assert refused.returncode != 0
    assert "409" in refused.stderr and "cpu" in refused.stderr and "single" in refused.stderr
    with server.client(project.owner.token) as client:
        assert client.get(f"/api/v1/projects/{project.name}/jobs").json() == []


def test_one_projects_door_shows_nothing_of_another(server: Server) -> None:
    a, b = create_project(server), create_project(server)
    client_a = sdk(server, a.name, a.member.token)
    job = client_a.submit_job(entrypoint=WAIT_FOR_GO, entrypoint_num_cpus=0.1)
    try:
        # B's member on A's door: A does not exist for them.
        with server.client(b.member.token) as outsider:
            base = f"/ray/{a.name}/api/jobs"
            for method, path in (
                ("GET", f"{base}/{job}"),
                ("GET", f"{base}/{job}/logs"),
                ("POST", f"{base}/{job}/stop"),
                ("GET", f"{base}/"),
            ):
                assert outsider.request(method, path).status_code == 404, path
            # The version check answers every name alike (Ray's client needs it answered).
            version = outsider.get(f"/ray/{a.name}/api/version")
            assert version.json() == outsider.get("/ray/no-such-project/api/version").json()
            # A's job through B's own door: not one of B's.
            own = f"/ray/{b.name}/api/jobs"
            assert outsider.get(f"{own}/{job}").status_code == 404
            assert outsider.post(f"{own}/{job}/stop").status_code == 404
            assert outsider.get(f"{own}/").json() == []
        with pytest.raises(websockets.InvalidStatus):
            asyncio.run(_tail(server, a.name, job, b.member.token))
        assert client_a.get_job_status(job) in (JobStatus.PENDING, JobStatus.RUNNING)
    finally:
        signal_go(server, a.name)
    assert wait_for(lambda: fabric_job(server, a, job), TERMINAL)["status"] == "SUCCEEDED"


async def _tail(server: Server, project: str, job: str, token: str | None) -> str:
    url = door(server, project).replace("http://", "ws://") + f"/api/jobs/{job}/logs/tail"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(url, additional_headers=headers) as socket:
        return "".join([message async for message in socket])


def test_anonymous_callers_are_refused_everywhere(server: Server) -> None:
    project = create_project(server)
    with server.client() as anonymous:
        base = f"/ray/{project.name}"
        for method, path in (
            ("GET", "/api/version"),
            ("GET", "/api/jobs/"),
            ("POST", "/api/jobs/"),
            ("GET", "/api/packages/gcs/x.zip"),
            ("PUT", "/api/packages/gcs/x.zip"),
            ("GET", "/dashboard/"),
        ):
            assert anonymous.request(method, base + path).status_code == 401, path
    with pytest.raises(websockets.InvalidStatus):
        asyncio.run(_tail(server, project.name, "1", None))
    refused = subprocess.run(
        [RAY, "job", "list", "--address", door(server, project.name)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
        timeout=120,
    )
    assert refused.returncode != 0 and "Authentication required" in refused.stderr


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


@stacks.WITHOUT_RAY
def test_ray_cli_says_a_misspelt_or_hidden_project_is_not_found(server: Server) -> None:
    project, hidden = create_project(server), create_project(server)
    missing = f"{project.name}-typo"
    answers = []
    for name in (missing, hidden.name):
        refused = ray_cli(server, name, project.member.token, "submit", "--", "echo", "hi")
        assert refused.returncode != 0
        assert "Jobs API is not supported" not in refused.stderr
        assert f"project {name!r} not found" in last_line(refused.stderr), refused.stderr
        answers.append(last_line(refused.stderr).replace(name, "NAME"))
    # A project of others' reads exactly as one that does not exist.
    assert answers[0] == answers[1]
    with server.client(hidden.owner.token) as owner:
        assert owner.get(f"/api/v1/projects/{hidden.name}/jobs").json() == []


@stacks.WITHOUT_RAY
def test_ray_cli_without_a_fabric_token_is_told_how_to_pass_one(server: Server) -> None:
    project = create_project(server)
    how = """--headers '{"Authorization": "Bearer <Fabric API token>"}'"""
    anonymous = subprocess.run(
        [RAY, "job", "submit", "--address", door(server, project.name), "--", "echo", "hi"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
        timeout=120,
    )
    assert anonymous.returncode != 0
    assert how in anonymous.stderr and "fabric token create" in anonymous.stderr
    wrong = ray_cli(server, project.name, "fabp_not-a-token", "list")
    assert wrong.returncode != 0
    assert "invalid token" in wrong.stderr and how in wrong.stderr
    with server.client() as client:
        answer = client.get(f"/ray/{project.name}/api/version")
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert answer.text == ray_door.TOKEN_HINT and how in answer.text


def test_a_job_runs_only_its_own_projects_packages(server: Server, tmp_path: Path) -> None:
    a, b = create_project(server), create_project(server)
    (tmp_path / "main.py").write_text("print('code of a')")
    sdk(server, a.name, a.member.token).submit_job(
        entrypoint="python main.py", runtime_env={"working_dir": str(tmp_path)}
    )
    [package] = (Path(server.settings.storage_root) / "projects" / a.name / "packages").iterdir()
    with server.client(b.member.token) as client:
        stolen = client.post(
            f"/ray/{b.name}/api/jobs/",
            json={
                "entrypoint": "python main.py",
                "runtime_env": {"working_dir": f"gcs://{package.name}"},
            },
        )
        assert stolen.status_code == 422
        assert "was not uploaded to project" in stolen.json()["detail"]
        assert client.get(f"/ray/{b.name}/api/packages/gcs/{package.name}").status_code == 404
        local = client.post(
            f"/ray/{b.name}/api/jobs/",
            json={"entrypoint": "ls", "runtime_env": {"working_dir": str(tmp_path)}},
        )
        assert local.status_code == 422 and "remote URI" in local.json()["detail"]


def test_uploads_are_checked(server: Server) -> None:
    project = create_project(server)
    with server.client(project.member.token) as client:
        route = f"/ray/{project.name}/api/packages/gcs"
        not_zip = client.put(f"{route}/_ray_pkg_x.zip", content=b"plain text")
        assert not_zip.status_code == 422 and "not a zip" in not_zip.json()["detail"]
        bad_name = client.put(f"{route}/..%2Fescape.zip", content=b"x")
        assert bad_name.status_code in (404, 422)
        too_big = client.put(
            f"{route}/_ray_pkg_big.zip",
            content=b"0" * (server.settings.max_package_mib * 2**20 + 1),
        )
        assert too_big.status_code == 413 and "FABRIC_MAX_PACKAGE_MIB" in too_big.json()["detail"]
    with server.client(project.viewer.token) as viewer:
        assert viewer.put(f"{route}/_ray_pkg_v.zip", content=b"x").status_code == 403
    left = list((Path(server.settings.storage_root) / "projects" / project.name).rglob("*"))
    assert [p for p in left if p.is_file()] == [], "nothing refused is kept"


def test_version_names_the_clusters_ray(server: Server) -> None:
    project = create_project(server)
    with server.client(project.viewer.token) as client:
        answer = client.get(f"/ray/{project.name}/api/version").json()
    assert answer["ray_version"] == ray.__version__
    assert int(answer["version"]) >= 4


def test_bad_requests_name_what_to_fix(server: Server) -> None:
    project = create_project(server)
    route = f"/ray/{project.name}/api/jobs/"
    with server.client(project.member.token) as client:
        for metadata, field in (
            ({"fabric_max_retries": "99"}, "metadata.fabric_max_retries"),
            ({"fabric_timeout_seconds": "soon"}, "metadata.fabric_timeout_seconds"),
        ):
            answer = client.post(route, json={"entrypoint": "true", "metadata": metadata})
            assert answer.status_code == 422
            assert answer.json()["detail"].startswith(f"{field}: ")
        labels = client.post(
            route, json={"entrypoint": "true", "entrypoint_label_selector": {"zone": "a"}}
        )
        assert labels.status_code == 422 and "by pool" in labels.json()["detail"]
        assert client.get(f"/api/v1/projects/{project.name}/jobs").json() == []
