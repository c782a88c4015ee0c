"""Worker of the trading drills: one trading cycle in its own process, configured by EVENTDESK_*
environment variables, composed from the flow's task bodies (``.fn``: no Prefect server).

``python -m tests.integration.trade_drill_worker STRATEGY SERIES [GO_FILE]`` runs sync -> markets ->
forecasts -> decisions, then (with GO_FILE) waits at a barrier so racing workers hit the gateway
together, then runs the gateway once.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tasks.trading import (
    decide_markets,
    fetch_forecasts,
    fetch_weather_markets,
    place_orders,
    sync_orders,
)


def _barrier(go: Path | None, strategy: str) -> None:
    if go is None:
        return
    Path(f"{go}.ready-{strategy}").touch()  # decided, and waiting to send
    while not go.exists():
        time.sleep(0.002)


def cycle(strategy: str, series: list[str], interval_s: int = 60, go: Path | None = None) -> int:
    """Run one cycle; return the number of order changes."""
    as_of = datetime.now(UTC)
    sync = sync_orders.fn(as_of, 30.0)
    markets, _skips = fetch_weather_markets.fn(series, as_of, sync.resting)
    forecasts = fetch_forecasts.fn(sorted({(m.series_ticker, m.day) for m in markets}), as_of)
    orders = decide_markets.fn(markets, forecasts, as_of, sync.equity_cents, strategy,
                               sync.resting)
    _barrier(go, strategy)
    return len(place_orders.fn(orders, sync, as_of, strategy, interval_s))


def main(argv: list[str]) -> int:
    strategy = argv[0]
    series = argv[1].split(",")
    go = Path(argv[2]) if len(argv) > 2 else None
    changes = cycle(strategy, series, go=go)
    sys.stdout.write(f"changes {changes}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
