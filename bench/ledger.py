"""Ledger write figures of one trading cycle: risk-checked intent reservations, status changes and
fill bookings, one transaction per item (the single forms) versus one per batch (the batched
forms the gateway uses).

One cycle of 84 markets (7 cities x 2 days x 6 brackets) reserves at most 84 intents, marks them
sent, records their acknowledgements and books their fills; ``*_cycle_s`` is the ledger's share
of a cycle for each step. Each mode runs on its own fresh SQLite file (WAL) in a temp directory;
the batched mode must leave the same rows as the single one (checked). Last line: one JSON
object.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine  # noqa: E402
from sqlmodel import select  # noqa: E402

from models.ledger import Fill, OrderEvent, OrderRecord, Position  # noqa: E402
from models.orderkey import client_order_id  # noqa: E402
from models.risk import OrderRequest, RiskLimits  # noqa: E402
from tasks.db import ledger_engine, read_session, upgrade_ledger  # noqa: E402
from tasks.ledger_store import (  # noqa: E402
    FillReport,
    IntentRequest,
    ReservedIntent,
    Transition,
    record_fill,
    record_fills,
    reserve_and_record_intent,
    reserve_intents,
    transition_order,
    transition_orders,
)

CITIES, DAYS, BRACKETS = 7, 2, 6
AS_OF = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
EQUITY = 10_000_000


def _requests() -> list[IntentRequest]:
    requests = []
    for city in range(CITIES):
        for day in range(DAYS):
            event = f"KXHIGHC{city}-26NOV{22 + day}"
            for bracket in range(BRACKETS):
                ticker = f"{event}-B{bracket}"
                requests.append(IntentRequest(
                    client_order_id(f"bench-{city}", ticker, "yes", "day:2026-11-22"),
                    "bench", OrderRequest(ticker, event, "weather", "yes", 20, 5, 10_000),
                    "good_till_canceled", None))
    return requests


def _fills(requests: list[IntentRequest]) -> list[FillReport]:
    return [FillReport(f"f-{n}", r.order.market_ticker, "yes", 20, 5, 1, False, n,
                       client_order_id=r.client_order_id) for n, r in enumerate(requests)]


def _single(engine: Engine, requests: list[IntentRequest]) -> dict[str, float]:
    times: dict[str, list[float]] = {"reserve": [], "sent": [], "ack": [], "fill": []}
    for request in requests:
        t0 = time.perf_counter()
        result = reserve_and_record_intent(engine, request, equity_cents=EQUITY, as_of=AS_OF,
                                           limits=RiskLimits())
        times["reserve"].append(time.perf_counter() - t0)
        assert isinstance(result, ReservedIntent), result
    for request in requests:
        t0 = time.perf_counter()
        transition_order(engine, request.client_order_id, "sent", as_of=AS_OF)
        times["sent"].append(time.perf_counter() - t0)
    for n, request in enumerate(requests):
        t0 = time.perf_counter()
        transition_order(engine, request.client_order_id, "resting", as_of=AS_OF,
                         exchange_order_id=f"x-{n}", exchange_filled_count=0)
        times["ack"].append(time.perf_counter() - t0)
    for fill in _fills(requests):
        t0 = time.perf_counter()
        record_fill(engine, fill)
        times["fill"].append(time.perf_counter() - t0)
    return {f"single_{k}_ms_median": statistics.median(v) * 1000 for k, v in times.items()} | {
        f"single_{k}_cycle_s": sum(v) for k, v in times.items()}


def _batched(engine: Engine, requests: list[IntentRequest]) -> dict[str, float]:
    keys = [r.client_order_id for r in requests]
    steps: list[tuple[str, Any]] = [
        ("reserve", lambda: reserve_intents(engine, requests, equity_cents=EQUITY, as_of=AS_OF,
                                            limits=RiskLimits())),
        ("sent", lambda: transition_orders(engine, [Transition(k, "sent") for k in keys],
                                           as_of=AS_OF)),
        ("ack", lambda: transition_orders(engine, [Transition(k, "resting", f"x-{n}", 0)
                                                   for n, k in enumerate(keys)], as_of=AS_OF)),
        ("fill", lambda: record_fills(engine, _fills(requests))),
    ]
    figures = {}
    for name, step in steps:
        t0 = time.perf_counter()
        results = step()
        figures[f"batched_{name}_cycle_s"] = time.perf_counter() - t0
        assert all(not isinstance(r, Exception) and getattr(r, "limit", None) is None
                   for r in results), results
    return figures


def _rows(engine: Engine) -> list[Any]:
    with read_session(engine) as session:
        return [[row.model_dump() for row in session.exec(select(model))]
                for model in (OrderRecord, OrderEvent, Fill, Position)]


def main() -> None:
    requests = _requests()
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.sqlite"
        started = time.perf_counter()
        upgrade_ledger(f"sqlite:///{template}")
        migrate_s = time.perf_counter() - started
        engines = {}
        for mode in ("single", "batched"):
            shutil.copyfile(template, Path(tmp) / f"{mode}.sqlite")
            engines[mode] = ledger_engine(f"sqlite:///{Path(tmp) / f'{mode}.sqlite'}")
        single = _single(engines["single"], requests)
        batched = _batched(engines["batched"], requests)
        same = _rows(engines["single"]) == _rows(engines["batched"])
        for engine in engines.values():
            engine.dispose()
    assert same, "the batched forms left other rows than the single ones"
    figures: dict[str, Any] = {"markets": len(requests), "migrate_s": round(migrate_s, 3)}
    figures |= {k: round(v, 4 if k.endswith("_s") else 2) for k, v in (single | batched).items()}
    total_single = sum(v for k, v in single.items() if k.endswith("_cycle_s"))
    total_batched = sum(batched.values())
    figures |= {"single_cycle_s": round(total_single, 4),
                "batched_cycle_s": round(total_batched, 4),
                "speedup": round(total_single / total_batched, 1), "same_rows": same}
    print(f"{len(requests)} orders through reserve/sent/ack/fill: one transaction each "
          f"{total_single:.3f} s, batched {total_batched:.3f} s "
          f"({figures['speedup']}x); same rows: {same}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
