"""Dead man's switch against the paper exchange: link outages, and a trading process that died."""

from __future__ import annotations

import time
from datetime import timedelta

from kalshi.client import KalshiClient
from models.breakers import BreakerLimits
from tasks.ledger_store import active_halts, record_heartbeat
from tasks.safety import GuardReport, run_guard
from tests.integration.safety_harness import Desk, desk, safety_venue  # noqa: F401


def _guard(desk: Desk, client: KalshiClient, **kwargs) -> GuardReport:  # noqa: F811
    options = {"heartbeats": {}, "feeds": {}, **kwargs}
    with client:
        return run_guard(client, desk.engine, now=desk.venue.clock.now(),
                         limits=BreakerLimits(), webhook=desk.webhook.url, **options)


def _link(report: GuardReport):
    return next(b for b in report.breakers if b.name == "link")


def test_guard_link_down_over_60s_cancels_everything_when_it_returns(desk: Desk) -> None:  # noqa: F811
    # Arrange: resting orders, then the exchange becomes unreachable
    market = desk.venue.market()
    desk.trade([(market, "yes", 10, 5), (market, "no", 10, 5)])
    first = _guard(desk, desk.unreachable())
    assert not _link(first).tripped
    assert first.exchange_error is not None
    desk.venue.clock.advance(90)  # the injected clock: 90 s pass without a successful call

    # Act 1: still down -> the breaker trips and halts, but nothing can be cancelled yet
    down = _guard(desk, desk.unreachable())
    assert _link(down).tripped
    assert "cancel everything as soon as it returns" in _link(down).reason
    assert down.cancel is None
    assert len(desk.resting()) == 2
    assert any("breaker link" in h for h in active_halts(desk.engine))

    # Act 2: the link is back -> cancel-all
    desk.venue.clock.advance(10)
    back = _guard(desk, desk.client())

    # Assert
    assert _link(back).tripped, _link(back)
    assert "back after" in _link(back).reason
    assert back.cancel is not None
    assert len(back.cancel.canceled) == 2
    assert desk.resting() == []
    assert not _link(_guard(desk, desk.client())).tripped  # acted on once, then quiet


def test_guard_link_down_under_60s_does_not_cancel(desk: Desk) -> None:  # noqa: F811
    market = desk.venue.market()
    desk.trade([(market, "yes", 10, 5)])
    _guard(desk, desk.unreachable())
    desk.venue.clock.advance(30)

    back = _guard(desk, desk.client())

    assert not _link(back).tripped
    assert "last outage" in _link(back).reason
    assert back.trips == ()
    assert len(desk.resting()) == 1


def test_killed_trading_process_orders_expire_and_missing_heartbeat_trips(desk: Desk) -> None:  # noqa: F811
    # Arrange: a trading run rests orders with a 120 s TTL, beats once, then its process dies
    market = desk.venue.market()
    started = desk.venue.clock.now()
    placed = desk.trade([(market, "yes", 12, 5), (market, "no", 12, 5)], ttl_s=120)
    assert placed.count("place", "resting") == 2
    record_heartbeat(desk.engine, "trade-weather", as_of=started)

    # Act: time passes at the exchange beyond the TTL (no sleeping 120 s)
    desk.venue.clock.advance(121)
    deadline = time.monotonic() + 5
    while desk.resting() and time.monotonic() < deadline:
        time.sleep(0.05)

    # Assert: the exchange expired them by itself; the guard then sees the silent flow
    assert desk.resting() == []
    desk.venue.clock.advance(600)
    report = _guard(desk, desk.client(), heartbeats={"trade-weather": 600.0})
    assert [t.name for t in report.trips] == ["heartbeat:trade-weather"]
    assert report.cancel is not None
    assert report.cancel.complete
    assert started + timedelta(seconds=700) < desk.venue.clock.now()
