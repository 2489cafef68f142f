"""The server's background work, one loop per domain, all listed here in LOOPS: what each
runs, how often, and under which lease. A new domain adds its loop to the list; the
reconciler (fabric.background.reconciler) runs whatever is listed.

A lease is held by one server at a time (fabric.services.leases), so what runs under it never
runs on two servers at once. The holder of a lease runs its pass every
`sync_interval_seconds`: the loops under that lease, one after another in the order listed,
in one database session, each once its interval has passed (a loop with none runs in every
pass). The order is a promise: a task whose job just
ended lets its dependants start in the same pass, because jobs come before pipelines.

A loop that waits on others (a webhook's receiver) runs `apart`: in a thread of its own, while
this server holds its lease, so that it never holds up the pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy.orm import Session

from fabric.backends.base import BackendError, ComputeBackend
from fabric.clock import Clock
from fabric.config import Settings
from fabric.services.jobs import sync as job_sync
from fabric.services.pipelines import alerts as pipeline_alerts
from fabric.services.pipelines import sync as pipeline_sync
from fabric.services.serving.sync import ServeSync

log = logging.getLogger("fabric.background")
RECONCILER = "reconciler"
WEBHOOK_SECONDS = 1.0
WEBHOOK_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Work:
    """What a loop's step works with, in one run."""

    session: Session
    settings: Settings
    backend: ComputeBackend
    clock: Clock
    # A step that goes through many items stops between two once this has come, so that its
    # lease never lapses while it works; its next run goes on where it stopped.
    until: datetime


Step = Callable[[Work], None]


@dataclass(frozen=True)
class Loop:
    """One domain's background work: its step, how often it runs, and under which lease."""

    name: str
    # Opens the loop's step on this server, and closes what the step holds as the server
    # stops: a step may keep what it learnt between runs, or a client it calls out with.
    opens: Callable[[], AbstractContextManager[Step]]
    # Seconds between two runs, from the settings; None: in every pass.
    every: Callable[[Settings], float] | None = None
    # The lease whose holder alone runs it.
    lease: str = RECONCILER
    # In a thread of its own rather than in the lease's pass, still on the holder alone.
    apart: bool = False


def _stateless(step: Step) -> Callable[[], AbstractContextManager[Step]]:
    """For a step that keeps nothing between runs."""
    return lambda: nullcontext(step)


def _jobs(work: Work) -> None:
    job_sync.sync(work.session, work.settings, work.backend, work.clock, until=work.until)


def _pipelines(work: Work) -> None:
    pipeline_sync.sync(work.session, work.settings, work.backend, work.clock, until=work.until)


@contextmanager
def _serve() -> Iterator[Step]:
    serve = ServeSync()

    def step(work: Work) -> None:
        serve.sync(work.session, work.backend, work.clock)

    yield step


def _idle_clusters(work: Work) -> None:
    """Give idle clusters back (KubeRay); the compute side never breaks a pass."""
    try:
        work.backend.release_idle()
    except BackendError as exc:
        log.warning("cannot release idle clusters: %s", exc)


@contextmanager
def _webhooks() -> Iterator[Step]:
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS) as http:

        def step(work: Work) -> None:
            pipeline_alerts.deliver_due(work.session, work.settings, work.clock, http)

        yield step


LOOPS: tuple[Loop, ...] = (
    Loop("jobs", _stateless(_jobs)),
    # Right after the jobs: a task whose job just ended lets its dependants start now.
    Loop("pipelines", _stateless(_pipelines)),
    Loop("serve", _serve, every=lambda settings: settings.serve_sync_seconds),
    Loop("idle clusters", _stateless(_idle_clusters)),
    Loop("webhooks", _webhooks, every=lambda _: WEBHOOK_SECONDS, apart=True),
)
