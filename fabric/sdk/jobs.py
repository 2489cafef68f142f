"""Jobs: commands and templates run on Ray once quota admits them, their output, and the
project's Ray dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fabric.api.schemas.jobs import DashboardLink, JobPublic, JobResultsPublic
from fabric.sdk.transport import Transport, part, query


class JobsApi(Transport):
    def _jobs(self, project: str) -> str:
        return f"/api/v1/projects/{part(project)}/jobs"

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
    ) -> JobPublic:
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
        return self._one(JobPublic, "POST", self._jobs(project), json=body)

    def list_jobs(
        self,
        project: str,
        *,
        status: str | None = None,
        user: str | None = None,
        limit: int | None = None,
    ) -> list[JobPublic]:
        """The project's jobs, newest first."""
        params = query(status=status, user=user, limit=limit)
        return self._many(JobPublic, "GET", self._jobs(project), params=params)

    def get_job(self, project: str, job_id: int) -> JobPublic:
        return self._one(JobPublic, "GET", f"{self._jobs(project)}/{part(job_id)}")

    def stop_job(self, project: str, job_id: int) -> JobPublic:
        """Stop the job (its user or a project owner); a job that has ended is left as it is."""
        return self._one(JobPublic, "POST", f"{self._jobs(project)}/{part(job_id)}/stop")

    def job_logs(self, project: str, job_id: int) -> str:
        """The output of the job's current attempt so far."""
        return self._text("GET", f"{self._jobs(project)}/{part(job_id)}/logs")

    def follow_job_logs(self, project: str, job_id: int) -> Iterator[str]:
        """The job's output as it is written, until the job ends; a queued job is waited for."""
        return self._follow(f"{self._jobs(project)}/{part(job_id)}/logs", {"follow": "true"})

    def job_outputs(self, project: str, job_id: int) -> JobResultsPublic:
        """What the job wrote to outputs.json, and every metric it reported so far."""
        path = f"{self._jobs(project)}/{part(job_id)}/outputs"
        return self._one(JobResultsPublic, "GET", path)

    def open_dashboard(self, project: str) -> str:
        """A link to the project's Ray dashboard for a browser: it works once, for a minute."""
        path = f"/api/v1/projects/{part(project)}/dashboard"
        return self.url + self._one(DashboardLink, "POST", path).url
