"""Flow: record the NWS forecast of every settlement station, hourly (the forecast archive).

Invariant: the flow only composes ``tasks.nws.record_nws_snapshot``, which stores each fetched
gridpoint's daily and hourly maxima with their issue time (``updateTime``), fetch time, source,
station and valid date in ``<data_dir>/forecast_archive.sqlite``; anything not stored (a stale or
malformed bundle, an unreachable service) is reported in the run's table artifact and logs, never
dropped silently. One station's failure does not stop the others; the run fails if none stored.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from tasks.nws import NwsError, record_nws_snapshot
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
    recorded = 0
    for name in chosen:
        try:
            problems = record_nws_snapshot(name, days_ahead)
        except (NwsError, ValueError) as exc:
            logger.warning("record-forecasts: %s not recorded: %s", name, exc)
            rows.append({"series": name, "status": "failed", "detail": str(exc)[:300]})
            continue
        recorded += 1
        rows.append({"series": name, "status": "recorded" if not problems else "partial",
                     "detail": "; ".join(problems)[:300]})
        for problem in problems:
            logger.warning("record-forecasts: %s", problem)
    create_table_artifact(table=rows, key="forecast-recording",
                          description="Forecast archive: what each station's fetch stored")
    if recorded == 0:
        raise RecordingFailed(f"no forecast recorded for {', '.join(chosen)}")
    logger.info("record-forecasts: %d of %d series recorded", recorded, len(chosen))
    return {"series": chosen, "recorded": recorded, "rows": rows}
