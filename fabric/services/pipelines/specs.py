"""What a pipeline is: a DAG of template tasks with globals, limits and a schedule, and every
check it passes before anything runs.

A spec is checked whole when it is applied, so that a run never starts what cannot finish:
cycles, unknown templates, parameters that do not fit their template, references to tasks
that are not upstream, and requests above the project's `single` quota. Each error names the
task and field, e.g. `tasks.train.params.max_depth: Input should be a valid integer`.
Parameters with expressions are checked by name now and by value when their task starts.
"""

from __future__ import annotations

import graphlib
import re
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import jsonschema
from croniter import croniter
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
)
from sqlalchemy.orm import Session

from fabric.config import Settings
from fabric.errors import FabricError, InvalidSpec, QuotaExceeded
from fabric.runtime import messages
from fabric.services.jobs import jobs, runtime_envs
from fabric.services.pipelines import params as pipeline_params
from fabric.services.quotas import admission as allocations
from fabric.services.templates import builtin
from fabric.services.templates import custom as custom_templates
from fabric.services.tenancy.actor import Actor

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
# Task names are identifiers, so that expressions can say `tasks.NAME.outputs`.
TASK_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(description="a built-in template, or PROJECT/NAME[@VERSION]")
    params: dict[str, Any] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list, description="tasks that must succeed first")
    resources: dict[str, float] | None = None
    workers: int | None = Field(default=None, ge=0, le=1000)
    worker_resources: dict[str, float] | None = None
    pool: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)
    retries: int = Field(default=0, ge=0, le=10)
    skip: bool = Field(default=False, description="do not run it; its dependants still may")
    runtime_env: dict[str, Any] | None = Field(
        default=None, description="as a job's: working_dir, py_modules, pip, env_vars"
    )
    warm: bool | None = Field(
        default=None,
        description="run on the warm runner (no Ray Job start-up); default: when the task "
        "starts no workers",
    )


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(description="a cron expression in UTC, e.g. '0 2 * * *'")
    start_date: AwareDatetime | None = None
    # After downtime: a run for every missed tick (True), or only for the newest (False).
    catchup: bool = False

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression, e.g. '0 2 * * *'")
        return value


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="POSTed a JSON payload when a run ends")
    on: list[Literal["success", "failure", "timeout"]] = Field(
        default_factory=lambda: ["failure", "timeout"], min_length=1
    )


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    globals: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[str, TaskSpec] = Field(min_length=1)
    parallelism: int = Field(default=4, ge=1, le=100, description="tasks at once within a run")
    max_active_runs: int = Field(default=1, ge=1, le=100)
    priority: int = Field(default=0, description="higher starts first")
    timeout_seconds: float | None = Field(default=None, gt=0, description="per run")
    schedule: ScheduleSpec | None = None
    # A run waits until the previous tick's run succeeded.
    depends_on_past: bool = False
    # Keep the newest N ended runs' records and artifacts; clean the rest.
    expired_limit: int | None = Field(default=None, ge=1)
    webhook: WebhookSpec | None = None

    def upstream(self, task: str) -> set[str]:
        """Every task that must succeed before `task`, directly or through others."""
        found: set[str] = set()
        pending = list(self.tasks[task].after)
        while pending:
            name = pending.pop()
            if name not in found:
                found.add(name)
                pending.extend(self.tasks[name].after)
        return found

    def order(self) -> list[str]:
        """The tasks in an order where each comes after its upstream tasks."""
        sorter = graphlib.TopologicalSorter({name: t.after for name, t in self.tasks.items()})
        return list(sorter.static_order())


def parse(raw: dict[str, Any]) -> PipelineSpec:
    """The spec's shape: InvalidSpec naming each field that does not fit."""
    try:
        spec = PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidSpec(
            messages.describe(exc, lambda loc: messages.dotted(loc) or "pipeline")
        ) from None
    _check_graph(spec)
    return spec


def _check_graph(spec: PipelineSpec) -> None:
    for name, task in spec.tasks.items():
        if not re.match(TASK_PATTERN, name):
            raise InvalidSpec(
                f"tasks.{name}: a task name is letters, digits and '_' (not starting with a "
                "digit), at most 63 characters, so that expressions can name it"
            )
        unknown = [other for other in task.after if other not in spec.tasks]
        if unknown:
            hint = messages.did_you_mean(unknown[0], set(spec.tasks) - {name})
            raise InvalidSpec(
                f"tasks.{name}.after: no task named {', '.join(unknown)}"
                + (f" ({hint})" if hint else "")
            )
        if name in task.after:
            raise InvalidSpec(f"tasks.{name}.after: a task cannot wait for itself")
    try:
        spec.order()
    except graphlib.CycleError as exc:
        cycle = " -> ".join(reversed(exc.args[1]))
        raise InvalidSpec(
            f"tasks.{exc.args[1][0]}.after: the tasks form a cycle: {cycle}"
        ) from None


