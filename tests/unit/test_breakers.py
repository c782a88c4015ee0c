"""Circuit breakers: pure verdicts from figures and a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.breakers import (
    ApiCallCounts,
    BreakerError,
    BreakerLimits,
    FillCounts,
    GuardInputs,
    LinkObservation,
    check_daily_loss,
    check_error_rate,
    check_feed,
    check_fill_rate,
    check_heartbeat,
    check_link,
    evaluate_breakers,
    tripped,
)

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
LIMITS = BreakerLimits()


@pytest.mark.parametrize(("start", "equity", "trips"), [
    (100_000, 97_000, False),  # exactly 3 %: at the limit, not beyond
    (100_000, 96_999, True),
    (100_000, 120_000, False),  # a gain
    (1, 0, True),
])
def test_check_daily_loss_limit_boundary_trips_only_beyond(start: int, equity: int,
                                                           trips: bool) -> None:
    verdict = check_daily_loss(start, equity, Decimal("0.03"))
    assert verdict.tripped is trips
    assert f"start-of-day {start}c" in verdict.reason


def test_check_daily_loss_unknown_equity_is_reported_not_tripped() -> None:
    verdict = check_daily_loss(100_000, None, Decimal("0.03"))
    assert not verdict.tripped
    assert "not verified" in verdict.reason


def test_check_daily_loss_non_positive_start_trips() -> None:
    assert check_daily_loss(0, 0, Decimal("0.03")).tripped


@given(start=st.integers(1, 10**9), loss=st.integers(-10**6, 10**9))
def test_check_daily_loss_matches_integer_rule(start: int, loss: int) -> None:
    verdict = check_daily_loss(start, start - loss, Decimal("0.03"))
    assert verdict.tripped is (100 * loss > 3 * start)


@pytest.mark.parametrize(("calls", "errors", "trips"), [
    (19, 19, False),  # too few calls to judge
    (20, 1, False),  # 5 %: at the limit
    (20, 2, True),
    (1000, 51, True),
])
def test_check_error_rate_limit_and_minimum_sample(calls: int, errors: int, trips: bool) -> None:
    verdict = check_error_rate(ApiCallCounts(calls, errors), LIMITS)
    assert verdict.tripped is trips
    assert f"{errors}/{calls}" in verdict.reason


def test_check_error_rate_more_errors_than_calls_raises_naming_field() -> None:
    with pytest.raises(BreakerError, match="api"):
        check_error_rate(ApiCallCounts(3, 4), LIMITS)


@pytest.mark.parametrize(("offered", "filled", "trips", "word"), [
    (100, 30, False, ""),  # as expected
    (100, 5, True, "below"),  # < 0.2 x 0.3 = 6 %
    (100, 6, False, ""),
    (100, 91, True, "adverse"),  # > 3 x 0.3 = 90 %
    (10, 0, False, "not judged"),
])
def test_check_fill_rate_band(offered: int, filled: int, trips: bool, word: str) -> None:
    verdict = check_fill_rate(FillCounts(offered, filled), LIMITS)
    assert verdict.tripped is trips
    assert word in verdict.reason


def test_check_feed_stale_trips_fresh_and_unseen_do_not() -> None:
    assert check_feed("forecast", NOW - timedelta(seconds=601), 600, NOW).tripped
    assert not check_feed("forecast", NOW - timedelta(seconds=600), 600, NOW).tripped
    unseen = check_feed("forecast", None, 600, NOW)
    assert not unseen.tripped
    assert unseen.reason == "not seen yet"


def test_check_heartbeat_missing_trips_with_age_in_reason() -> None:
    verdict = check_heartbeat("trade-weather", NOW - timedelta(hours=1), 1800, NOW)
    assert verdict.tripped
    assert verdict.name == "heartbeat:trade-weather"
    assert "3600s old" in verdict.reason


def test_check_heartbeat_naive_time_raises() -> None:
    with pytest.raises(BreakerError, match="naive"):
        check_heartbeat("x", datetime(2026, 1, 1), 60, NOW)  # noqa: DTZ001


@pytest.mark.parametrize(("link", "trips", "text"), [
    (LinkObservation(up=True), False, "reachable"),
    (LinkObservation(up=False), False, "first failure"),
    (LinkObservation(up=False, down_since=NOW - timedelta(seconds=30)), False, "30s"),
    (LinkObservation(up=False, down_since=NOW - timedelta(seconds=61)), True, "as soon as"),
    (LinkObservation(up=True, restored_after_s=45.0), False, "last outage 45s"),
    (LinkObservation(up=True, restored_after_s=61.0), True, "cancel everything"),
])
def test_check_link_dead_mans_switch(link: LinkObservation, trips: bool, text: str) -> None:
    verdict = check_link(link, NOW)
    assert verdict.tripped is trips
    assert text in verdict.reason


def test_breaker_limits_out_of_range_fraction_names_field() -> None:
    with pytest.raises(BreakerError, match="max_error_rate"):
        BreakerLimits(max_error_rate=Decimal("1.5"))
    with pytest.raises(BreakerError, match="fill_high_multiple"):
        BreakerLimits(fill_high_multiple=Decimal("1"))


def test_evaluate_breakers_reports_every_breaker_and_trips() -> None:
    inputs = GuardInputs(
        start_equity_cents=100_000, equity_cents=90_000, api=ApiCallCounts(100, 0),
        fills=FillCounts(0, 0), link=LinkObservation(up=True),
        feeds={"market-data": (NOW, 60.0)},
        heartbeats={"trade-weather": (NOW - timedelta(hours=2), 1800.0)},
    )
    verdicts = evaluate_breakers(inputs, LIMITS, NOW)
    assert [v.name for v in verdicts] == ["daily_loss", "error_rate", "fill_rate", "link",
                                          "feed:market-data", "heartbeat:trade-weather"]
    assert [v.name for v in tripped(verdicts)] == ["daily_loss", "heartbeat:trade-weather"]
