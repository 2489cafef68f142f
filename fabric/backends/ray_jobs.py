"""A thin client of a Ray head's Jobs REST API, shared by every backend.

The control plane speaks HTTP to Ray instead of importing Ray: the server stays light, and
the Ray Jobs door passes the very same API through to users' `ray job` commands.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from fabric.backends.base import BackendRefused, BackendUnavailable, JobSpec, JobState
from fabric.states import JobStatus


class RayJobsApi:
    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 30) -> None:
        self.base_url = base_url
        self.headers = dict(headers)
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"Ray at {self.base_url} does not answer ({exc})") from exc

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code >= 400:
            raise BackendRefused(response.text.strip() or f"HTTP {response.status_code}")
        return response.json()

    def version(self) -> str:
        return self._call("GET", "/api/version")["ray_version"]

    def nodes(self) -> list[dict[str, Any]]:
        """Ray's nodes (State API), each with its `state` and `resources_total`."""
        return self._call("GET", "/api/v0/nodes")["data"]["result"]["result"]

    def ensure_package(self, uri: str, path: Path) -> None:
        """Upload a package unless the head has it; asking also pins it there for a while."""
        protocol, name = uri.split("://", 1)
        route = f"/api/packages/{protocol}/{name}"
        if self._request("GET", route).status_code == 200:
            return
        with path.open("rb") as handle:
            response = self._request("PUT", route, content=handle)
        if response.status_code != 200:
            raise BackendRefused(f"upload of {uri} failed: HTTP {response.status_code}")

    def submit(self, spec: JobSpec) -> str:
        entrypoint = spec.entrypoint
        if spec.cwd:
            # Ray has no field for it: its job supervisor runs the entrypoint in a shell.
            entrypoint = f"cd {shlex.quote(spec.cwd)} && {entrypoint}"
        body: dict[str, Any] = {
            "entrypoint": entrypoint,
            "submission_id": spec.submission_id,
            "runtime_env": spec.runtime_env,
            "metadata": spec.metadata,
            "entrypoint_num_cpus": spec.cpu,
            "entrypoint_num_gpus": spec.gpu,
            "entrypoint_resources": spec.custom_resources,
        }
        if spec.memory_gib:
            body["entrypoint_memory"] = int(spec.memory_gib * 2**30)
        return self._call("POST", "/api/jobs/", json=body)["submission_id"]

    def state(self, submission_id: str) -> JobState:
        info = self._call("GET", f"/api/jobs/{submission_id}")
        return JobState(
            status=JobStatus(info["status"]),
            message=info.get("message") or "",
            start_time=(info.get("start_time") or 0) / 1000 or None,
            end_time=(info.get("end_time") or 0) / 1000 or None,
        )

    def stop(self, submission_id: str) -> bool:
        return bool(self._call("POST", f"/api/jobs/{submission_id}/stop")["stopped"])

    def logs(self, submission_id: str) -> str:
        return self._call("GET", f"/api/jobs/{submission_id}/logs")["logs"]

    def follow_logs(self, submission_id: str) -> Iterator[str]:
        return follow(lambda: self.state(submission_id), lambda: self.logs(submission_id))

    def busy(self) -> bool:
        """Whether the cluster runs anything: a job not yet ended, or a Serve application."""
        if self.unfinished():
            return True
        serve = self._call("GET", "/api/serve/applications/")
        return bool(serve.get("applications"))

    def unfinished(self) -> list[str]:
        """The submission ids of the jobs not yet ended (the warm runner's among them)."""
        return [
            job["submission_id"]
            for job in self._call("GET", "/api/jobs/")
            if job["submission_id"] and not JobStatus(job["status"]).terminal
        ]

    def serve_running(self) -> bool:
        """Whether Serve runs (its controller lives), asked of Ray's state API: Serve's own
        API spends seconds connecting to Ray on its first call, even to say it runs nothing."""
        params = {
            "filter_keys": ["class_name", "state"],
            "filter_predicates": ["=", "="],
            "filter_values": ["ServeController", "ALIVE"],
            "detail": "false",
        }
        return bool(self._call("GET", "/api/v0/actors", params=params)["data"]["result"]["result"])

    def delete_serve(self) -> None:
        """Delete every Serve application of the cluster; Serve shuts down."""
        response = self._request("DELETE", "/api/serve/applications/")
        if response.status_code >= 400:
            raise BackendRefused(response.text.strip() or f"HTTP {response.status_code}")

    def apply_serve(self, config: dict[str, Any]) -> None:
        """Declare the head's whole set of Serve applications (Serve's declarative API)."""
        response = self._request("PUT", "/api/serve/applications/", json=config)
        if response.status_code >= 400:
            raise BackendRefused(response.text.strip() or f"HTTP {response.status_code}")

    def serve_applications(self) -> dict[str, dict[str, Any]]:
        """Serve's applications by name, each with its status and deployed config."""
        return self._call("GET", "/api/serve/applications/").get("applications") or {}


def follow(
    state: Callable[[], JobState], logs: Callable[[], str], interval: float = 0.2
) -> Iterator[str]:
    """Yield new log text as it appears, until the job has ended and all is read.

    An idle poll yields an empty string, so a consumer can notice its client is gone.
    """
    seen = 0
    while True:
        ended = state().status.terminal
        text = logs()
        yield text[seen:]
        seen = len(text)
        if ended:
            return
        time.sleep(interval)


# Ray's resource names and units, and Fabric's; Ray's per-node markers are left out.
_RAY_NAMES = {"CPU": ("cpu", 1.0), "GPU": ("gpu", 1.0), "NPU": ("npu", 1.0)}
_RAY_MEMORY = ("memory", 2.0**30)
# `pool:` marks the nodes of a KubeRay pool (kuberay.pods), not something jobs ask for.
_RAY_INTERNAL = ("node:", "object_store_memory", "accelerator_type:", "pool:")


def fabric_resources(per_node: Iterable[dict[str, float]]) -> dict[str, float]:
    """Sum Ray's per-node resources into Fabric's names and units (memory in GiB)."""
    total: dict[str, float] = {}
    for resources in per_node:
        for name, amount in resources.items():
            if name.startswith(_RAY_INTERNAL):
                continue
            fabric_name, unit = (
                _RAY_MEMORY if name == "memory" else _RAY_NAMES.get(name, (name, 1.0))
            )
            total[fabric_name] = total.get(fabric_name, 0.0) + amount / unit
    return total
