"""The forecast feed of the hourly ``record-forecasts`` flow: archive each station's forecast and
keep the guard's ``feed:forecast`` heartbeat honest.

Invariants:
- A station's fetch counts as fresh only when its gridpoint was fetched, its own ``updateTime``
  is within ``nws_max_age_hours`` of the fetch, and at least one climate-day value was stored in
  the forecast archive; a failed fetch, a stale or malformed grid stores nothing and is not fresh.
- ``feed:forecast`` is written (at the newest fresh fetch time, with the stations and their issue
  times in the detail) only when at least one fetch of the run was fresh; otherwise it is left
  alone, so the guard sees the feed go stale. The trading path writes the same heartbeat when it
  prices with fresh forecasts; with no market open the hourly recording keeps it alive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE

from models.climate import climate_day_of, station_for
from models.nws import NwsParseError, parse_gridpoint
from tasks.forecast_archive import open_archive, store_nws_snapshot
from tasks.ledger_store import record_heartbeat
from tasks.nws import NwsTransientError, nws_client
from tasks.safety import safety_engine
from tasks.settings import load_settings
from tasks.trading import FEED_FORECAST  # the heartbeat the guard's forecast breaker reads

__all__ = ["ForecastFetch", "record_forecast_feed", "record_station_forecast"]


@dataclass(frozen=True)
class ForecastFetch:
    """One station's fetch: when, the grid's issue time (None if refused), values stored."""

    series: str
    station: str
    fetched_at: datetime
    issued_at: datetime | None
    stored: int
    problems: tuple[str, ...]

    @property
    def fresh(self) -> bool:
        """True when a fresh grid was fetched and at least one value archived."""
        return self.issued_at is not None and self.stored > 0


def _retry_on_transient(task: object, task_run: object, state: object) -> bool:
    return isinstance(state.result(raise_on_failure=False), NwsTransientError)  # type: ignore[attr-defined]


@task(name="record-station-forecast", cache_policy=NO_CACHE, retries=2,
      retry_delay_seconds=[30, 120], retry_condition_fn=_retry_on_transient)
def record_station_forecast(series: str, days_ahead: int = 2) -> ForecastFetch:
    """Fetch the series' gridpoint and archive its maxima for today and the next days."""
    settings = load_settings()
    station = station_for(series)
    with nws_client(settings) as client:
        point, _ = client.get_points(station.lat, station.lon)
        doc = client.get_gridpoint_raw(point)
    max_age = timedelta(hours=settings.nws_max_age_hours)
    try:
        issued_at: datetime | None = parse_gridpoint(doc.payload, as_of=doc.fetched_at,
                                                     max_age=max_age).update_time
    except NwsParseError:
        issued_at = None  # store_nws_snapshot refuses it too and says why
    today = climate_day_of(doc.fetched_at, station.standard_offset_hours)
    days = [today + timedelta(days=k) for k in range(days_ahead + 1)]
    archive = open_archive(f"sqlite:///{settings.resolved_data_dir / 'forecast_archive.sqlite'}")
    try:
        problems = store_nws_snapshot(archive, station, doc.payload, doc.fetched_at, days,
                                      max_age)
    finally:
        archive.dispose()
    stored = 0 if issued_at is None else 2 * len(days) - len(problems)  # two values per day
    return ForecastFetch(series, station.icao, doc.fetched_at, issued_at, max(stored, 0),
                         tuple(problems))


@task(name="record-forecast-feed", cache_policy=NO_CACHE)
def record_forecast_feed(fetches: Sequence[ForecastFetch]) -> datetime | None:
    """Write ``feed:forecast`` at the newest fresh fetch; return its time (None: not written)."""
    fresh = [f for f in fetches if f.fresh]
    if not fresh:
        return None
    newest = max(f.fetched_at for f in fresh)
    detail = (f"record-forecasts: {len(fresh)}/{len(fetches)} stations fresh; "
              + ", ".join(f"{f.station} issued {f.issued_at.isoformat()}"
                          for f in fresh if f.issued_at is not None))
    record_heartbeat(safety_engine(), FEED_FORECAST, as_of=newest, detail=detail[:500])
    return newest
