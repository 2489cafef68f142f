"""The endpoint's router on real Serve: weights, the version header, and its answers to bad
requests."""

from __future__ import annotations

import asyncio
import math
from collections import Counter

import pytest

from serve_apps.router import app_builder
from tests.serve_apps.conftest import ENDPOINT, Deployed

ROW = {"x": 3.0, "z": 4.0}
VERSIONS = "sk@1, sk@2, xgb@1, lgbm@4, ts@5, onnx@6, tf@7, count@8, count@9"


async def _chosen(deployed: Deployed, requests: int, concurrency: int = 16) -> Counter[str]:
    """How often each version answered `requests` unnamed predictions."""
    chosen: Counter[str] = Counter()
    queue = iter(range(requests))
    async with deployed.async_client() as client:

        async def worker() -> None:
            for _ in queue:
                response = await client.post("/predict", json={"instance": ROW})
                assert response.status_code == 200, response.text
                chosen[response.headers["x-fabric-model-version"]] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return chosen


def test_traffic_follows_the_weights(deployed: Deployed) -> None:
    requests, share = 500, 0.8
    chosen = asyncio.run(_chosen(deployed, requests))
    # Versions of weight 0 never answer unless named.
    assert set(chosen) <= {"sk@1", "sk@2"}
    tolerance = 4 * math.sqrt(requests * share * (1 - share))
    assert abs(chosen["sk@1"] - requests * share) <= tolerance, chosen


@pytest.mark.parametrize(("header", "label"), [("2", "sk@2"), ("xgb@1", "xgb@1"), ("8", "count@8")])
def test_the_version_header_picks_the_version(deployed: Deployed, header: str, label: str) -> None:
    with deployed.client() as client:
        response = client.post(
            "/predict", json={"instance": ROW}, headers={"x-fabric-version": header}
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-fabric-model-version"] == label
    model, version = label.split("@")
    assert (response.json()["model"], response.json()["version"]) == (model, int(version))


@pytest.mark.parametrize(
    ("header", "status", "detail"),
    [
        ("12", 404, f"this endpoint has no version 12; it has {VERSIONS}"),
        ("sk@9", 404, f"this endpoint has no version sk@9; it has {VERSIONS}"),
        ("1", 400, "version 1 is ambiguous: name sk@1 or xgb@1"),
    ],
)
def test_a_version_header_naming_no_one_version_is_refused(
    deployed: Deployed, header: str, status: int, detail: str
) -> None:
    with deployed.client() as client:
        response = client.post(
            "/predict", json={"instance": ROW}, headers={"x-fabric-version": header}
        )
    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert "x-fabric-model-version" not in response.headers


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "the body is not JSON: "),
        (b"[1, 2]", 'the body is a JSON object: {"instances": [row, ...]}'),
        (b"{}", 'give either "instances": [row, ...] or "instance": row'),
        (b'{"instance": [1, 2], "instances": []}', 'give either "instances"'),
        (b'{"instances": []}', '"instances" is a list of one row or more'),
        (b'{"instances": {"x": 1}}', '"instances" is a list of one row or more'),
        (b'{"instance": {"x": 1}}', "row 0 has no column z, which the model reads"),
        (b'{"instances": [{"x": 1, "z": 2}, {"z": 1}]}', "row 1 has no column x, which"),
        (b'{"instance": [1]}', "row 0 has 1 values; the model reads 2 columns in this order: x, z"),
        (b'{"instances": [[1, 2], {"x": 1, "z": 2}]}', "each row is an object {column: value}"),
        (b'{"instance": 5}', "each row is an object {column: value}"),
    ],
)
def test_bad_input_is_answered_400_with_what_to_fix(
    deployed: Deployed, body: bytes, detail: str
) -> None:
    with deployed.client() as client:
        response = client.post("/predict", content=body, headers={"x-fabric-version": "sk@2"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert response.headers["x-fabric-model-version"] == "sk@2"


def test_predict_answers_at_the_prefix_too_and_only_to_post(deployed: Deployed) -> None:
    with deployed.client() as client:
        for path in ("", "/", "/predict/"):
            assert client.post(path, json={"instance": ROW}).status_code == 200
        assert client.get("/predict").status_code == 405
        assert client.put("/").status_code == 405
        missing = client.post("/explain", json={"instance": ROW})
        assert missing.status_code == 404
        assert missing.json() == {"detail": "no such path /explain; POST {prefix}/predict"}


def test_the_endpoint_describes_itself(deployed: Deployed) -> None:
    with deployed.client() as client:
        response = client.get("/")
    assert response.status_code == 200
    described = response.json()
    assert described["endpoint"] == ENDPOINT
    assert [(v["name"], v["weight"], v["framework"]) for v in described["versions"][:3]] == [
        ("sk-v1", 80.0, "sklearn"),
        ("sk-v2", 20.0, "sklearn"),
        ("xgb-v1", 0.0, "xgboost"),
    ]


def test_invalid_args_are_refused_before_anything_deploys() -> None:
    version = {"name": "a", "model": "a", "version": 1, "uri": "/m", "framework": "sklearn"}
    with pytest.raises(ValueError, match="versions\n  List should have at least 1 item"):
        app_builder({"endpoint": "p/e", "versions": []})
    with pytest.raises(ValueError, match="two versions share a name: a, a"):
        app_builder({"endpoint": "p/e", "versions": [{**version, "weight": 1}] * 2})
    with pytest.raises(ValueError, match="weight\n  Input should be greater than or equal to 0"):
        app_builder({"endpoint": "p/e", "versions": [{**version, "weight": -1}]})
