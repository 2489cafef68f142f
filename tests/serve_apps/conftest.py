"""One deploy for the package's tests: an endpoint holding a version of every framework, and
one whose artifact is corrupt, side by side on the session's Ray head (a single PUT, since
replicas start slowly on two cores)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.serve_apps import models
from tests.serve_apps.serving import ServeHead, application, version

PREFIX = "serveapps-test--"
ENDPOINT_APP, BROKEN_APP = f"{PREFIX}models", f"{PREFIX}broken"
ENDPOINT, BROKEN = "serveapps/models", "serveapps/broken"
BATCHING = {"max_batch_size": 16, "batch_wait_timeout_s": 0.2}


@dataclass
class Deployed:
    head: ServeHead
    statuses: dict[str, Any]
    versions: dict[str, dict[str, Any]]  # by label, model@version
    frame: pd.DataFrame

    def client(self, endpoint: str = ENDPOINT) -> httpx.Client:
        return httpx.Client(base_url=f"{self.head.url}/serve/{endpoint}", timeout=60)

    def async_client(self, endpoint: str = ENDPOINT) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=32)
        return httpx.AsyncClient(
            base_url=f"{self.head.url}/serve/{endpoint}", timeout=60, limits=limits
        )


def _versions(folder: Path, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """sk@1 and sk@2 share the traffic 80/20; the others (weight 0) answer when named.
    xgb is version 1 too, so that a bare `1` is ambiguous."""
    sklearn = str(models.sklearn(folder, frame))
    counting = str(models.custom(folder))
    return [
        version("sk-v1", "sk", 1, sklearn, "sklearn", weight=80),
        version("sk-v2", "sk", 2, sklearn, "sklearn", weight=20),
        version("xgb-v1", "xgb", 1, str(models.xgboost(folder, frame)), "xgboost"),
        version("lgbm-v4", "lgbm", 4, str(models.lightgbm(folder, frame)), "lightgbm"),
        version(
            "ts-v5", "ts", 5, str(models.torchscript(folder)), "torchscript", features=["x", "z"]
        ),
        # No features: rows are passed on as they come.
        version("onnx-v6", "onnx", 6, str(models.onnx(folder, frame)), "onnx"),
        version(
            "tf-v7", "tf", 7, str(models.tensorflow(folder)), "tensorflow", features=["x", "z"]
        ),
        version("count-v8", "count", 8, counting, "custom", entry="counting:Counting"),
        version("count-v9", "count", 9, counting, "custom", entry="counting:Counting"),
    ]


@pytest.fixture(scope="package")
def deployed(
    ray_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    folder = tmp_path_factory.mktemp("serve-models")
    frame = models.points()
    versions = _versions(folder, frame)
    broken = version("broken-v4", "broken", 4, str(models.corrupt(folder)), "sklearn", weight=1)
    head = ServeHead(ray_settings, PREFIX)
    head.put(
        [
            application(ENDPOINT_APP, ENDPOINT, versions, {"count-v8": BATCHING}),
            application(BROKEN_APP, BROKEN, [broken]),
        ]
    )
    try:
        statuses = head.wait([ENDPOINT_APP, BROKEN_APP])
        running = statuses[ENDPOINT_APP]
        assert running["status"] == "RUNNING", {
            name: deployment["message"] for name, deployment in running["deployments"].items()
        }
        labels = {f"{v['model']}@{v['version']}": v for v in [*versions, broken]}
        yield Deployed(head, statuses, labels, frame)
    finally:
        head.remove_ours()
