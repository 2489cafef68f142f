from datetime import UTC, datetime

import pytest

from fabric.quota.engine import Kind, Limit, Period, Request, Scope, Usage, admit, period_start

GPU_CONCURRENT = Limit(Scope.PROJECT, "gpu", Kind.CONCURRENT, 4)


def test_admits_what_fits_exactly() -> None:
    usage = {Scope.PROJECT: Usage(running={"gpu": 3})}
    assert admit(Request({"gpu": 1}), usage, [GPU_CONCURRENT], user="ann").admitted


def test_concurrent_overflow_names_the_limit_and_may_fit_later() -> None:
    usage = {Scope.PROJECT: Usage(running={"gpu": 3.5})}
    decision = admit(Request({"gpu": 1}), usage, [GPU_CONCURRENT], user="ann")
    assert not decision.admitted
    assert decision.may_fit_later
    assert (
        decision.reason
        == "project concurrent quota on gpu is 4; 3.5 in use + 1 requested exceeds it"
    )


def test_single_limit_never_fits_later() -> None:
    limits = [Limit(Scope.USER, "gpu", Kind.SINGLE, 2), GPU_CONCURRENT]
    decision = admit(Request({"gpu": 3}), {}, limits, user="ann")
    assert not decision.may_fit_later
    assert "user ann's single quota on gpu is 2 per request; 3 requested" in decision.reason


def test_a_request_over_a_limit_on_its_own_never_fits_later() -> None:
    alone = admit(Request({"gpu": 5}), {}, [GPU_CONCURRENT], user="ann")
    assert not alone.admitted and not alone.may_fit_later
    day = Limit(Scope.PROJECT, "gpu", Kind.TOTAL, 3600, Period.DAY)
    longer = admit(Request({"gpu": 1}, expected_seconds=3601), {}, [day], user="ann")
    assert not longer.admitted and not longer.may_fit_later


def test_user_limit_uses_the_users_own_usage() -> None:
    limits = [Limit(Scope.USER, "cpu", Kind.CONCURRENT, 8)]
    usage = {Scope.PROJECT: Usage(running={"cpu": 100}), Scope.USER: Usage(running={"cpu": 6})}
    assert admit(Request({"cpu": 2}), usage, limits, user="ann").admitted
    assert not admit(Request({"cpu": 3}), usage, limits, user="ann").admitted


def test_limits_on_other_resources_do_not_apply() -> None:
    assert admit(Request({"cpu": 64}), {}, [GPU_CONCURRENT], user="ann").admitted


def test_every_broken_limit_is_reported() -> None:
    limits = [
        Limit(Scope.PROJECT, "gpu", Kind.SINGLE, 1),
        Limit(Scope.PROJECT, "cpu", Kind.CONCURRENT, 1),
    ]
    decision = admit(Request({"gpu": 2, "cpu": 2}), {}, limits, user="ann")
    assert len(decision.violations) == 2


def test_total_quota_counts_consumed_and_expected_seconds() -> None:
    limit = Limit(Scope.PROJECT, "gpu", Kind.TOTAL, 3600, Period.DAY)
    usage = {Scope.PROJECT: Usage(consumed={("gpu", Period.DAY): 3000})}
    assert admit(Request({"gpu": 1}, expected_seconds=600), usage, [limit], user="a").admitted
    refused = admit(Request({"gpu": 1}, expected_seconds=601), usage, [limit], user="a")
    assert "3000 used + 601 expected" in refused.reason
    spent = {Scope.PROJECT: Usage(consumed={("gpu", Period.DAY): 3600})}
    assert not admit(Request({"gpu": 1}), spent, [limit], user="a").admitted


def test_zero_limit_forbids_the_resource() -> None:
    limit = Limit(Scope.PROJECT, "npu", Kind.CONCURRENT, 0)
    assert not admit(Request({"npu": 0.5}), {}, [limit], user="a").admitted


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (Period.HOUR, datetime(2026, 11, 26, 15, tzinfo=UTC)),
        (Period.DAY, datetime(2026, 11, 26, tzinfo=UTC)),
        (Period.WEEK, datetime(2026, 11, 23, tzinfo=UTC)),
        (Period.MONTH, datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_period_start(period: Period, expected: datetime) -> None:
    now = datetime(2026, 11, 26, 15, 42, 7, 12, tzinfo=UTC)  # a Thursday
    assert period_start(period, now) == expected
