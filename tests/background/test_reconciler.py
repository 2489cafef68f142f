"""The background loops' runner: a lease's loops run in their order on its holder alone,
each at its own interval; a loop apart runs in a thread of its own, on the holder alone."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fabric.background.loops import LOOPS, Loop, Step, Work
from fabric.background.reconciler import Reconciler
from fabric.clock import FrozenClock
from fabric.config import Settings
from tests.fakes.backend import FakeBackend


def _reconciler(
    sessions: sessionmaker[Session], folder: Path, clock: FrozenClock, loops: tuple[Loop, ...]
) -> Reconciler:
    backend = FakeBackend(folder / "cluster")
    return Reconciler(sessions, Settings(home=folder), backend, clock, loops)


def _recording(ran: list[str], name: str) -> Callable[[], AbstractContextManager[Step]]:
    def step(work: Work) -> None:
        ran.append(name)

    return lambda: nullcontext(step)


def test_a_lease_s_loops_run_in_their_order_on_its_holder_alone(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    ran: list[str] = []
    loops = (
        Loop("first", _recording(ran, "first")),
        Loop("hourly", _recording(ran, "hourly"), every=lambda _: 3600),
        Loop("last", _recording(ran, "last")),
    )
    clock = FrozenClock()
    holder = _reconciler(sessions, tmp_path / "one", clock, loops)
    other = _reconciler(sessions, tmp_path / "two", clock, loops)
    assert holder.reconcile_once()
    assert not other.reconcile_once()
    assert holder.reconcile_once()
    assert ran == ["first", "hourly", "last", "first", "last"], "hourly: not due again yet"


def test_a_step_is_opened_once_per_server_and_closed_as_it_stops(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    events: list[str] = []

    @contextmanager
    def opens() -> Iterator[Step]:
        events.append("open")
        yield lambda work: None
        events.append("close")

    reconciler = _reconciler(sessions, tmp_path, FrozenClock(), (Loop("kept", opens),))
    assert reconciler.reconcile_once()
    assert reconciler.reconcile_once()
    assert events == ["open"]
    reconciler.stop()
    assert events == ["open", "close"]


def test_a_loop_apart_runs_on_the_lease_holder_alone_until_another_takes_over(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    runs = {"first": 0, "second": 0}
    ran = {name: threading.Event() for name in runs}

    def loops(name: str) -> tuple[Loop, ...]:
        def step(work: Work) -> None:
            runs[name] += 1
            if runs[name] >= 50:
                ran[name].set()

        return (
            Loop("pass", lambda: nullcontext(lambda work: None)),
            Loop("apart", lambda: nullcontext(step), every=lambda _: 0.01, apart=True),
        )

    clock = FrozenClock()  # the holder's lease never expires: only a release hands it over
    first = _reconciler(sessions, tmp_path / "one", clock, loops("first"))
    second = _reconciler(sessions, tmp_path / "two", clock, loops("second"))
    assert first.reconcile_once()
    first.start()
    second.start()
    try:
        assert ran["first"].wait(30)
        assert runs["second"] == 0, "the other server's loop waits for the lease"
        first.stop()
        assert ran["second"].wait(30), "the lease was released: the other server took over"
    finally:
        first.stop()
        second.stop()


def test_a_loop_apart_needs_a_pass_that_takes_its_lease(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    loops = (Loop("orphan", lambda: nullcontext(lambda work: None), lease="other", apart=True),)
    with pytest.raises(ValueError, match="no pass takes"):
        _reconciler(sessions, tmp_path, FrozenClock(), loops)


def test_jobs_run_before_pipelines_so_a_task_s_dependants_start_in_the_same_pass() -> None:
    names = [loop.name for loop in LOOPS if not loop.apart]
    assert names.index("jobs") < names.index("pipelines")
