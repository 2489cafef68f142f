"""Build a pipeline in Python instead of YAML:

    with Pipeline("churn", globals={"target": "churned"}) as p:
        prep = p.task("data-process", params={...})
        boost = p.task("xgboost", params={"dataset": prep.output("dataset_uri")}, after=prep)
    client.apply_pipeline("my-project", p.spec())

The builder only assembles the spec; the server checks it whole when it is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import yaml


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
