"""Pipelines: build one in Python instead of YAML, apply it, and run it.

    with Pipeline("churn", globals={"target": "churned"}) as p:
        prep = p.task("data-process", params={...})
        boost = p.task("xgboost", params={"dataset": prep.output("dataset_uri")}, after=prep)
    client.apply_pipeline("my-project", p.spec())

The builder only assembles the spec; the server checks it whole when it is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Self

import yaml

from fabric.api.schemas.pipelines import PipelinePublic, PipelineRunPublic
from fabric.sdk.transport import Transport, part


class Task:
    """A task of a pipeline under construction: name it in `after=`, or refer to its outputs."""

    def __init__(self, name: str, spec: dict[str, Any]) -> None:
        self.name = name
        self.spec = spec

    def output(self, key: str) -> str:
        """A reference to one of its outputs, for a later task's parameter."""
        return f"{{{{ tasks.{self.name}.outputs.{key} }}}}"


class Pipeline:
    def __init__(self, name: str, **options: Any) -> None:
        """`options` are the spec's other fields: globals, parallelism, max_active_runs,
        priority, timeout_seconds, schedule, depends_on_past, expired_limit, description."""
        self.name = name
        self.options = options
        self.tasks: dict[str, Task] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def task(
        self,
        template: str,
        *,
        name: str | None = None,
        params: dict[str, Any] | None = None,
        after: Task | Sequence[Task] = (),
        **options: Any,
    ) -> Task:
        """Add a task running `template`; its name defaults to the template's, made unique
        (`data-process` becomes `data_process`, then `data_process_2`). `options` are the
        task's other fields: resources, workers, worker_resources, pool, timeout_seconds,
        retries, skip, runtime_env."""
        base = name or template.rsplit("/", 1)[-1].split("@")[0].replace("-", "_")
        name, number = base, 1
        while name in self.tasks:
            number += 1
            name = f"{base}_{number}"
        upstream = [after] if isinstance(after, Task) else list(after)
        spec: dict[str, Any] = {"template": template, "params": params or {}, **options}
        if upstream:
            spec["after"] = [task.name for task in upstream]
        self.tasks[name] = Task(name, spec)
        return self.tasks[name]

    def spec(self) -> dict[str, Any]:
        """The pipeline as the API takes it."""
        return {
            "name": self.name,
            **self.options,
            "tasks": {name: task.spec for name, task in self.tasks.items()},
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.spec(), sort_keys=False)


class PipelinesApi(Transport):
    def _pipeline(self, project: str, name: str) -> str:
        return f"/api/v1/projects/{part(project)}/pipelines/{part(name)}"

    def _run(self, project: str, name: str, run_id: int) -> str:
        return f"{self._pipeline(project, name)}/runs/{part(run_id)}"

    def apply_pipeline(self, project: str, spec: dict[str, Any]) -> PipelinePublic:
        """Create the pipeline named in `spec`, or replace its spec with a new version.

        ApiError 422 names the task and field of the first problem; nothing is stored then.
        """
        return self._one(PipelinePublic, "PUT", self._pipeline(project, spec["name"]), json=spec)

    def list_pipelines(self, project: str) -> list[PipelinePublic]:
        return self._many(PipelinePublic, "GET", f"/api/v1/projects/{part(project)}/pipelines")

    def get_pipeline(self, project: str, name: str) -> PipelinePublic:
        return self._one(PipelinePublic, "GET", self._pipeline(project, name))

    def export_pipeline(self, project: str, name: str) -> str:
        """The pipeline's spec as YAML, ready to apply elsewhere."""
        return self._text("GET", f"{self._pipeline(project, name)}/export")

    def delete_pipeline(self, project: str, name: str) -> None:
        self._send("DELETE", self._pipeline(project, name))

    def copy_pipeline(self, project: str, name: str, new_name: str) -> PipelinePublic:
        path = f"{self._pipeline(project, name)}/copy"
        return self._one(PipelinePublic, "POST", path, json={"name": new_name})

    def pause_pipeline(self, project: str, name: str, *, paused: bool = True) -> PipelinePublic:
        """Pause the pipeline's schedule (or, with paused=False, resume it)."""
        path = self._pipeline(project, name)
        return self._one(PipelinePublic, "PATCH", path, json={"paused": paused})

    def run_pipeline(
        self,
        project: str,
        name: str,
        *,
        logical_date: datetime | None = None,
        globals: dict[str, Any] | None = None,
        only: str | None = None,
    ) -> PipelineRunPublic:
        """Queue a run; `globals` override some of the pipeline's globals for this run;
        `only` runs one task alone, with its upstream tasks' newest outputs."""
        body = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "globals": globals or {},
            "only": only,
        }
        path = f"{self._pipeline(project, name)}/runs"
        return self._one(PipelineRunPublic, "POST", path, json=body)

    def backfill_pipeline(
        self, project: str, name: str, start: datetime, end: datetime
    ) -> list[PipelineRunPublic]:
        """A run for each schedule tick from `start` to `end`, both included."""
        path = f"{self._pipeline(project, name)}/backfill"
        body = {"start": start.isoformat(), "end": end.isoformat()}
        return self._many(PipelineRunPublic, "POST", path, json=body)

    def list_pipeline_runs(self, project: str, name: str) -> list[PipelineRunPublic]:
        return self._many(PipelineRunPublic, "GET", f"{self._pipeline(project, name)}/runs")

    def get_pipeline_run(self, project: str, name: str, run_id: int) -> PipelineRunPublic:
        """The run with each task's status, timings, outputs and where its logs are."""
        return self._one(PipelineRunPublic, "GET", self._run(project, name, run_id))

    def cancel_pipeline_run(self, project: str, name: str, run_id: int) -> PipelineRunPublic:
        path = f"{self._run(project, name, run_id)}/cancel"
        return self._one(PipelineRunPublic, "POST", path)

    def rerun_pipeline_run(self, project: str, name: str, run_id: int) -> PipelineRunPublic:
        """Run an ended run again from the tasks that did not succeed."""
        path = f"{self._run(project, name, run_id)}/rerun"
        return self._one(PipelineRunPublic, "POST", path)
