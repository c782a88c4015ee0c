"""Flow: record the NWS forecast of every settlement station, hourly (the forecast archive).

Invariant: the flow only composes ``tasks.forecast_feed``: each station's fetched gridpoint has
its daily and hourly maxima stored with their issue time (``updateTime``), fetch time, source,
station and valid date in ``<data_dir>/forecast_archive.sqlite``; anything not stored (a stale or
malformed bundle, an unreachable service) is reported in the run's table artifact and logs, never
dropped silently. One station's failure does not stop the others; the run fails if none stored a
fresh forecast. When at least one did, the run writes the guard's ``feed:forecast`` heartbeat
(never after a failed fetch or a stale grid), so the feed stays fresh with no market open.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from tasks.forecast_feed import ForecastFetch, record_forecast_feed, record_station_forecast
from tasks.nws import NwsError
from tasks.trading import WEATHER_SERIES

__all__ = ["RecordingFailed", "record_forecasts"]


class RecordingFailed(RuntimeError):
    """No station's forecast could be recorded in this run."""


@flow(name="record-forecasts")
def record_forecasts(series: list[str] | None = None, days_ahead: int = 2) -> dict[str, Any]:
    """Fetch and archive today's and the next ``days_ahead`` days' forecast highs per series."""
    if days_ahead < 0 or days_ahead > 7:
        raise ValueError(f"days_ahead: must be 0..7 (got {days_ahead!r})")
    logger = get_run_logger()
    chosen = list(series or WEATHER_SERIES)
    rows: list[dict[str, Any]] = []
    fetches: list[ForecastFetch] = []
    for name in chosen:
        try:
            fetch = record_station_forecast(name, days_ahead)
        except (NwsError, ValueError) as exc:
            logger.warning("record-forecasts: %s not recorded: %s", name, exc)
            rows.append({"series": name, "status": "failed", "issued_at": None, "stored": 0,
                         "detail": str(exc)[:300]})
            continue
        fetches.append(fetch)
        status = ("refused" if not fetch.fresh
                  else "recorded" if not fetch.problems else "partial")
        rows.append({"series": name, "status": status,
                     "issued_at": None if fetch.issued_at is None else fetch.issued_at.isoformat(),
                     "stored": fetch.stored, "detail": "; ".join(fetch.problems)[:300]})
        for problem in fetch.problems:
            logger.warning("record-forecasts: %s", problem)
    create_table_artifact(table=rows, key="forecast-recording",
                          description="Forecast archive: what each station's fetch stored")
    recorded = sum(1 for f in fetches if f.fresh)
    feed_at = record_forecast_feed(fetches)
    if recorded == 0:
        raise RecordingFailed(f"no fresh forecast recorded for {', '.join(chosen)}")
    logger.info("record-forecasts: %d of %d series recorded; feed:forecast at %s", recorded,
                len(chosen), feed_at)
    return {"series": chosen, "recorded": recorded, "rows": rows,
            "feed_forecast_at": None if feed_at is None else feed_at.isoformat()}
