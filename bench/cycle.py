"""Benchmark: one weather trading cycle over 84 markets (7 cities x 2 days x 6 brackets) against
the paper exchange, versus the same cycle's minimum made with direct client calls.

Usage: ``python bench/cycle.py [--repeat 3]``

Setup (not timed): a paper exchange on 127.0.0.1 with synthetic liquidity for the seven KXHIGH
series, the loopback NWS stand-in serving forecasts consistent with the synthetic markets (with
a bias, so there are edges to trade), a temporary SQLite ledger, two fresh funded accounts.

- ``cycle_s``: the trading cycle as the flow composes it (task bodies, no Prefect orchestration):
  book fills and resolve intents, read equity, events and books, NWS forecasts, probabilities,
  decisions recorded in the ledger, risk-gated intents written before sending, batch create,
  acknowledgements recorded. Startup work is outside the clock, as for the direct path's
  client: the ledger's migration and the process's shared exchange client (its key loaded).
- ``direct_s``: the exchange round trips that cycle cannot avoid, made with the client alone on a
  second account: the events of each series (with markets), one order-book batch, our orders, and
  the same order set through batch create. No ledger, no NWS, no risk gate.

Each is the median of ``--repeat`` runs, every run on fresh accounts and a fresh ledger, the market
makers requoting before each path (so every run meets full books); ``ratio`` is the median of the
per-run ratios. The last line is one JSON object with ``cycle_s``, ``direct_s``,
``ratio`` and ``markets``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kalshi.client import order_request  # noqa: E402
from models.synthetic import SERIES  # noqa: E402
from tasks.settings import load_settings  # noqa: E402
from tests.integration._trading_helpers import Venue, trading_venue  # noqa: E402

TICKERS = [s.series_ticker for s in SERIES]


def _env(venue: Venue, folder: Path, name: str) -> None:
    venue.new_account(name, folder)
    for key, value in venue.env(f"sqlite:///{folder / (name + '.sqlite')}").items():
        os.environ[key] = value
    load_settings(fresh=True)


def run_cycle(venue: Venue, folder: Path, name: str) -> tuple[float, list, int]:
    from tasks.trading import (
        _shared_client,
        decide_markets,
        fetch_forecasts,
        fetch_weather_markets,
        ledger,
        place_orders,
        sync_orders,
    )

    _env(venue, folder, name)
    ledger()  # schema migration is startup work, not cycle work
    _shared_client(load_settings())  # so is loading the key (the direct path's client is built
    # before its clock starts too; a served flow keeps its client between cycles)
    started = time.perf_counter()
    as_of = datetime.now(UTC)
    sync = sync_orders.fn(as_of, 30.0)
    markets, _skips = fetch_weather_markets.fn(TICKERS, as_of, sync.resting)
    forecasts = fetch_forecasts.fn(sorted({(m.series_ticker, m.day) for m in markets}), as_of)
    cycle = decide_markets.fn(markets, forecasts, as_of, sync.equity_cents, "bench",
                              sync.resting)
    outcomes = place_orders.fn(cycle, sync, as_of, "bench", 600)
    elapsed = time.perf_counter() - started
    return elapsed, list(cycle.wants), len(markets) + 0 * len(outcomes)


def run_direct(venue: Venue, folder: Path, name: str, wants: list) -> float:
    venue.new_account(name, folder)
    with venue.client() as client:
        started = time.perf_counter()
        tickers = []
        for series in TICKERS:
            for event in client.iter_events(series_ticker=series, status="open",
                                            with_nested_markets=True):
                tickers += [m.ticker for m in event.markets]
        client.get_orderbooks(tickers[:100])
        list(client.iter_orders(limit=200))
        requests = [order_request(w.order.market_ticker, w.order.book_side, w.order.count,
                                  w.order.yes_price_cents,
                                  client_order_id=f"direct-{name}-{i}",
                                  time_in_force=w.order.time_in_force)
                    for i, w in enumerate(wants)]
        for start in range(0, len(requests), 20):
            client.batch_create_orders(requests[start:start + 20])
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(prog="python bench/cycle.py")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with trading_venue(folder, series=TICKERS, min_volume=20) as venue:
            venue.stop_liquidity()  # the books hold still while both paths are timed
            venue.nws.bias_f.update({t: (1.5 if i % 2 else -1.5) for i, t in enumerate(TICKERS)})
            cycles, directs, markets, orders = [], [], 0, 0
            for n in range(args.repeat):
                venue.refresh_books()  # each run meets full books (earlier runs took some)
                cycle_s, wants, markets = run_cycle(venue, folder, f"bench-cycle-{n}")
                venue.refresh_books()
                direct_s = run_direct(venue, folder, f"bench-direct-{n}", wants)
                cycles.append(cycle_s)
                directs.append(direct_s)
                orders = len(wants)
                print(f"run {n}: cycle {cycle_s:.3f}s direct {direct_s:.3f}s "
                      f"({markets} markets, {orders} orders)")
    cycle_s, direct_s = statistics.median(cycles), statistics.median(directs)
    ratios = [c / d for c, d in zip(cycles, directs, strict=True)]
    print(json.dumps({"cycle_s": round(cycle_s, 4), "direct_s": round(direct_s, 4),
                      "ratio": round(statistics.median(ratios), 3), "markets": markets,
                      "orders": orders, "repeat": args.repeat,
                      "cycles_s": [round(c, 4) for c in cycles],
                      "directs_s": [round(d, 4) for d in directs]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
