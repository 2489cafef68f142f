"""The server's background loop: jobs in step with Ray, pipelines run, Serve in step with
the endpoints.

Every server runs one, but only the holder of the database's `reconciler` lease works: two
servers on one database would otherwise both start queued jobs, both follow running ones and
both start a pipeline's tasks.
The others check each pass and take over when the holder stops or dies.
"""

from __future__ import annotations

import logging
import threading

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fabric.backends.base import BackendUnavailable, ComputeBackend
from fabric.clock import Clock
from fabric.config import Settings
from fabric.services import leases
from fabric.services.jobs import sync as job_sync
from fabric.services.pipelines import alerts as pipeline_alerts
from fabric.services.pipelines import sync as pipeline_sync
from fabric.services.serving.sync import ServeSync

log = logging.getLogger("fabric.background.reconciler")
LEASE = "reconciler"
ALERT_TIMEOUT_SECONDS = 5.0


class Reconciler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        backend: ComputeBackend,
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._backend = backend
        self._clock = clock
        self._holder = leases.Holder()
        self._serve = ServeSync(settings.serve_sync_seconds)
        self._holding = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fabric-reconciler", daemon=True)
        # Webhooks wait on receivers out of Fabric's hands: never inside a pass.
        self._alerts = threading.Thread(target=self._alert, name="fabric-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._alerts.start()

    def stop(self) -> None:
        """End the loop and give the lease up, so that another server takes over at once."""
        self._stop.set()
        if self._alerts.is_alive():
            self._alerts.join(timeout=30)
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self._thread.is_alive():
            # A pass still works: releasing now could let another server work beside it.
            log.warning("reconciler pass still running at stop; its lease will expire")
            return
        try:
            with self._sessions() as session:
                leases.release(session, LEASE, self._holder)
        except SQLAlchemyError:
            log.exception("could not release the reconciler lease; it will expire")

    def reconcile_once(self) -> bool:
        """One pass if this server holds the lease (taking or renewing it); False if not."""
        duration = self._settings.reconciler_lease
        with self._sessions() as session:
            expires_at = leases.acquire(session, LEASE, self._holder, self._clock, duration)
            if (expires_at is not None) != self._holding:
                self._holding = expires_at is not None
                log.info("this server %s reconciles jobs", "now" if self._holding else "no longer")
            if expires_at is None:
                return False
            # Half the lease is left for the last job's Ray calls when the pass stops early.
            until = expires_at - duration / 2
            job_sync.sync(session, self._settings, self._backend, self._clock, until=until)
            # Right after the jobs: a task whose job just ended lets its dependants start now.
            pipeline_sync.sync(session, self._settings, self._backend, self._clock, until=until)
            if self._serve.due():
                self._serve.sync(session, self._backend, self._clock)
        self._release_idle()
        return True

    def _release_idle(self) -> None:
        """Give idle clusters back (KubeRay); never let the compute side break a pass."""
        try:
            self._backend.release_idle()
        except BackendUnavailable as exc:
            log.warning("cannot release idle clusters: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.sync_interval_seconds):
            try:
                self.reconcile_once()
            except Exception:
                # One bad pass must not end the loop: the next one tries again.
                log.exception("job reconciliation failed; retrying")

    def _alert(self) -> None:
        with httpx.Client(timeout=ALERT_TIMEOUT_SECONDS) as http:
            while not self._stop.wait(1.0):
                if not self._holding:
                    continue
                try:
                    with self._sessions() as session:
                        pipeline_alerts.deliver_due(session, self._settings, self._clock, http)
                except Exception:
                    log.exception("webhook delivery failed; retrying")
