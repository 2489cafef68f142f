"""Runs the background loops (fabric.background.loops): each lease's pass on the server that
holds the lease, and each loop apart in a thread of its own.

Every server runs a reconciler, but only the holder of a lease works under it: two servers on
one database would otherwise both start queued jobs, both follow running ones and both start
a pipeline's tasks. The others try for the lease at each pass and take over when the holder
stops or dies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fabric.backends.base import ComputeBackend
from fabric.background.loops import LOOPS, RECONCILER, Loop, Step, Work
from fabric.clock import Clock
from fabric.config import Settings
from fabric.services import leases

log = logging.getLogger("fabric.background.reconciler")


class _Pass:
    """The loops that run one after another under one lease."""

    def __init__(self, lease: str) -> None:
        self.lease = lease
        self.loops: list[Loop] = []
        # Until when its loops may work, half the lease's time before it runs out (the rest
        # is left for the last item's calls); None while this server does not hold it.
        self.until: datetime | None = None


class Reconciler:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        backend: ComputeBackend,
        clock: Clock,
        loops: Sequence[Loop] = LOOPS,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._backend = backend
        self._clock = clock
        self._holder = leases.Holder()
        self._passes: dict[str, _Pass] = {}
        for loop in loops:
            if not loop.apart:
                self._passes.setdefault(loop.lease, _Pass(loop.lease)).loops.append(loop)
        apart = [loop for loop in loops if loop.apart]
        for loop in apart:
            if loop.lease not in self._passes:
                raise ValueError(
                    f"loop {loop.name!r} runs apart under lease {loop.lease!r}, which no pass takes"
                )
        # The passes' steps, opened as each first runs and closed at stop (an apart loop's
        # thread opens its own).
        self._steps: dict[Loop, Step] = {}
        self._opened = ExitStack()
        # When each loop with an interval runs next. On the monotonic clock, not the
        # platform's: a clock set back (as tests do) must not put a run off.
        self._next: dict[Loop, float] = {}
        self._stop = threading.Event()
        self._pass_threads = {
            lease: threading.Thread(
                target=self._run_pass, args=(each,), name=f"fabric-{lease}", daemon=True
            )
            for lease, each in self._passes.items()
        }
        self._apart_threads = [
            threading.Thread(
                target=self._run_apart, args=(loop,), name=f"fabric-{loop.name}", daemon=True
            )
            for loop in apart
        ]

    def start(self) -> None:
        for thread in [*self._pass_threads.values(), *self._apart_threads]:
            thread.start()

    def stop(self) -> None:
        """End the loops and give the leases up, so that another server takes over at once."""
        self._stop.set()
        for thread in [*self._apart_threads, *self._pass_threads.values()]:
            if thread.is_alive():
                thread.join(timeout=30)
        running = [lease for lease, t in self._pass_threads.items() if t.is_alive()]
        for lease in running:
            # A pass still works: releasing now could let another server work beside it.
            log.warning("the %s pass still runs at stop; its lease will expire", lease)
        try:
            with self._sessions() as session:
                for lease in self._passes.keys() - running:
                    leases.release(session, lease, self._holder)
        except SQLAlchemyError:
            log.exception("could not release the leases; they will expire")
        if not running:
            self._opened.close()

    def reconcile_once(self) -> bool:
        """One pass of the `reconciler` lease's loops if this server holds the lease (taking
        or renewing it); False if not."""
        return self._pass(self._passes[RECONCILER])

    def _pass(self, lease_pass: _Pass) -> bool:
        # Every lease lasts as long as the reconciler's, which outlasts many passes.
        duration = self._settings.reconciler_lease
        with self._sessions() as session:
            expires_at = leases.acquire(
                session, lease_pass.lease, self._holder, self._clock, duration
            )
            if (expires_at is not None) != (lease_pass.until is not None):
                now = "now" if expires_at is not None else "no longer"
                log.info("this server %s holds the %s lease", now, lease_pass.lease)
            if expires_at is None:
                lease_pass.until = None
                return False
            lease_pass.until = expires_at - duration / 2
            work = Work(session, self._settings, self._backend, self._clock, lease_pass.until)
            for loop in lease_pass.loops:
                if self._due(loop):
                    self._step(loop)(work)
        return True

    def _due(self, loop: Loop) -> bool:
        if loop.every is None:
            return True
        now = time.monotonic()
        if now < self._next.get(loop, 0.0):
            return False
        self._next[loop] = now + loop.every(self._settings)
        return True

    def _step(self, loop: Loop) -> Step:
        if loop not in self._steps:
            self._steps[loop] = self._opened.enter_context(loop.opens())
        return self._steps[loop]

    def _run_pass(self, lease_pass: _Pass) -> None:
        while not self._stop.wait(self._settings.sync_interval_seconds):
            try:
                self._pass(lease_pass)
            except Exception:
                # One bad pass must not end the loop: the next one tries again.
                log.exception("the %s pass failed; retrying", lease_pass.lease)

    def _run_apart(self, loop: Loop) -> None:
        """Run the loop while this server holds its lease (its pass takes and renews it)."""
        lease_pass = self._passes[loop.lease]
        every = loop.every(self._settings) if loop.every else self._settings.sync_interval_seconds
        with loop.opens() as step:
            while not self._stop.wait(every):
                until = lease_pass.until
                if until is None:
                    continue
                try:
                    with self._sessions() as session:
                        step(Work(session, self._settings, self._backend, self._clock, until))
                except Exception:
                    log.exception("the %s loop failed; retrying", loop.name)
