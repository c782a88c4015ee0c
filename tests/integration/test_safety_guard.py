"""Guard scenarios against the paper exchange: each breaker trips, halts, cancels everything."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from models.breakers import BreakerLimits
from tasks.ledger_store import active_halts, record_heartbeat
from tasks.safety import run_guard
from tests.integration.safety_harness import Desk, desk, safety_venue  # noqa: F401

QUIET = {"heartbeats": {}, "feeds": {}}


def _guard(desk: Desk, limits: BreakerLimits | None = None, **kwargs):  # noqa: F811
    options = {**QUIET, **kwargs}
    with desk.client() as client:
        return run_guard(client, desk.engine, now=desk.venue.clock.now(),
                         limits=limits or BreakerLimits(), webhook=desk.webhook.url, **options)


def test_guard_daily_loss_breach_cancels_halts_and_blocks_next_run(desk: Desk) -> None:  # noqa: F811
    # Arrange: start-of-day equity recorded, two resting orders, then a realised $48+ loss
    first = _guard(desk)
    assert first.trips == ()
    assert first.start_equity_cents == 100_000
    resting_market, loss_market = desk.venue.market(), desk.venue.market()
    placed = desk.trade([(resting_market, "yes", 10, 10), (resting_market, "no", 10, 10)])
    assert placed.count("place", "resting") == 2, placed.outcomes
    assert len(desk.resting()) == 2
    taken = desk.take(loss_market, side="yes", price_cents=60, count=80)
    assert taken.count("place", "executed") == 1, taken.outcomes
    desk.venue.operator("/settle", {"ticker": loss_market, "result": "no"})

    # Act: one guard run
    report = _guard(desk)

    # Assert: tripped on the loss, nothing rests, the halt is recorded, an alert went out
    assert [t.name for t in report.trips] == ["daily_loss"], report.breakers
    assert report.cancel is not None
    assert len(report.cancel.canceled) == 2
    assert desk.resting() == []
    halts = active_halts(desk.engine)
    assert len(halts) == 1
    assert "breaker daily_loss" in halts[0]
    assert "halt" in desk.webhook.kinds()
    assert "breaker" in desk.webhook.kinds()
    # a following trading run places nothing
    again = desk.trade([(resting_market, "yes", 11, 10)])
    assert again.count("place", "resting") == 0
    assert again.count("place", "rejected") == 1
    assert "halt" in again.outcomes[0].detail
    assert desk.resting() == []


def test_guard_error_rate_from_injected_5xx_and_429_trips(desk: Desk) -> None:  # noqa: F811
    # Arrange: a resting order, then calls that meet injected server errors and rate limits
    market = desk.venue.market()
    desk.trade([(market, "yes", 15, 5)])
    desk.venue.operator("/faults", {"error_rate": 0.5, "rate_limit_rate": 0.3})
    try:
        with desk.client() as client:
            for _ in range(30):
                try:
                    client.get_balance()
                except Exception:  # noqa: BLE001, S112 (the failures are the point)
                    continue
    finally:
        desk.venue.operator("/faults", {"clear": True})

    # Act
    report = _guard(desk)

    # Assert
    assert "error_rate" in [t.name for t in report.trips], report.breakers
    rate = next(b for b in report.breakers if b.name == "error_rate")
    assert "limit 0.05" in rate.reason
    assert desk.resting() == []
    assert any("breaker error_rate" in h for h in active_halts(desk.engine))


def test_guard_fill_rate_far_above_expected_trips_as_adverse_selection(desk: Desk) -> None:  # noqa: F811
    # Arrange: every contract we offer is taken at once
    market = desk.venue.market()
    desk.trade([(market, "yes", 20, 10)])
    desk.fill_resting(market, yes_price_cents=20, count=10)
    desk.trade([(market, "yes", 21, 10)])  # books the fills, rests a new order
    limits = BreakerLimits(expected_fill_rate=Decimal("0.1"), min_offered_contracts=10)

    # Act
    report = _guard(desk, limits)

    # Assert
    fill = next(b for b in report.breakers if b.name == "fill_rate")
    assert fill.tripped, fill
    assert "adverse selection" in fill.reason
    assert desk.resting() == []


def test_guard_fill_rate_far_below_expected_trips(desk: Desk) -> None:  # noqa: F811
    market = desk.venue.market()
    desk.trade([(market, "yes", 5, 20)])
    limits = BreakerLimits(expected_fill_rate=Decimal("0.5"), min_offered_contracts=10)

    report = _guard(desk, limits)

    fill = next(b for b in report.breakers if b.name == "fill_rate")
    assert fill.tripped, fill
    assert "below" in fill.reason
    assert desk.resting() == []


def test_guard_stale_forecast_feed_and_missing_heartbeat_trip(desk: Desk) -> None:  # noqa: F811
    # Arrange: the feed and the trading flow were alive, then went quiet for an hour
    market = desk.venue.market()
    desk.trade([(market, "no", 30, 5)])
    hour_ago = desk.venue.clock.now() - timedelta(hours=1)
    record_heartbeat(desk.engine, "feed:forecast", as_of=hour_ago)
    record_heartbeat(desk.engine, "trade-weather", as_of=hour_ago)

    # Act
    report = _guard(desk, feeds={"feed:forecast": 1800.0},
                    heartbeats={"trade-weather": 1800.0})

    # Assert
    assert {t.name for t in report.trips} == {"feed:forecast", "heartbeat:trade-weather"}
    assert desk.resting() == []
    assert len(active_halts(desk.engine)) == 2


def test_guard_fresh_feed_and_heartbeat_do_not_trip(desk: Desk) -> None:  # noqa: F811
    now = desk.venue.clock.now()
    record_heartbeat(desk.engine, "feed:forecast", as_of=now - timedelta(minutes=5))
    record_heartbeat(desk.engine, "trade-weather", as_of=now - timedelta(minutes=5))

    report = _guard(desk, feeds={"feed:forecast": 1800.0},
                    heartbeats={"trade-weather": 1800.0})

    assert report.trips == ()
    assert active_halts(desk.engine) == []
