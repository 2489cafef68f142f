"""The server's background loop that keeps jobs in step with Ray."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from fabric.backends.base import ComputeBackend
from fabric.clock import Clock
from fabric.config import Settings
from fabric.services import job_sync

log = logging.getLogger("fabric.reconciler")


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
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fabric-reconciler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.sync_interval_seconds):
            try:
                with self._sessions() as session:
                    job_sync.sync(session, self._settings, self._backend, self._clock)
            except Exception:
                # One bad pass must not end the loop: the next one tries again.
                log.exception("job reconciliation failed; retrying")
