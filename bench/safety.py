"""Benchmark of the safety layer against a paper exchange on 127.0.0.1 (uvicorn in a thread).

Usage: ``python bench/safety.py [--orders 200] [--fills 100]``

Measures, for one account with ``--orders`` resting orders in 10 markets:
1. a guard run with no trip (read state, every breaker, records);
2. a guard run whose heartbeat breaker trips (halt + cancel-all of every order + verification);
3. a reconciliation of an account the ledger has never seen: ``--orders`` + ``--fills`` orders
   placed outside the bot (classified ``unknown_order``, unexplained: it halts) and ``--fills``
   fills (imported), then a second reconciliation of the same account (nothing left to import).
The last line printed is one JSON object with the figures in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kalshi.client import KalshiClient, order_request  # noqa: E402
from kalshi.paper.app import create_app  # noqa: E402
from kalshi.paper.exchange import PaperExchange  # noqa: E402
from kalshi.paper.server import serve_in_thread  # noqa: E402
from kalshi.signing import KalshiAuth, generate_private_key  # noqa: E402
from models.breakers import BreakerLimits  # noqa: E402
from tasks.db import ledger_engine, upgrade_ledger  # noqa: E402
from tasks.ledger_store import record_heartbeat  # noqa: E402
from tasks.reconcile import reconcile_once  # noqa: E402
from tasks.safety import run_guard, safety_client  # noqa: E402
from tests.integration.conftest import add_market, register_key  # noqa: E402

QUIET = {"heartbeats": {}, "feeds": {}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--fills", type=int, default=100)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-safety-"))
    exchange = PaperExchange(tmp / "exchange.sqlite", synchronous="NORMAL")
    url = f"sqlite:///{tmp / 'ledger.sqlite'}"
    upgrade_ledger(url)
    engine = ledger_engine(url)
    figures: dict[str, float | int] = {"orders": args.orders, "fills": args.fills}
    with serve_in_thread(create_app(exchange)) as root:
        base, operator = f"{root}/trade-api/v2", f"{root}/operator"
        key, other = generate_private_key(), generate_private_key()
        register_key(operator, "bench", key, balance_cents=100_000_000)
        register_key(operator, "bench-cp", other, balance_cents=100_000_000)
        markets = [f"KXBENCH-B{i:02d}-M" for i in range(10)]
        for ticker in markets:
            add_market(operator, ticker, ticker.rsplit("-", 1)[0], series_ticker="KXBENCH")
        ours = safety_client(base, KalshiAuth("bench", key), engine, max_retries=0)
        theirs = KalshiClient(base, KalshiAuth("bench-cp", other), max_retries=0)
        for i in range(args.orders):
            ours.create_order(order_request(markets[i % 10], "bid", 1, 1 + i % 40,
                                            client_order_id=f"rest-{i}"))
        now = datetime.now(UTC)
        started = time.perf_counter()
        quiet = run_guard(ours, engine, now=now, limits=BreakerLimits(), **QUIET)
        figures["guard_no_trip_ms"] = round((time.perf_counter() - started) * 1000, 1)
        assert quiet.trips == (), quiet.breakers
        record_heartbeat(engine, "bench-flow", as_of=now - timedelta(hours=1))  # a dead flow
        started = time.perf_counter()
        tripped = run_guard(ours, engine, now=now, limits=BreakerLimits(),
                            heartbeats={"bench-flow": 600.0}, feeds={})
        figures["guard_trip_cancel_ms"] = round((time.perf_counter() - started) * 1000, 1)
        assert tripped.cancel is not None, tripped
        assert tripped.cancel.complete, tripped
        figures["cancelled"] = len(tripped.cancel.canceled)
        for i in range(args.fills):
            ticker = markets[i % 10]
            theirs.create_order(order_request(ticker, "ask", 1, 50, client_order_id=f"cp-{i}"))
            ours.create_order(order_request(ticker, "bid", 1, 50, client_order_id=f"take-{i}",
                                            time_in_force="immediate_or_cancel"))
        started = time.perf_counter()
        first = reconcile_once(ours, engine, now=datetime.now(UTC))
        figures["reconcile_first_ms"] = round((time.perf_counter() - started) * 1000, 1)
        figures["differences"] = len(first.differences)
        figures["applied"] = len(first.applied)
        started = time.perf_counter()
        reconcile_once(ours, engine, now=datetime.now(UTC))
        figures["reconcile_second_ms"] = round((time.perf_counter() - started) * 1000, 1)
        ours.close()
        theirs.close()
    exchange.close()
    for name, value in figures.items():
        print(f"{name:>24}: {value}")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
