"""Deploying Serve applications on the session's Ray head the way the Fabric server does.

Serve's REST API replaces every application at once, and other test modules deploy on the
same head: a module changes only the applications whose names start with its prefix and
sends the others back as they were deployed.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from fabric.backends.local_head import LocalRayHead
from fabric.config import Settings

APPLICATIONS = "/api/serve/applications/"
SETTLED = {"RUNNING", "DEPLOY_FAILED"}


class ServeHead:
    """The session head's Serve, through its dashboard's REST API."""

    def __init__(self, ray_settings: dict[str, Any], prefix: str) -> None:
        head = LocalRayHead(Settings(home=ray_settings["ray_folder"], **ray_settings))
        self.prefix = prefix
        self.port = ray_settings["ray_serve_port"]
        self.url = f"http://127.0.0.1:{self.port}"
        self.dashboard = httpx.Client(
            base_url=head.dashboard_url, headers=head.auth_headers(), timeout=60
        )

    def status(self) -> dict[str, Any]:
        response = self.dashboard.get(APPLICATIONS)
        response.raise_for_status()
        return response.json()

    def _others(self) -> list[dict[str, Any]]:
        applications = self.status()["applications"]
        return [
            app["deployed_app_config"]
            for name, app in applications.items()
            if not name.startswith(self.prefix) and app.get("deployed_app_config")
        ]

    def put(self, applications: list[dict[str, Any]]) -> None:
        """Deploy `applications` (named with the prefix) beside everyone else's."""
        assert all(app["name"].startswith(self.prefix) for app in applications)
        body = {
            "http_options": {"host": "127.0.0.1", "port": self.port},
            "applications": self._others() + applications,
        }
        response = self.dashboard.put(APPLICATIONS, json=body)
        assert response.status_code == 200, response.text

    def wait(self, names: list[str], timeout: float = 150) -> dict[str, Any]:
        """The applications' statuses once each is RUNNING or DEPLOY_FAILED."""
        deadline = time.monotonic() + timeout
        while True:
            applications = self.status()["applications"]
            found = {name: applications[name] for name in names if name in applications}
            if len(found) == len(names) and all(a["status"] in SETTLED for a in found.values()):
                return found
            assert time.monotonic() < deadline, {n: a["status"] for n, a in found.items()}
            time.sleep(0.25)

    def remove_ours(self) -> None:
        self.put([])
        self.dashboard.close()


def application(
    name: str,
    endpoint: str,
    versions: list[dict[str, Any]],
    user_configs: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An endpoint's application as the server writes it; small replicas so that all fit."""
    deployments = [
        {
            "name": "router",
            "num_replicas": 1,
            "ray_actor_options": {"num_cpus": 0.05},
            "max_ongoing_requests": 100,
        }
    ]
    for version in versions:
        deployment = {
            "name": version["name"],
            "num_replicas": 1,
            "ray_actor_options": {"num_cpus": 0.05, "num_gpus": 0},
            "max_ongoing_requests": 32,
            "health_check_period_s": 10,
            "health_check_timeout_s": 30,
        }
        if user_configs and version["name"] in user_configs:
            deployment["user_config"] = user_configs[version["name"]]
        deployments.append(deployment)
    return {
        "name": name,
        "route_prefix": f"/serve/{endpoint}",
        "import_path": "serve_apps.router:app_builder",
        "runtime_env": {"env_vars": {"FABRIC_PROJECT": endpoint.split("/")[0]}},
        "args": {"endpoint": endpoint, "versions": versions},
        "deployments": deployments,
    }


def version(
    name: str,
    model: str,
    number: int,
    uri: str,
    framework: str,
    *,
    weight: float = 0,
    features: list[str] | None = None,
    entry: str | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "version": number,
        "uri": uri,
        "framework": framework,
        "entry": entry,
        "features": features,
        "weight": weight,
    }
