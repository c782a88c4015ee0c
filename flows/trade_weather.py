"""Flow: trade the KXHIGH weather markets once (scheduled every few minutes).

Invariant: the flow only composes tasks; it refuses to act when it started later than
``max_late_s`` after its scheduled time, records a heartbeat every run, and every exchange change
goes through the gateway (``tasks.trading.place_orders`` -> ``tasks.gateway``). A retried run
re-derives the same order keys and resolves earlier attempts by key, so retries never duplicate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from tasks.approval import request_approval
from tasks.trading import (
    WEATHER_SERIES,
    decide_markets,
    fetch_forecasts,
    fetch_weather_markets,
    place_orders,
    publish_decisions,
    record_run_heartbeat,
    sync_orders,
)

__all__ = ["DEFAULT_INTERVAL_S", "trade_weather"]

DEFAULT_INTERVAL_S = 600  # the schedule interval; Settings.order_ttl_s (900) is a bit longer


@flow(name="trade-weather", retries=1, retry_delay_seconds=2)
def trade_weather(
    as_of: datetime | None = None,
    series: list[str] | None = None,
    dry_run: bool = False,
    strategy: str = "weather-v0",
    interval_s: int = DEFAULT_INTERVAL_S,
    max_late_s: float = 300.0,
    resolve_after_s: float = 30.0,
) -> dict[str, Any]:
    """Active weather events -> probabilities -> books -> decisions -> gateway, once."""
    logger = get_run_logger()
    started = datetime.now(UTC)
    as_of = (as_of or started).astimezone(UTC)
    late_s = (started - flow_run.scheduled_start_time).total_seconds()
    if late_s > max_late_s:
        logger.warning("trade-weather started %.0fs late (limit %.0fs): not acting", late_s,
                       max_late_s)
        record_run_heartbeat("trade-weather", as_of, f"refused: {late_s:.0f}s late")
        return {"refused": f"started {late_s:.0f}s late (limit {max_late_s:.0f}s)"}
    chosen = list(series or WEATHER_SERIES)
    sync = sync_orders(as_of, resolve_after_s)
    markets, skips = fetch_weather_markets(chosen, as_of, sync.resting)
    forecasts = fetch_forecasts(sorted({(m.series_ticker, m.day) for m in markets}), as_of)
    cycle = decide_markets(markets, forecasts, as_of, sync.equity_cents, strategy,
                           sync.resting)
    cycle = request_approval(cycle, as_of)  # approval mode: a person approves in the UI, or nothing
    outcomes = () if dry_run else place_orders(cycle, sync, as_of, strategy, interval_s)
    table = publish_decisions(cycle.rows, outcomes, as_of)
    summary = {
        "as_of": as_of.isoformat(), "markets": len(markets), "skipped": len(skips),
        "wants": len(cycle.wants), "fills_booked": sync.fills_booked,
        "resolved": list(sync.resolved), "outcomes": [list(o) for o in outcomes],
        "decisions": table, "skips": [[s.market_ticker, s.event_ticker, s.reason]
                                      for s in skips],
    }
    record_run_heartbeat("trade-weather", as_of,
                         f"{len(markets)} markets, {len(outcomes)} order changes")
    logger.info("trade-weather: %d markets, %d skipped, %d order changes", len(markets),
                len(skips), len(outcomes))
    return summary
