"""Database leases: one holder at a time, renewed by its holder, handed over when it expires
or is released; and so one working reconciler per database."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from fabric.clock import FrozenClock
from fabric.services import leases
from fabric.states import JobStatus
from tests.services.world import World

MINUTE = timedelta(minutes=1)


def test_one_holder_at_a_time_until_its_lease_expires(sessions: sessionmaker[Session]) -> None:
    clock = FrozenClock()
    a, b = leases.Holder(), leases.Holder()
    with sessions() as one, sessions() as two:
        assert leases.acquire(one, "work", a, clock, MINUTE) is not None
        assert leases.acquire(two, "work", b, clock, MINUTE) is None
        assert leases.acquire(two, "other", b, clock, MINUTE) is not None, "names are apart"
        clock.advance(30)
        assert leases.acquire(one, "work", a, clock, MINUTE) is not None, "renewed"
        clock.advance(45)  # past the first expiry, within the renewal
        assert leases.acquire(two, "work", b, clock, MINUTE) is None
        clock.advance(16)
        assert leases.acquire(two, "work", b, clock, MINUTE) is not None, "expired: handed over"
        assert leases.acquire(one, "work", a, clock, MINUTE) is None
        leases.release(one, "work", a)  # not a's any more: changes nothing
        assert leases.acquire(one, "work", a, clock, MINUTE) is None
        leases.release(two, "work", b)
        assert leases.acquire(one, "work", a, clock, MINUTE) is not None, "released: free"


def test_of_holders_racing_for_a_new_lease_exactly_one_wins(
    sessions: sessionmaker[Session],
) -> None:
    clock = FrozenClock()
    ready = threading.Barrier(6)
    won: list[bool] = []

    def race() -> None:
        with sessions() as session:
            holder = leases.Holder()
            ready.wait()
            won.append(leases.acquire(session, "work", holder, clock, MINUTE) is not None)

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 5 + [True]


def test_one_reconciler_works_per_database_and_another_takes_over(world: World) -> None:
    first, second = world.reconciler(), world.reconciler()
    assert first.reconcile_once()
    owner = world.project(cpu=0.1)
    held = world.hold(owner, 0.1)
    job = world.submit(owner, "python -c pass", 0.1)
    world.release(owner, held)  # the queued job fits now

    assert not second.reconcile_once()
    assert world.job(job.id).status == JobStatus.QUEUED, "the second reconciler does nothing"

    first.stop()  # gives the lease up
    assert second.reconcile_once()
    started = world.job(job.id)
    assert started.status == JobStatus.PENDING and started.submission_id is not None

    third = world.reconciler()
    assert not third.reconcile_once()
    world.clock.advance(world.settings.reconciler_lease.total_seconds() + 1)
    assert third.reconcile_once(), "the second stopped renewing: its lease expired"
    assert not second.reconcile_once()
    assert world.backend.submitted == [started.submission_id]
