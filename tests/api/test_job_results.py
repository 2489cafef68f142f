"""A job's outputs, metrics and files through the API, as its project sees them."""

from __future__ import annotations

from tests.factories import create_project
from tests.jobs import TERMINAL, wait_for
from tests.server import Server

# What a template does through fabric.runtime, plus a picture and a file that must stay hidden.
RESULTS_SCRIPT = """
from fabric import runtime
runtime.report_metrics(step=1, loss=0.9)
runtime.report_metrics(step=2, loss=0.4)
(runtime.run_dir() / "plots").mkdir()
(runtime.run_dir() / "plots" / "loss.png").write_bytes(b"PNG-bytes")
(runtime.run_dir() / ".secret").write_text("hidden")
runtime.write_outputs(metrics={"loss": 0.4}, images=["plots/loss.png"])
"""


def test_outputs_metrics_and_files_of_a_job(server: Server) -> None:
    project, stranger = create_project(server), create_project(server)
    base = f"/api/v1/projects/{project.name}/jobs"
    with server.client(project.member.token) as client:
        submitted = client.post(
            base,
            json={
                "entrypoint": f"python -c {RESULTS_SCRIPT!r}".replace("\\n", "\n"),
                "resources": {"cpu": 0.25},
            },
        )
        assert submitted.status_code == 201, submitted.text
        job = wait_for(lambda: client.get(f"{base}/{submitted.json()['id']}").json(), TERMINAL)
        assert job["status"] == "SUCCEEDED", client.get(f"{base}/{job['id']}/logs").text
        found = client.get(f"{base}/{job['id']}/outputs").json()
        image = client.get(f"{base}/{job['id']}/files/plots/loss.png")
        hidden = [
            client.get(f"{base}/{job['id']}/files/{path}").status_code
            for path in (".secret", ".job_token", "plots/../.secret", "..%2F..%2Fdatasets", "plots")
        ]
    with server.client(project.viewer.token) as viewer:
        seen = viewer.get(f"{base}/{job['id']}/outputs")
    with server.client(stranger.member.token) as other:
        foreign = other.get(f"{base}/{job['id']}/outputs")

    assert found["outputs"] == {"metrics": {"loss": 0.4}, "images": ["plots/loss.png"]}
    assert [(m["step"], m["loss"]) for m in found["metrics"]] == [(1, 0.9), (2, 0.4)]
    assert image.status_code == 200 and image.content == b"PNG-bytes"
    assert hidden == [404] * 5
    assert seen.status_code == 200 and seen.json() == found
    assert foreign.status_code == 404
