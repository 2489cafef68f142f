"""The template registry over HTTP, and jobs submitted as a template with parameters."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from tests.factories import create_project, create_user
from tests.server import Server


def test_list_describes_each_template(server: Server) -> None:
    with server.client(create_user(server).token) as client:
        response = client.get("/api/v1/templates")
    assert response.status_code == 200
    listed = {t["name"]: t for t in response.json()}
    assert {"data-import", "random-forest"} <= set(listed)
    forest = listed["random-forest"]
    assert forest["module"] == "jobs.random_forest"
    assert forest["group"] == "classic-ml"
    assert forest["resources"] == {"cpu": 1.0}
    assert {"model_uri", "metrics"} <= set(forest["outputs"])
    schema = forest["parameters"]
    assert set(schema["required"]) == {"dataset", "target"}
    assert schema["properties"]["n_estimators"]["default"] == 100
    assert schema["properties"]["target"]["description"] == "the column to predict"


def test_the_classic_ml_group_lists_the_eight_scikit_learn_templates(server: Server) -> None:
    with server.client(create_user(server).token) as client:
        listed = client.get("/api/v1/templates").json()
    classic = {t["name"]: t for t in listed if t["group"] == "classic-ml"}
    assert set(classic) == {
        "adaboost",
        "bayes",
        "decision-tree",
        "gbdt",
        "kmeans",
        "knn",
        "lr",
        "random-forest",
    }
    for template in classic.values():
        assert {"model_uri", "metrics"} <= set(template["outputs"])
        assert "dataset" in template["parameters"]["required"]
    # k-means learns without a target; the others predict one.
    assert "target" not in classic["kmeans"]["parameters"]["properties"]
    assert "cluster_sizes" in classic["kmeans"]["outputs"]
    assert set(classic["gbdt"]["parameters"]["required"]) == {"dataset", "target"}


def test_show_one_and_an_unknown_one(server: Server) -> None:
    with server.client(create_user(server).token) as client:
        shown = client.get("/api/v1/templates/data-import")
        missing = client.get("/api/v1/templates/no-such-template")
    assert shown.json()["outputs"]["dataset_uri"]
    assert shown.json()["parameters"]["properties"]["format"]["default"] == "auto"
    assert missing.status_code == 404
    assert "no-such-template" in missing.json()["detail"]


def _submit(server: Server, token: str, project: str, body: dict[str, Any]) -> Any:
    with server.client(token) as client:
        return client.post(f"/api/v1/projects/{project}/jobs", json=body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "template": "random-forest",
                "params": {"dataset": "d", "target": "y", "max_depth": 0},
            },
            "params.max_depth: Input should be greater than or equal to 1",
        ),
        (
            {"template": "random-forest", "params": {"dataset": "d"}},
            "params.target: Field required",
        ),
        (
            {"template": "random-forest", "params": {"dataset": "d", "target": "y", "depth": 2}},
            "params.depth: no such parameter",
        ),
        ({"template": "no-such-template", "params": {}}, "template: template 'no-such-template'"),
        (
            {"template": "data-import", "entrypoint": "python x.py", "params": {}},
            "give either entrypoint",
        ),
        ({"resources": {"cpu": 0.1}}, "give either entrypoint"),
        ({"entrypoint": "python x.py", "params": {"a": 1}}, "params go with a template"),
    ],
)
def test_a_bad_template_request_is_422_naming_the_problem(
    server: Server, body: dict[str, Any], message: str
) -> None:
    project = create_project(server)
    response = _submit(server, project.member.token, project.name, body)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    with server.client(project.member.token) as client:
        assert client.get(f"/api/v1/projects/{project.name}/jobs").json() == []


def test_a_template_job_gets_its_command_parameters_and_default_resources(
    server: Server,
) -> None:
    project = create_project(server)
    params = {"dataset": "/data/x y.parquet", "target": "label", "max_depth": "4"}
    response = _submit(
        server, project.member.token, project.name, {"template": "random-forest", "params": params}
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["template"] == "random-forest"
    assert job["resources"] == {"cpu": 1.0}
    # Every parameter is stored validated, defaults included, and passed as a flag.
    assert job["params"]["max_depth"] == 4
    assert job["params"]["n_estimators"] == 100
    words = shlex.split(job["entrypoint"])
    assert words[:3] == ["python", "-m", "jobs.random_forest"]
    assert words[words.index("--dataset") + 1] == "/data/x y.parquet"
    assert words[words.index("--max-depth") + 1] == "4"
    with server.client(project.member.token) as client:
        client.post(f"/api/v1/projects/{project.name}/jobs/{job['id']}/stop")


def test_resources_given_in_the_request_win_over_the_template(server: Server) -> None:
    project = create_project(server)
    body = {
        "template": "data-import",
        "params": {"source": "/nowhere.csv", "name": "x"},
        "resources": {"cpu": 0.1},
    }
    response = _submit(server, project.member.token, project.name, body)
    assert response.status_code == 201, response.text
    assert response.json()["resources"] == {"cpu": 0.1}
    assert response.json()["params"]["format"] == "auto"
