"""Feed breakers against the paper exchange, a real SQLite ledger and loopback NWS services: the
hourly record-forecasts run keeps ``feed:forecast`` fresh with no market open (and only when it
fetched a fresh forecast), and a stale feed trips the guard while an order of ours rests on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from deployments.nws_sim import build_app
from flows.record_forecasts import RecordingFailed, record_forecasts
from kalshi.paper.server import serve_in_thread
from models.breakers import BreakerLimits
from models.forecast_archive import ForecastRecord
from tasks.forecast_archive import open_archive
from tasks.ledger_store import active_halts, record_heartbeat
from tasks.nws_standin import StandinState, serve_standin
from tasks.safety import evaluate, heartbeat_times, run_guard
from tasks.settings import load_settings
from tests.integration.safety_harness import Desk, desk, safety_venue  # noqa: F401

FORECAST_6H = {"feed:forecast": 6 * 3600.0}


def _use_nws(monkeypatch: pytest.MonkeyPatch, base_url: str, data_dir: Path) -> None:
    monkeypatch.setenv("EVENTDESK_NWS_BASE_URL", base_url)
    monkeypatch.setenv("EVENTDESK_NWS_USER_AGENT", "eventdesk-tests/0.1 (tests@example.invalid)")
    monkeypatch.setenv("EVENTDESK_DATA_DIR", str(data_dir))
    load_settings(fresh=True)


@pytest.fixture
def simulated_nws(desk: Desk, tmp_path: Path,  # noqa: F811
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The simulated NWS (fresh grids) for this desk."""
    with serve_in_thread(build_app(seed=0)) as url:
        _use_nws(monkeypatch, url, tmp_path)
        yield url


@pytest.fixture
def recorded_nws(desk: Desk, tmp_path: Path, fixtures_dir: Path,  # noqa: F811
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[StandinState]:
    """The NWS stand-in serving the recorded 2022 grid (stale today), failures on demand."""
    state = StandinState(fixtures=fixtures_dir)
    with serve_standin(state) as url:
        _use_nws(monkeypatch, url, tmp_path)
        yield state


def _forecast_breaker(desk: Desk):  # noqa: F811
    with desk.client() as client:
        breakers = evaluate(client, desk.engine, now=desk.venue.clock.now(),
                            limits=BreakerLimits(), heartbeats={}, feeds=FORECAST_6H)
    return next(b for b in breakers if b.name == "feed:forecast")


def test_record_forecasts_no_open_market_keeps_the_forecast_feed_fresh(
        desk: Desk, simulated_nws: str, prefect_harness) -> None:  # noqa: F811
    # Arrange: the last trading run priced a market 7 h ago; an order of ours rests (so the
    # feed is depended on) and no market of the weather series is open (nothing fetches it)
    now = desk.venue.clock.now()
    record_heartbeat(desk.engine, "feed:forecast", as_of=now - timedelta(hours=7))
    assert desk.trade([(desk.venue.market(), "yes", 10, 5)]).count("place", "resting") == 1
    stale = _forecast_breaker(desk)
    assert stale.tripped, stale

    # Act: the hourly recording run
    result = record_forecasts(series=["KXHIGHNY", "KXHIGHCHI"], days_ahead=1)

    # Assert: both stations fresh, the heartbeat is the fetch time, the guard is satisfied
    assert result["recorded"] == 2
    beat = heartbeat_times(desk.engine, ["feed:forecast"])["feed:forecast"]
    assert beat is not None
    assert abs((beat - desk.venue.clock.now()).total_seconds()) < 120
    written = datetime.fromisoformat(result["feed_forecast_at"])
    assert abs((written - beat).total_seconds()) < 0.001  # the ledger keeps milliseconds
    fresh = _forecast_breaker(desk)
    assert not fresh.tripped, fresh
    assert "limit 21600s" in fresh.reason


def test_record_forecasts_stale_grid_or_failed_fetch_leaves_the_feed_alone(
        desk: Desk, recorded_nws: StandinState, tmp_path: Path,  # noqa: F811
        prefect_harness) -> None:
    # Act: the stand-in's grid was issued in 2022 (stale), then the gridpoint fetch is refused
    with pytest.raises(RecordingFailed, match="no fresh forecast"):
        record_forecasts(series=["KXHIGHNY"], days_ahead=0)
    recorded_nws.fail("/gridpoints", 403, title="Forbidden")
    with pytest.raises(RecordingFailed, match="no fresh forecast"):
        record_forecasts(series=["KXHIGHNY"], days_ahead=0)

    # Assert: no heartbeat, nothing archived, and the stale grid was actually fetched
    assert heartbeat_times(desk.engine, ["feed:forecast"]) == {"feed:forecast": None}
    assert recorded_nws.hits["/gridpoints/TAE/58,65"] >= 1
    archive = open_archive(f"sqlite:///{tmp_path / 'forecast_archive.sqlite'}")
    with Session(archive) as session:
        assert list(session.exec(select(ForecastRecord))) == []
    archive.dispose()


def test_guard_stale_market_data_feed_trips_only_while_an_order_rests_on_it(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: market data last read 2 h ago (limit 15 min); nothing of ours rests
    now = desk.venue.clock.now()
    record_heartbeat(desk.engine, "feed:market-data", as_of=now - timedelta(hours=2))
    feeds = {"feed:market-data": 900.0}

    # Act: a guard run with nothing depending on the feed
    with desk.client() as client:
        quiet = run_guard(client, desk.engine, now=now, limits=BreakerLimits(), heartbeats={},
                          feeds=feeds, webhook=desk.webhook.url)

    # Assert: reported stale, not tripped, no halt
    feed = next(b for b in quiet.breakers if b.name == "feed:market-data")
    assert not feed.tripped
    assert "stale, but no order of ours rests" in feed.reason
    assert quiet.trips == ()
    assert active_halts(desk.engine) == []

    # Act: a trading run leaves a resting order priced on that feed; the guard runs again
    market = desk.venue.market()
    assert desk.trade([(market, "no", 20, 4)]).count("place", "resting") == 1
    with desk.client() as client:
        tripped = run_guard(client, desk.engine, now=desk.venue.clock.now(),
                            limits=BreakerLimits(), heartbeats={}, feeds=feeds,
                            webhook=desk.webhook.url)

    # Assert: tripped, halted, the order is gone
    assert [t.name for t in tripped.trips] == ["feed:market-data"]
    assert "1 resting orders depend on it" in tripped.trips[0].reason
    assert tripped.cancel is not None
    assert len(tripped.cancel.canceled) == 1
    assert desk.resting() == []
    assert "breaker feed:market-data" in active_halts(desk.engine)[0]
