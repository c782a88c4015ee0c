"""Benchmark of order groups against a paper exchange on 127.0.0.1 (uvicorn in a thread).

Usage: ``python bench/order_groups.py [--orders 200] [--rounds 50]``

Measures:
1. ``group_check_ms``: the per-cycle cost the gateway adds (``strategy_group`` on a remembered
   group: one GET at the exchange plus one ledger read), median of ``--rounds``;
2. ``cancel_strategy_ms`` / ``trigger_calls``: cancelling ``--orders`` resting orders of one
   strategy through its group (one trigger call, then listing to verify and booking);
3. ``batch_cancel_ms`` / ``batch_calls``: the same number of orders cancelled the old way
   (``cancel_all`` of orders outside any group: batches of 20, then listing to verify).
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kalshi.client import order_request  # noqa: E402
from kalshi.paper.app import create_app  # noqa: E402
from kalshi.paper.exchange import PaperExchange  # noqa: E402
from kalshi.paper.server import serve_in_thread  # noqa: E402
from kalshi.signing import KalshiAuth, generate_private_key  # noqa: E402
from tasks.db import ledger_engine, upgrade_ledger  # noqa: E402
from tasks.order_groups import strategy_group  # noqa: E402
from tasks.safety import cancel_all, cancel_strategy, safety_client  # noqa: E402
from tests.integration.conftest import add_market, register_key  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-groups-"))
    exchange = PaperExchange(tmp / "exchange.sqlite", synchronous="NORMAL")
    url = f"sqlite:///{tmp / 'ledger.sqlite'}"
    upgrade_ledger(url)
    engine = ledger_engine(url)
    figures: dict[str, float | int] = {"orders": args.orders}
    with serve_in_thread(create_app(exchange)) as root:
        base, operator = f"{root}/trade-api/v2", f"{root}/operator"
        key = generate_private_key()
        register_key(operator, "bench", key, balance_cents=100_000_000)
        markets = [f"KXBENCH-G{i:02d}-M" for i in range(10)]
        for ticker in markets:
            add_market(operator, ticker, ticker.rsplit("-", 1)[0], series_ticker="KXBENCH")
        client = safety_client(base, KalshiAuth("bench", key), engine, max_retries=0)
        now = datetime.now(UTC)
        group = strategy_group(client, engine, "bench", contracts_limit=500, as_of=now)
        samples = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            strategy_group(client, engine, "bench", contracts_limit=500, as_of=now)
            samples.append((time.perf_counter() - started) * 1000)
        figures["group_check_ms"] = round(statistics.median(samples), 2)

        def rest(group_id: str | None, tag: str) -> None:
            for i in range(args.orders):
                client.create_order(order_request(markets[i % 10], "bid", 1, 1 + i % 40,
                                                  client_order_id=f"{tag}-{i}",
                                                  order_group_id=group_id))

        rest(group, "grouped")
        started = time.perf_counter()
        report = cancel_strategy(client, engine, "bench", "bench", as_of=now)
        figures["cancel_strategy_ms"] = round((time.perf_counter() - started) * 1000, 1)
        assert report.complete, report
        assert len(report.canceled) == args.orders, report
        figures["trigger_calls"] = 1

        rest(None, "loose")
        client.reset_order_group(group)  # so that cancel_all has no group to trigger
        with engine.begin() as connection:  # forget the group: measure the batch path alone
            connection.exec_driver_sql("DELETE FROM order_groups")
        started = time.perf_counter()
        swept = cancel_all(client, engine, as_of=now, reason="bench")
        figures["batch_cancel_ms"] = round((time.perf_counter() - started) * 1000, 1)
        assert swept.complete, swept
        assert len(swept.canceled) == args.orders, swept
        figures["batch_calls"] = -(-args.orders // 20)
        client.close()
    exchange.close()
    engine.dispose()
    print(f"group check per cycle: {figures['group_check_ms']} ms (median)")
    print(f"cancel {args.orders} orders: one trigger {figures['cancel_strategy_ms']} ms, "
          f"{figures['batch_calls']} batches {figures['batch_cancel_ms']} ms")
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