def check(
    session: Session, settings: Settings, actor: Actor, project: str, spec: PipelineSpec
) -> None:
    """Everything that can be checked before a run: templates, parameters, references,
    runtime environments and each task's request against the project's quotas (InvalidSpec
    naming task and field)."""
    for name in spec.order():
        task = spec.tasks[name]
        where = f"tasks.{name}"
        described = _template(session, actor, task.template, where)
        if task.runtime_env:
            try:
                runtime_envs.check(settings, project, task.runtime_env)
            except FabricError as exc:
                raise InvalidSpec(f"{where}.runtime_env: {exc.message}") from None
        _check_references(spec, name, where)
        _check_params(described, task.params, where)
        _check_request(session, actor, project, task, described, where)


def _template(session: Session, actor: Actor, name: str, where: str) -> dict[str, Any]:
    try:
        if custom_templates.is_reference(name):
            return custom_templates.describe(custom_templates.resolve(session, actor, name))
        return builtin.describe(builtin.get(name))
    except FabricError as exc:
        raise InvalidSpec(f"{where}.template: {exc.message}") from None


def _check_references(spec: PipelineSpec, name: str, where: str) -> None:
    task = spec.tasks[name]
    upstream = spec.upstream(name)
    for param, value in task.params.items():
        here = f"{where}.params.{param}"
        try:
            found = pipeline_params.references(value)
        except pipeline_params.ParamError as exc:
            raise InvalidSpec(f"{here}: {exc}") from None
        for other in sorted(found.tasks - upstream):
            if other == name:
                why = "this task itself; a task cannot use its own outputs"
            elif other in spec.tasks:
                why = "it is not upstream of this task; list it in `after`"
            else:
                hint = messages.did_you_mean(other, set(spec.tasks) - {name})
                why = "no such task" + (f"; {hint}" if hint else "")
            raise InvalidSpec(f"{here}: refers to tasks.{other} ({why})")
        for variable in sorted(found.globals - set(spec.globals)):
            raise InvalidSpec(f"{here}: refers to globals.{variable}, which the pipeline lacks")
        known = pipeline_params.RUN_NAMES | {"tasks", "globals"}
        for unknown in sorted(found.names - known):
            raise InvalidSpec(
                f"{here}: unknown name {unknown!r}; expressions may use {', '.join(sorted(known))}"
            )


def _check_params(described: dict[str, Any], params: dict[str, Any], where: str) -> None:
    """Parameters without expressions must fit the template now; those with expressions
    must at least be parameters the template has."""
    custom_templates.check_param_names(described["parameters"], params, f"{where}.params.")
    later = {name for name, value in params.items() if pipeline_params.is_templated(value)}
    now = {name: value for name, value in params.items() if name not in later}
    problems = [
        f"{where}.params{'.' + field if field else ''}: {message}"
        for field, message in _param_errors(described, now)
        # Rules across fields (loc "") wait for the values too, when some are expressions.
        if field not in later and not (later and not field)
    ]
    if problems:
        raise InvalidSpec("; ".join(problems))


def _param_errors(described: dict[str, Any], params: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for each problem, the fields left out included."""
    if "command" in described:
        found = jsonschema.Draft202012Validator(described["parameters"]).iter_errors(params)
        return [(_json_field(error, params), error.message) for error in found]
    model = builtin.get(described["name"]).template.params
    try:
        model.model_validate(params)
    except ValidationError as exc:
        return messages.problems(exc, lambda loc: str(loc[0]) if loc else "")
    return []


def _json_field(error: jsonschema.ValidationError, params: dict[str, Any]) -> str:
    """The top-level parameter a JSON Schema error is about ("" for the whole object)."""
    if error.validator == "required" and not error.path:
        # The schema's list of required names; the stubs also allow the sentinel of an error
        # made without a validator, which a validator's errors never carry.
        required = cast("list[str]", error.validator_value)
        missing = [name for name in required if name not in params]
        return str(missing[0]) if missing else ""
    return str(error.path[0]) if error.path else ""


def _check_request(
    session: Session,
    actor: Actor,
    project: str,
    task: TaskSpec,
    described: dict[str, Any],
    where: str,
) -> None:
    workers = described["workers"] if task.workers is None else task.workers
    if task.warm and workers:
        raise InvalidSpec(f"{where}.warm: a task with workers runs as a Ray Job of its own")
    if task.warm and described.get("environment", "default") != "default":
        raise InvalidSpec(
            f"{where}.warm: a task in the {described['environment']} environment runs as a Ray "
            "Job of its own"
        )
    total = jobs.total(
        task.resources or described["resources"] or jobs.DEFAULT_RESOURCES,
        workers,
        task.worker_resources or described["worker_resources"] or jobs.DEFAULT_RESOURCES,
    )
    try:
        allocations.check(
            session,
            actor,
            project,
            resources=total,
            pool=task.pool,
            expected_seconds=task.timeout_seconds,
        )
    except QuotaExceeded as exc:
        if not exc.may_fit_later:
            raise InvalidSpec(f"{where}.resources: {exc.message}") from None
    except FabricError as exc:
        raise InvalidSpec(f"{where}: {exc.message}") from None


def ticks(cron: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """The schedule's ticks from `start` to `end`, both included, at most `limit` of them."""
    found: list[datetime] = []
    iterator = croniter(cron, start - timedelta(microseconds=1))
    while len(found) < limit:
        tick = iterator.get_next(datetime)
        if tick > end:
            break
        found.append(tick)
    return found
