"""The model server on real Serve: each framework answers as it predicts locally, batching
gathers concurrent calls, and a model that cannot load fails its deployment by name."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import numpy as np
import pytest

from fabric.runtime import model_files
from tests.serve_apps.conftest import BROKEN_APP, Deployed
from tests.serve_apps.models import FEATURES

LABELS = ["sk@1", "xgb@1", "lgbm@4", "ts@5", "onnx@6", "tf@7"]


@pytest.mark.parametrize("label", LABELS)
def test_each_framework_serves_what_it_predicts_locally(deployed: Deployed, label: str) -> None:
    spec = deployed.versions[label]
    rows = deployed.frame[FEATURES].head(25)
    local = model_files.load(spec["uri"], spec["framework"]).predict(rows)
    with deployed.client() as client:
        for body in (rows.to_dict("records"), rows.to_numpy().tolist()):
            response = client.post(
                "/predict", json={"instances": body}, headers={"x-fabric-version": label}
            )
            assert response.status_code == 200, response.text
            assert response.headers["x-fabric-model-version"] == label
            answer = response.json()
            assert (answer["model"], answer["version"]) == (spec["model"], spec["version"])
            np.testing.assert_allclose(answer["predictions"], np.asarray(local), rtol=1e-6)


def test_one_instance_gets_one_prediction(deployed: Deployed) -> None:
    rows = deployed.frame[FEATURES].head(3)
    named = {"x-fabric-version": "sk@1"}
    with deployed.client() as client:
        many = client.post("/predict", json={"instances": rows.to_dict("records")}, headers=named)
        predictions = many.json()["predictions"]
        for number, row in enumerate(rows.to_dict("records")):
            for instance in (row, [row["x"], row["z"]]):
                one = client.post("/predict", json={"instance": instance}, headers=named)
                assert one.json() == {
                    "prediction": predictions[number],
                    "model": "sk",
                    "version": 1,
                }


async def _concurrently(deployed: Deployed, label: str, xs: list[float]) -> list[Any]:
    """One request per x, all at once, to version `label`."""
    async with deployed.async_client() as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/predict", json={"instance": {"x": x}}, headers={"x-fabric-version": label}
                )
                for x in xs
            )
        )


def test_batching_predicts_concurrent_calls_together(deployed: Deployed) -> None:
    """The custom model answers each row with the size of the frame it was given."""
    batched = asyncio.run(_concurrently(deployed, "count@8", [1.0] * 16))
    assert all(response.status_code == 200 for response in batched)
    sizes = Counter(response.json()["prediction"] for response in batched)
    assert max(sizes) > 1, sizes
    # Each batch of n calls gave n answers of n: the rows were split back per call.
    assert all(count % size == 0 for size, count in sizes.items()), sizes

    alone = asyncio.run(_concurrently(deployed, "count@9", [1.0] * 16))
    assert [response.json()["prediction"] for response in alone] == [1] * 16


def test_a_failing_call_fails_alone_in_its_batch(deployed: Deployed) -> None:
    responses = asyncio.run(_concurrently(deployed, "count@8", [1.0] * 7 + [-1.0] + [1.0] * 7))
    statuses = [response.status_code for response in responses]
    assert statuses == [200] * 7 + [500] + [200] * 7
    assert responses[7].json() == {"detail": "model count@8 failed: x must not be negative"}
    assert responses[7].headers["x-fabric-model-version"] == "count@8"


def test_a_model_that_cannot_load_fails_its_deployment_naming_the_version(
    deployed: Deployed,
) -> None:
    app = deployed.statuses[BROKEN_APP]
    assert app["status"] == "DEPLOY_FAILED"
    assert "broken-v4" in app["message"]
    deployment = app["deployments"]["broken-v4"]
    assert deployment["status"] == "DEPLOY_FAILED"
    uri = deployed.versions["broken@4"]["uri"]
    assert (
        f"version broken-v4 (broken@4) cannot load its sklearn model at {uri}"
        in (deployment["message"])
    )
