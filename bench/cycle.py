"""Benchmark: one weather trading cycle over 84 markets (7 cities x 2 days x 6 brackets) against
the paper exchange, versus the same cycle's minimum made with direct client calls.

Usage: ``python bench/cycle.py [--repeat 3] [--venue process|thread]``

Setup (not timed): a paper exchange on 127.0.0.1 with synthetic liquidity for the seven KXHIGH
series, the loopback NWS stand-in serving forecasts consistent with the synthetic markets (with
a bias, so there are edges to trade), a temporary SQLite ledger, two fresh funded accounts.
With ``--venue process`` (the default) the exchange and the NWS stand-in run in a child process,
so they do not compete with the timed code for this process's interpreter lock (real venues are
remote); ``--venue thread`` serves them from threads of this process, as the first versions of
this bench did (compare figures only within one setup).

- ``cycle_s``: the trading cycle as the flow composes it (task bodies, no Prefect orchestration):
  book fills and resolve intents, read equity, events and books, NWS forecasts, probabilities,
  decisions recorded in the ledger, risk-gated intents written before sending, batch create,
  acknowledgements recorded. Startup work is outside the clock, as for the direct path's
  client: the ledger's migration and the process's shared exchange client (its key loaded).
  Caches (NWS ``/points`` on disk and in memory, series metadata in memory) are warm after the
  first run, as in a served flow; the first run is reported but the median is taken.
- ``direct_s``: the exchange round trips that cycle cannot avoid, made with the client alone on a
  second account: the events of each series (with markets), one order-book batch, our orders, and
  the same order set through batch create. No ledger, no NWS, no risk gate.

Each is the median of ``--repeat`` runs, every run on fresh accounts and a fresh ledger, the market
makers requoting before each path (so every run meets full books); ``ratio`` is the median of the
per-run ratios. Request counts (not noisy) are reported per run: ``exchange_requests`` (method and
path, series tickers folded) and ``nws_requests`` of the cycle. The last line is one JSON object
with ``cycle_s``, ``direct_s``, ``ratio`` and ``markets`` (plus the counts and the load average).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kalshi.client import order_request  # noqa: E402
from models.synthetic import SERIES  # noqa: E402
from tasks.settings import load_settings  # noqa: E402
from tests.integration._trading_helpers import Venue, trading_venue  # noqa: E402

TICKERS = [s.series_ticker for s in SERIES]


class _CountingApp:
    """ASGI wrapper counting requests by (method, path), series tickers folded."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"].removeprefix("/trade-api/v2")
            self.counts[f"{scope['method']} {re.sub(r'^/series/[^/]+$', '/series/*', path)}"] += 1
        await self.app(scope, receive, send)


class LocalVenue:
    """The venue served from threads of this process."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.counter = _CountingApp(venue.faults_seen.app)
        venue.faults_seen.app = self.counter

    def refresh(self) -> None:
        self.venue.refresh_books()

    def counts(self) -> dict[str, dict[str, int]]:
        """Return and reset the exchange and NWS request counts since the last call."""
        out = {"exchange": dict(self.counter.counts), "nws": dict(self.venue.nws.hits)}
        self.counter.counts.clear()
        self.venue.nws.hits.clear()
        return out


def _setup(venue: Venue) -> None:
    venue.stop_liquidity()  # the books hold still while both paths are timed
    venue.nws.bias_f.update({t: (1.5 if i % 2 else -1.5) for i, t in enumerate(TICKERS)})


def serve_venue() -> int:
    """Child process: serve the venue, print its addresses, answer refresh/counts/quit lines."""
    with tempfile.TemporaryDirectory() as tmp, trading_venue(Path(tmp), series=TICKERS,
                                                             min_volume=20) as venue:
        _setup(venue)
        local = LocalVenue(venue)
        print(json.dumps({"root": venue.root, "nws_url": venue.nws_url}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "refresh":
                local.refresh()
                print(json.dumps({"ok": True}), flush=True)
            elif command == "counts":
                print(json.dumps(local.counts()), flush=True)
            else:
                break
    return 0


class RemoteVenue:
    """The venue served by a child process (``--serve-venue``), driven over its pipes."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 (our own script, fixed arguments)
            [sys.executable, __file__, "--serve-venue"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
        info = self._read()
        # the in-process parts of a Venue are not used by the timed paths (accounts, settings
        # and clients go through the operator API and the URLs)
        self.venue = Venue(info["root"], None, None, info["nws_url"], None,  # type: ignore[arg-type]
                           folder / "trader.pem", folder / "data", None, series=TICKERS)

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the venue process ended before answering")
        result: dict[str, Any] = json.loads(line)
        return result

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def refresh(self) -> None:
        self._ask("refresh")

    def counts(self) -> dict[str, dict[str, int]]:
        """Return and reset the exchange and NWS request counts since the last call."""
        return self._ask("counts")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


@contextmanager
def venue_of(kind: str, folder: Path) -> Iterator[LocalVenue | RemoteVenue]:
    """Serve the bench venue in this process (``thread``) or a child process (``process``)."""
    if kind == "thread":
        with trading_venue(folder, series=TICKERS, min_volume=20) as venue:
            _setup(venue)
            yield LocalVenue(venue)
        return
    remote = RemoteVenue(folder)
    try:
        yield remote
    finally:
        remote.close()


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
    parser.add_argument("--venue", choices=("process", "thread"), default="process")
    parser.add_argument("--serve-venue", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_venue:
        return serve_venue()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with venue_of(args.venue, folder) as served:
            venue = served.venue
            cycles, directs, markets, orders = [], [], 0, 0
            requests: list[dict[str, dict[str, int]]] = []
            for n in range(args.repeat):
                served.refresh()  # each run meets full books (earlier runs took some)
                served.counts()
                cycle_s, wants, markets = run_cycle(venue, folder, f"bench-cycle-{n}")
                counted = served.counts()
                counted["exchange"].pop("POST /operator/keys", None)  # setup, not the cycle
                requests.append(counted)
                served.refresh()
                direct_s = run_direct(venue, folder, f"bench-direct-{n}", wants)
                cycles.append(cycle_s)
                directs.append(direct_s)
                orders = len(wants)
                print(f"run {n}: cycle {cycle_s:.3f}s direct {direct_s:.3f}s "
                      f"({markets} markets, {orders} orders; exchange requests "
                      f"{sum(counted['exchange'].values())}, nws {sum(counted['nws'].values())})")
    cycle_s, direct_s = statistics.median(cycles), statistics.median(directs)
    ratios = [c / d for c, d in zip(cycles, directs, strict=True)]
    print(json.dumps({"cycle_s": round(cycle_s, 4), "direct_s": round(direct_s, 4),
                      "ratio": round(statistics.median(ratios), 3), "markets": markets,
                      "orders": orders, "repeat": args.repeat, "venue": args.venue,
                      "cycles_s": [round(c, 4) for c in cycles],
                      "directs_s": [round(d, 4) for d in directs],
                      "exchange_requests": requests[-1]["exchange"],
                      "nws_requests": requests[-1]["nws"],
                      "first_run_nws_requests": requests[0]["nws"],
                      "loadavg_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
