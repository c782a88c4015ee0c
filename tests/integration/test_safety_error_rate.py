"""The error-rate breaker counts the TRADING flow's calls: the weather cycle's tasks meet injected
5xx/429 at the paper exchange, and the next guard run (whose own calls all succeed) trips, halts
and cancels everything; a rate at or under 5 % does not trip."""

from __future__ import annotations

import re

import pytest

from kalshi.errors import KalshiError
from models.breakers import BreakerLimits
from tasks.api_calls import api_call_counts, recorder_for
from tasks.ledger_store import active_halts
from tasks.safety import GuardReport, run_guard
from tasks.settings import load_settings
from tasks.trading import sync_orders
from tests.integration.safety_harness import Desk, desk, safety_venue  # noqa: F401

WINDOW_S = 300.0


@pytest.fixture
def trading(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> Desk:  # noqa: F811
    # the trading tasks read settings: no client-side retries (one request per call), no throttle
    monkeypatch.setenv("EVENTDESK_KALSHI_MAX_RETRIES", "0")
    monkeypatch.setenv("EVENTDESK_KALSHI_TIER", "prime")
    load_settings(fresh=True)
    return desk


def _trading_cycles(desk: Desk, runs: int) -> int:  # noqa: F811
    """Run the trade-weather flow's first task `runs` times; return how many failed."""
    failed = 0
    for _ in range(runs):
        try:
            sync_orders.fn(desk.venue.clock.now(), 0.0)
        except KalshiError:
            failed += 1
    return failed


def _guard(desk: Desk) -> GuardReport:  # noqa: F811
    with desk.client() as client:
        return run_guard(client, desk.engine, now=desk.venue.clock.now(), limits=BreakerLimits(),
                         webhook=desk.webhook.url, heartbeats={}, feeds={})


def _rate(report: GuardReport):
    return next(b for b in report.breakers if b.name == "error_rate")


def test_guard_trading_flow_calls_meeting_5xx_429_trip_error_rate_and_cancel(
        trading: Desk) -> None:
    # Arrange: a resting order placed while the exchange is healthy
    market = trading.venue.market()
    placed = trading.trade([(market, "yes", 15, 5)])
    assert placed.count("place", "resting") == 1, placed.outcomes
    healthy = api_call_counts(trading.engine, now=trading.venue.clock.now(), window_s=WINDOW_S)
    assert healthy.errors == 0

    # Act 1: trading cycles meet injected server errors and rate limits
    trading.venue.operator("/faults", {"error_rate": 0.5, "rate_limit_rate": 0.3})
    try:
        failed = _trading_cycles(trading, 12)
    finally:
        trading.venue.operator("/faults", {"clear": True})

    # Assert 1: every trading task wrote its counts when it ended (nothing left in the buffer)
    assert failed > 0
    assert recorder_for(trading.engine).pending.calls == 0
    after = api_call_counts(trading.engine, now=trading.venue.clock.now(), window_s=WINDOW_S)
    assert after.errors >= failed
    assert after.calls > healthy.calls + failed

    # Act 2: the guard, whose own calls all succeed
    report = _guard(trading)

    # Assert 2: tripped on the trading path's errors, everything cancelled, the halt recorded
    assert report.exchange_error is None
    assert [t.name for t in report.trips] == ["error_rate"], report.breakers
    assert "limit 0.05" in _rate(report).reason
    assert report.cancel is not None
    assert report.cancel.complete
    assert len(report.cancel.canceled) == 1
    assert trading.resting() == []
    assert any("breaker error_rate" in h for h in active_halts(trading.engine))
    assert {"breaker", "halt"} <= set(trading.webhook.kinds())


def test_guard_trading_errors_at_or_under_5_percent_do_not_trip_one_more_does(
        trading: Desk) -> None:
    # Arrange: one trading cycle whose first call meets a 503, then healthy cycles
    market = trading.venue.market()
    trading.trade([(market, "no", 20, 5)])
    trading.venue.operator("/faults", {"error_rate": 1.0})
    try:
        assert _trading_cycles(trading, 1) == 1
    finally:
        trading.venue.operator("/faults", {"clear": True})
    counts = api_call_counts(trading.engine, now=trading.venue.clock.now(), window_s=WINDOW_S)
    while counts.calls < 2 * BreakerLimits().min_calls:  # healthy cycles (calls per cycle vary)
        assert _trading_cycles(trading, 1) == 0
        counts = api_call_counts(trading.engine, now=trading.venue.clock.now(),
                                 window_s=WINDOW_S)
    assert counts.errors == 1  # the trading task's failed call was counted
    assert counts.calls >= 2 * BreakerLimits().min_calls

    # Act 1: the guard
    calm = _guard(trading)

    # Assert 1: 1 error in that many calls is within 5 %: nothing trips, the order rests on
    assert calm.trips == (), calm.breakers
    judged = re.match(r"1/(\d+) calls failed", _rate(calm).reason)
    assert judged is not None, _rate(calm).reason
    guard_calls = int(judged[1]) - counts.calls  # the guard's own reads, all answered
    assert guard_calls > 0
    assert len(trading.resting()) == 1
    assert active_halts(trading.engine) == []

    # Act 2: trading cycles fail until errors exceed 5 % of the calls the next guard will judge
    now = trading.venue.clock.now()
    seen = api_call_counts(trading.engine, now=now, window_s=WINDOW_S)
    trading.venue.operator("/faults", {"error_rate": 1.0})
    try:
        while seen.errors * 20 <= seen.calls + guard_calls:
            assert _trading_cycles(trading, 1) == 1
            seen = api_call_counts(trading.engine, now=now, window_s=WINDOW_S)
    finally:
        trading.venue.operator("/faults", {"clear": True})
    tripping = _guard(trading)

    # Assert 2: now it trips
    assert [t.name for t in tripping.trips] == ["error_rate"], tripping.breakers
    assert trading.resting() == []
