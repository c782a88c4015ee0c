"""Ledger write figures: risk-checked intent reservations and fill bookings per second.

One trading cycle of 84 markets (7 cities x 2 days x 6 brackets) reserves at most 84 intents, so
``reserve_ms`` x 84 is the ledger's share of a cycle. Real SQLite file (WAL) in a temp directory.
Last line: one JSON object.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from models.orderkey import client_order_id
from models.risk import OrderRequest, RiskLimits
from tasks.db import ledger_engine, upgrade_ledger
from tasks.ledger_store import (
    FillReport,
    IntentRequest,
    ReservedIntent,
    record_fill,
    reserve_and_record_intent,
    transition_order,
)

CITIES, DAYS, BRACKETS = 7, 2, 6
AS_OF = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.sqlite'}"
        started = time.perf_counter()
        upgrade_ledger(url)
        migrate_s = time.perf_counter() - started
        engine = ledger_engine(url)
        reserve_times, fill_times, keys = [], [], []
        for city in range(CITIES):
            for day in range(DAYS):
                event = f"KXHIGHC{city}-26NOV{22 + day}"
                for bracket in range(BRACKETS):
                    ticker = f"{event}-B{bracket}"
                    request = IntentRequest(
                        client_order_id(f"bench-{city}", ticker, "yes", "day:2026-11-22"),
                        "bench", OrderRequest(ticker, event, "weather", "yes", 20, 5, 10_000),
                        "good_till_canceled", None)
                    t0 = time.perf_counter()
                    result = reserve_and_record_intent(engine, request, equity_cents=10_000_000,
                                                       as_of=AS_OF, limits=RiskLimits())
                    reserve_times.append(time.perf_counter() - t0)
                    assert isinstance(result, ReservedIntent), result
                    keys.append((request.client_order_id, ticker))
        for n, (key, ticker) in enumerate(keys):
            transition_order(engine, key, "resting", as_of=AS_OF, exchange_order_id=f"x-{n}")
            t0 = time.perf_counter()
            record_fill(engine, FillReport(f"f-{n}", ticker, "yes", 20, 5, 1, False, n,
                                           client_order_id=key))
            fill_times.append(time.perf_counter() - t0)
        engine.dispose()
    markets = CITIES * DAYS * BRACKETS
    figures = {
        "markets": markets,
        "migrate_s": round(migrate_s, 3),
        "reserve_ms_median": round(statistics.median(reserve_times) * 1000, 2),
        "reserve_ms_p95": round(sorted(reserve_times)[int(0.95 * markets)] * 1000, 2),
        "reserve_cycle_s": round(sum(reserve_times), 3),
        "fill_ms_median": round(statistics.median(fill_times) * 1000, 2),
    }
    print(f"{markets} intents reserved in {figures['reserve_cycle_s']} s "
          f"(median {figures['reserve_ms_median']} ms), fills booked at median "
          f"{figures['fill_ms_median']} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
