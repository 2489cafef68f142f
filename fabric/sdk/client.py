"""A small synchronous client for the Fabric REST API: one method per route, JSON in and out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

Json = Any
UPLOAD_CHUNK = 1 << 20


class ApiError(Exception):
    """The server refused a request (4xx/5xx), or could not be reached (status_code 0)."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def _part(value: str | int) -> str:
    """A path segment, escaped so that a name can never reach another route."""
    return quote(str(value), safe="")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return body["detail"]
    text = response.text.strip()
    return text[:500] if text else f"HTTP {response.status_code} {response.reason_phrase}"


def _query(**params: str | int | float | datetime | None) -> dict[str, str | int | float]:
    """Query parameters without the unset ones; datetimes as ISO 8601."""
    result: dict[str, str | int | float] = {}
    for key, value in params.items():
        if value is None:
            continue
        result[key] = value.isoformat() if isinstance(value, datetime) else value
    return result


class Client:
    """A Fabric server at `url`, called with a bearer `token` (a login session or API token)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        # A followed log is silent while the job is: only connecting may time out.
        self._stream_timeout = httpx.Timeout(timeout, read=None)

    @classmethod
    def login(cls, url: str, username: str, password: str, *, timeout: float = 30.0) -> Self:
        """A client holding a new login session for `username`."""
        with cls(url, timeout=timeout) as anonymous:
            body = anonymous._request(
                "POST", "/api/v1/auth/login", json={"username": username, "password": password}
            )
        return cls(url, body["access_token"], timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _unreachable(self, exc: httpx.TransportError) -> ApiError:
        return ApiError(0, f"cannot reach Fabric at {self.url}: {exc}")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response

    def _request(self, method: str, path: str, **kwargs: Any) -> Json:
        response = self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # Health and session

    def health(self) -> Json:
        return self._request("GET", "/healthz")

    def ready(self) -> Json:
        return self._request("GET", "/readyz")

    def logout(self) -> None:
        self._request("POST", "/api/v1/auth/logout")

    def me(self) -> Json:
        return self._request("GET", "/api/v1/users/me")

    def change_password(self, current_password: str, new_password: str) -> None:
        self._request(
            "POST",
            "/api/v1/users/me/password",
            json={"current_password": current_password, "new_password": new_password},
        )

    # Users (admins)

    def create_user(
        self,
        username: str,
        password: str | None = None,
        *,
        email: str | None = None,
        is_admin: bool = False,
    ) -> Json:
        body = {"username": username, "password": password, "email": email, "is_admin": is_admin}
        return self._request("POST", "/api/v1/users", json=body)

    def list_users(self) -> Json:
        return self._request("GET", "/api/v1/users")

    def get_user(self, username: str) -> Json:
        return self._request("GET", f"/api/v1/users/{_part(username)}")

    def update_user(
        self,
        username: str,
        *,
        email: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> Json:
        """Change only the fields given; a new password ends the user's sessions and tokens."""
        fields = {"email": email, "is_admin": is_admin, "disabled": disabled, "password": password}
        body = {key: value for key, value in fields.items() if value is not None}
        return self._request("PATCH", f"/api/v1/users/{_part(username)}", json=body)

    # API tokens of the caller

    def create_token(self, name: str, *, days: int | None = None) -> Json:
        """The new token, with its secret under "token": the only time the server shows it."""
        body = {"name": name, "expires_in_days": days}
        return self._request("POST", "/api/v1/tokens", json=body)

    def list_tokens(self) -> Json:
        return self._request("GET", "/api/v1/tokens")

    def revoke_token(self, token_id: int) -> None:
        self._request("DELETE", f"/api/v1/tokens/{_part(token_id)}")

    # Projects and members

    def create_project(self, name: str, *, description: str = "") -> Json:
        body = {"name": name, "description": description}
        return self._request("POST", "/api/v1/projects", json=body)

    def list_projects(self) -> Json:
        return self._request("GET", "/api/v1/projects")

    def get_project(self, name: str) -> Json:
        return self._request("GET", f"/api/v1/projects/{_part(name)}")

    def update_project(self, name: str, *, description: str) -> Json:
        body = {"description": description}
        return self._request("PATCH", f"/api/v1/projects/{_part(name)}", json=body)

    def delete_project(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/projects/{_part(name)}")

    def list_members(self, project: str) -> Json:
        return self._request("GET", f"/api/v1/projects/{_part(project)}/members")

    def set_member(self, project: str, username: str, role: str = "member") -> Json:
        """Add the user to the project, or change their role there."""
        path = f"/api/v1/projects/{_part(project)}/members/{_part(username)}"
        return self._request("PUT", path, json={"role": role})

    def remove_member(self, project: str, username: str) -> None:
        self._request("DELETE", f"/api/v1/projects/{_part(project)}/members/{_part(username)}")

    # Pools

    def create_pool(
        self,
        name: str,
        *,
        resources: dict[str, float] | None = None,
        node_selector: dict[str, str] | None = None,
        description: str = "",
    ) -> Json:
        body = {
            "name": name,
            "description": description,
            "resources": resources or {},
            "node_selector": node_selector or {},
        }
        return self._request("POST", "/api/v1/pools", json=body)

    def list_pools(self) -> Json:
        return self._request("GET", "/api/v1/pools")

    def get_pool(self, name: str) -> Json:
        return self._request("GET", f"/api/v1/pools/{_part(name)}")

    def delete_pool(self, name: str) -> None:
        self._request("DELETE", f"/api/v1/pools/{_part(name)}")

    def project_pools(self, project: str) -> Json:
        return self._request("GET", f"/api/v1/projects/{_part(project)}/pools")

    def grant_pool(self, project: str, pool: str) -> None:
        self._request("PUT", f"/api/v1/projects/{_part(project)}/pools/{_part(pool)}")

    def revoke_pool(self, project: str, pool: str) -> None:
        self._request("DELETE", f"/api/v1/projects/{_part(project)}/pools/{_part(pool)}")

    # Quotas

    def show_quotas(self, project: str) -> Json:
        return self._request("GET", f"/api/v1/projects/{_part(project)}/quotas")

    def set_quota(
        self,
        project: str,
        resource: str,
        kind: str,
        limit: float,
        *,
        period: str | None = None,
        user: str | None = None,
    ) -> None:
        """A project-wide limit, or one for `user` inside the project."""
        body = {
            "resource": resource,
            "kind": kind,
            "limit": limit,
            "period": period,
            "user": user,
        }
        self._request("PUT", f"/api/v1/projects/{_part(project)}/quotas", json=body)

    def remove_quota(
        self, project: str, resource: str, kind: str, *, user: str | None = None
    ) -> None:
        params = _query(resource=resource, kind=kind, user=user)
        self._request("DELETE", f"/api/v1/projects/{_part(project)}/quotas", params=params)

    # Allocations

    def create_allocation(
        self,
        project: str,
        resources: dict[str, float],
        *,
        pool: str | None = None,
        purpose: str = "",
        expected_seconds: float | None = None,
    ) -> Json:
        """Admit `resources` against the project's quotas; ApiError 409 when they do not fit."""
        body = {
            "resources": resources,
            "pool": pool,
            "purpose": purpose,
            "expected_seconds": expected_seconds,
        }
        return self._request("POST", f"/api/v1/projects/{_part(project)}/allocations", json=body)

    def list_allocations(self, project: str, *, state: str | None = None) -> Json:
        path = f"/api/v1/projects/{_part(project)}/allocations"
        return self._request("GET", path, params=_query(state=state))

    def get_allocation(self, project: str, allocation_id: int) -> Json:
        path = f"/api/v1/projects/{_part(project)}/allocations/{_part(allocation_id)}"
        return self._request("GET", path)

    def release_allocation(self, project: str, allocation_id: int) -> Json:
        path = f"/api/v1/projects/{_part(project)}/allocations/{_part(allocation_id)}/release"
        return self._request("POST", path)

    # Audit

    def platform_audit(
        self,
        *,
        project: str | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> Json:
        """Every event on the platform (admins only); pass aware datetimes."""
        params = _query(
            project=project, user=user, action=action, since=since, until=until, limit=limit
        )
        return self._request("GET", "/api/v1/audit", params=params)

    def project_audit(
        self,
        project: str,
        *,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> Json:
        """One project's events (its owners and admins); pass aware datetimes."""
        params = _query(user=user, action=action, since=since, until=until, limit=limit)
        return self._request("GET", f"/api/v1/projects/{_part(project)}/audit", params=params)

    # Templates

    def list_templates(self) -> Json:
        """The job templates, each with its parameters' JSON Schema."""
        return self._request("GET", "/api/v1/templates")

    def get_template(self, name: str) -> Json:
        """A built-in template by name, or a project's as PROJECT/NAME[@VERSION]."""
        return self._request("GET", f"/api/v1/templates/{_part(name)}")

    def register_template(self, project: str, spec: dict[str, Any]) -> Json:
        """Register the next version of a project's template: `spec` has name, command,
        parameters (JSON Schema), and optionally description, resources, workers,
        worker_resources, runtime_env and published. Jobs then run it as PROJECT/NAME."""
        return self._request("POST", f"/api/v1/projects/{_part(project)}/templates", json=spec)

    def list_project_templates(self, project: str) -> Json:
        """Every version of the project's own templates, published or not."""
        return self._request("GET", f"/api/v1/projects/{_part(project)}/templates")

    def publish_template(
        self, project: str, name: str, version: int, *, published: bool = True
    ) -> Json:
        """Let every project run this version (or, with published=False, no longer)."""
        path = f"/api/v1/projects/{_part(project)}/templates/{_part(name)}/versions/{version}"
        return self._request("PATCH", path, json={"published": published})

    # Pipelines

    def _pipelines(self, project: str) -> str:
        return f"/api/v1/projects/{_part(project)}/pipelines"

    def apply_pipeline(self, project: str, spec: dict[str, Any]) -> Json:
        """Create the pipeline named in `spec`, or replace its spec with a new version.

        ApiError 422 names the task and field of the first problem; nothing is stored then.
        """
        return self._request("PUT", f"{self._pipelines(project)}/{_part(spec['name'])}", json=spec)

    def list_pipelines(self, project: str) -> Json:
        return self._request("GET", self._pipelines(project))

    def get_pipeline(self, project: str, name: str) -> Json:
        return self._request("GET", f"{self._pipelines(project)}/{_part(name)}")

    def export_pipeline(self, project: str, name: str) -> str:
        """The pipeline's spec as YAML, ready to apply elsewhere."""
        return self._send("GET", f"{self._pipelines(project)}/{_part(name)}/export").text

    def delete_pipeline(self, project: str, name: str) -> None:
        self._request("DELETE", f"{self._pipelines(project)}/{_part(name)}")

    def copy_pipeline(self, project: str, name: str, new_name: str) -> Json:
        path = f"{self._pipelines(project)}/{_part(name)}/copy"
        return self._request("POST", path, json={"name": new_name})

    def pause_pipeline(self, project: str, name: str, *, paused: bool = True) -> Json:
        """Pause the pipeline's schedule (or, with paused=False, resume it)."""
        path = f"{self._pipelines(project)}/{_part(name)}"
        return self._request("PATCH", path, json={"paused": paused})

    def run_pipeline(
        self,
        project: str,
        name: str,
        *,
        logical_date: datetime | None = None,
        globals: dict[str, Any] | None = None,
        only: str | None = None,
    ) -> Json:
        """Queue a run; `globals` override some of the pipeline's globals for this run;
        `only` runs one task alone, with its upstream tasks' newest outputs."""
        body = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "globals": globals or {},
            "only": only,
        }
        return self._request("POST", f"{self._pipelines(project)}/{_part(name)}/runs", json=body)

    def backfill_pipeline(self, project: str, name: str, start: datetime, end: datetime) -> Json:
        """A run for each schedule tick from `start` to `end`, both included."""
        path = f"{self._pipelines(project)}/{_part(name)}/backfill"
        return self._request(
            "POST", path, json={"start": start.isoformat(), "end": end.isoformat()}
        )

    def list_pipeline_runs(self, project: str, name: str) -> Json:
        return self._request("GET", f"{self._pipelines(project)}/{_part(name)}/runs")

    def get_pipeline_run(self, project: str, name: str, run_id: int) -> Json:
        """The run with each task's status, timings, outputs and where its logs are."""
        path = f"{self._pipelines(project)}/{_part(name)}/runs/{_part(run_id)}"
        return self._request("GET", path)

    def cancel_pipeline_run(self, project: str, name: str, run_id: int) -> Json:
        path = f"{self._pipelines(project)}/{_part(name)}/runs/{_part(run_id)}/cancel"
        return self._request("POST", path)

    def rerun_pipeline_run(self, project: str, name: str, run_id: int) -> Json:
        """Run an ended run again from the tasks that did not succeed."""
        path = f"{self._pipelines(project)}/{_part(name)}/runs/{_part(run_id)}/rerun"
        return self._request("POST", path)

    # Model registry

    def _models(self, project: str) -> str:
        return f"/api/v1/projects/{_part(project)}/models"

    def register_model(
        self,
        project: str,
        name: str,
        source: str,
        *,
        framework: str | None = None,
        entry: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> Json:
        """Copy a model (a job id, a run folder, or a model file or folder in the project's
        storage or yours) into the registry as the next version of `name`."""
        body = {
            "source": source,
            "framework": framework,
            "entry": entry,
            "description": description,
            "tags": tags or {},
        }
        return self._request("POST", f"{self._models(project)}/{_part(name)}/versions", json=body)

    def list_models(self, project: str) -> Json:
        return self._request("GET", self._models(project))

    def get_model(self, project: str, name: str) -> Json:
        return self._request("GET", f"{self._models(project)}/{_part(name)}")

    def get_model_version(self, project: str, name: str, which: str | int = "latest") -> Json:
        """A version by number or alias."""
        return self._request(
            "GET", f"{self._models(project)}/{_part(name)}/versions/{_part(which)}"
        )

    def set_model_alias(self, project: str, name: str, alias: str, version: int) -> Json:
        path = f"{self._models(project)}/{_part(name)}/aliases/{_part(alias)}"
        return self._request("PUT", path, json={"version": version})

    def delete_model_alias(self, project: str, name: str, alias: str) -> None:
        self._request("DELETE", f"{self._models(project)}/{_part(name)}/aliases/{_part(alias)}")

    # Endpoints

    def _endpoint(self, project: str, name: str) -> str:
        return f"/api/v1/projects/{_part(project)}/endpoints/{_part(name)}"

    def apply_endpoint(self, project: str, name: str, spec: dict[str, Any]) -> Json:
        """Create the endpoint or give it a new spec (a new revision); Serve is updated."""
        return self._request("PUT", self._endpoint(project, name), json=spec)

    def list_endpoints(self, project: str) -> Json:
        return self._request("GET", f"/api/v1/projects/{_part(project)}/endpoints")

    def get_endpoint(self, project: str, name: str) -> Json:
        """Its spec, Serve's state of it, and the calls this server has passed to it."""
        return self._request("GET", self._endpoint(project, name))

    def delete_endpoint(self, project: str, name: str) -> None:
        self._request("DELETE", self._endpoint(project, name))

    def set_endpoint_traffic(self, project: str, name: str, weights: dict[str, float]) -> Json:
        """Weights per version, as "MODEL@VERSION" or "VERSION": {"1": 80, "2": 20}."""
        path = f"{self._endpoint(project, name)}/traffic"
        return self._request("POST", path, json={"weights": weights})

    def promote_endpoint(self, project: str, name: str, version: str | None = None) -> Json:
        path = f"{self._endpoint(project, name)}/promote"
        return self._request("POST", path, json={"version": version})

    def rollback_endpoint(self, project: str, name: str, revision: int | None = None) -> Json:
        path = f"{self._endpoint(project, name)}/rollback"
        return self._request("POST", path, json={"revision": revision})

    def endpoint_revisions(self, project: str, name: str) -> Json:
        return self._request("GET", f"{self._endpoint(project, name)}/revisions")

    def create_endpoint_key(self, project: str, name: str, key_name: str) -> Json:
        """A key that calls this endpoint only; its secret is in `key`, shown once."""
        path = f"{self._endpoint(project, name)}/keys"
        return self._request("POST", path, json={"name": key_name})

    def list_endpoint_keys(self, project: str, name: str) -> Json:
        return self._request("GET", f"{self._endpoint(project, name)}/keys")

    def revoke_endpoint_key(self, project: str, name: str, key_id: int) -> None:
        self._request("DELETE", f"{self._endpoint(project, name)}/keys/{_part(key_id)}")

    def predict(
        self, project: str, name: str, instances: list[Any], *, version: str | None = None
    ) -> Json:
        """Call the endpoint with rows (objects by column, or lists in the model's order)."""
        headers = {"x-fabric-version": version} if version else {}
        path = f"/serve/{_part(project)}/{_part(name)}/predict"
        return self._request("POST", path, json={"instances": instances}, headers=headers)

    # Jobs and usage

    def submit_job(
        self,
        project: str,
        entrypoint: str | None = None,
        *,
        template: str | None = None,
        params: dict[str, Any] | None = None,
        name: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        resources: dict[str, float] | None = None,
        workers: int | None = None,
        worker_resources: dict[str, float] | None = None,
        pool: str | None = None,
        timeout_seconds: float | None = None,
        max_retries: int = 0,
    ) -> Json:
        """Run `entrypoint`, or `template` with `params`, on Ray; it comes back QUEUED when the
        quota admits it only later.

        `resources` are the driver's; `workers` Ray workers (Train, Tune) each hold
        `worker_resources`. Whatever is left out comes from the template, or one CPU.
        ApiError 422 names a bad parameter; 409 when the job can never fit.
        """
        body = {
            "entrypoint": entrypoint,
            "template": template,
            "params": params,
            "name": name,
            "runtime_env": runtime_env or {},
            "resources": resources,
            "workers": workers,
            "worker_resources": worker_resources,
            "pool": pool,
            "timeout_seconds": timeout_seconds,
            "max_retries": max_retries,
        }
        return self._request("POST", f"/api/v1/projects/{_part(project)}/jobs", json=body)

    def list_jobs(
        self,
        project: str,
        *,
        status: str | None = None,
        user: str | None = None,
        limit: int | None = None,
    ) -> Json:
        """The project's jobs, newest first."""
        params = _query(status=status, user=user, limit=limit)
        return self._request("GET", f"/api/v1/projects/{_part(project)}/jobs", params=params)

    def get_job(self, project: str, job_id: int) -> Json:
        return self._request("GET", f"/api/v1/projects/{_part(project)}/jobs/{_part(job_id)}")

    def stop_job(self, project: str, job_id: int) -> Json:
        """Stop the job (its user or a project owner); a job that has ended is left as it is."""
        path = f"/api/v1/projects/{_part(project)}/jobs/{_part(job_id)}/stop"
        return self._request("POST", path)

    def job_logs(self, project: str, job_id: int) -> str:
        """The output of the job's current attempt so far."""
        path = f"/api/v1/projects/{_part(project)}/jobs/{_part(job_id)}/logs"
        return self._send("GET", path).text

    def job_outputs(self, project: str, job_id: int) -> Json:
        """`{"outputs": ..., "metrics": [...]}`: what the job wrote to outputs.json and every
        metric it reported so far."""
        path = f"/api/v1/projects/{_part(project)}/jobs/{_part(job_id)}/outputs"
        return self._request("GET", path)

    def has_package(self, project: str, name: str) -> bool:
        try:
            self._request("GET", f"/api/v1/projects/{_part(project)}/packages/{_part(name)}")
        except ApiError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def upload_package(
        self, project: str, path: Path, progress: Callable[[int], None] | None = None
    ) -> str:
        """Upload a zip as one of the project's packages, streamed; jobs name it `gcs://NAME`.

        `progress` hears how many bytes each chunk sent.
        """

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK):
                    yield chunk
                    if progress:
                        progress(len(chunk))

        route = f"/api/v1/projects/{_part(project)}/packages/{_part(path.name)}"
        headers = {"Content-Length": str(path.stat().st_size)}
        self._request("PUT", route, content=chunks(), headers=headers, timeout=self._stream_timeout)
        return f"gcs://{path.name}"

    def follow_job_logs(self, project: str, job_id: int) -> Iterator[str]:
        """The job's output as it is written, until the job ends; a queued job is waited for."""
        path = f"/api/v1/projects/{_part(project)}/jobs/{_part(job_id)}/logs"
        try:
            with self._http.stream(
                "GET", path, params={"follow": "true"}, timeout=self._stream_timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, _detail(response))
                yield from response.iter_text()
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def open_dashboard(self, project: str) -> str:
        """A link to the project's Ray dashboard for a browser: it works once, for a minute."""
        link = self._request("POST", f"/api/v1/projects/{_part(project)}/dashboard")
        return self.url + link["url"]

    def usage(
        self,
        project: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        group_by: str | None = None,
    ) -> Json:
        """Metered resource-seconds that ended in [since, until), per user (or per resource)."""
        params = _query(since=since, until=until, group_by=group_by)
        return self._request("GET", f"/api/v1/projects/{_part(project)}/usage", params=params)
