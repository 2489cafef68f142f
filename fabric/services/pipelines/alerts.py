"""Webhook alerts when a pipeline's run ends: a JSON POST to the pipeline's URL, retried with
a growing delay, never part of the run.

The run's end records the call it owes (`alert_event`, pending) in the same update that ends
it; the reconciler's alert thread delivers due calls, each claimed first so that one call is
made once at a time even while the lease passes between servers. A receiver that fails every
try leaves the call `failed` with its last error; the run's own status never changes. The
URL may carry a secret (a token in its query): it is never logged nor shown in messages.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fabric.clock import Clock
from fabric.config import Settings
from fabric.db.dml import rows_changed
from fabric.db.models import PipelineRunModel
from fabric.services.pipelines import pipelines
from fabric.states import AlertStatus, PipelineRunStatus

log = logging.getLogger("fabric.pipelines")
MAX_ATTEMPTS = 5
CLAIM = timedelta(seconds=60)
BATCH = 20


def owed(run: PipelineRunModel, status: PipelineRunStatus, timed_out: bool) -> str | None:
    """The event a run ending with `status` reports, if its pipeline asked for it."""
    webhook = pipelines.spec_of(run).webhook
    if webhook is None or status == PipelineRunStatus.CANCELLED:
        return None
    succeeded = status == PipelineRunStatus.SUCCEEDED
    event = "timeout" if timed_out else "success" if succeeded else "failure"
    return event if event in webhook.on else None


def retry_delay(attempt: int) -> float:
    """Seconds before try number `attempt + 1`: 2, 4, 8, 16 s."""
    return 2.0**attempt


def payload(settings: Settings, run: PipelineRunModel) -> dict[str, Any]:
    project = run.pipeline.project.name
    return {
        "event": run.alert_event,
        "project": project,
        "pipeline": run.pipeline.name,
        "run_id": run.id,
        "run_number": run.number,
        "status": run.status,
        "message": run.message,
        "logical_date": run.logical_date.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        "tasks": {task.task: task.status for task in run.tasks},
        "url": f"{settings.local_url}/api/v1/projects/{project}/pipelines/"
        f"{run.pipeline.name}/runs/{run.id}",
    }


def deliver_due(session: Session, settings: Settings, clock: Clock, http: httpx.Client) -> int:
    """Make the webhook calls that are due; how many were tried."""
    now = clock.now()
    due = session.scalars(
        select(PipelineRunModel)
        .where(
            PipelineRunModel.alert_status == AlertStatus.PENDING, PipelineRunModel.alert_at <= now
        )
        .order_by(PipelineRunModel.alert_at)
        .limit(BATCH)
    ).all()
    for run in due:
        claimed = rows_changed(
            session,
            update(PipelineRunModel)
            .where(
                PipelineRunModel.id == run.id,
                PipelineRunModel.alert_status == AlertStatus.PENDING,
                PipelineRunModel.alert_at == run.alert_at,
            )
            .values(alert_at=now + CLAIM),
        )
        session.commit()
        if claimed:
            session.refresh(run)
            _deliver(session, settings, clock.now(), http, run)
    return len(due)


def _deliver(
    session: Session, settings: Settings, now: datetime, http: httpx.Client, run: PipelineRunModel
) -> None:
    webhook = pipelines.spec_of(run).webhook
    assert webhook is not None
    try:
        response = http.post(str(webhook.url), json=payload(settings, run))
        error = "" if response.is_success else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: the receiver did not answer"
    run.alert_attempts += 1
    if not error:
        run.alert_status, run.alert_message = AlertStatus.SENT, ""
    elif run.alert_attempts >= MAX_ATTEMPTS:
        run.alert_status = AlertStatus.FAILED
        run.alert_message = f"gave up after {run.alert_attempts} tries; last: {error}"
    else:
        delay = retry_delay(run.alert_attempts)
        run.alert_at = now + timedelta(seconds=delay)
        run.alert_message = f"try {run.alert_attempts} failed ({error}); again in {delay:g} s"
    log.info(
        "pipeline %s run %s: webhook %s %s",
        run.pipeline.name,
        run.number,
        run.alert_event,
        run.alert_status if not error else f"failed ({error})",
    )
    session.commit()
