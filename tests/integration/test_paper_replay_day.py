"""Dress rehearsal (issue 9 item 6): the real ``trade-weather`` flow over a recorded Kalshi day.

KXHIGHNY-25MAY08 (New York's high on May 8, 2025; the CLI reported 78 F), 8 to 11 am New York
time: the paper exchange's ``replay`` liquidity feeds the recorded trades (an MIT fixture slice:
449 in the window, 508 to 15 minutes after it, when the last orders expire) as IOC counter-orders
at their recorded instants, and its market maker quotes two cents either side of each market's
last print (the taker's spread cost). The deployment's schedule (every 10 minutes) gives the runs;
the exchange clock, the replay clock, the NWS stand-in and the flow's ``as_of`` are one instant.
The stand-in serves the real NDFD forecast issued the evening before (74.93 F). After the window
the event settles with its recorded results through ``eventdesk exchange settle`` and the
``reconcile`` flow runs.

Asserted: one completed run (and one decision artifact) per scheduled time; the book each run saw
is the one the tape implies at its ``as_of`` (no book before a market's first print); every order
was placed at its run's ``as_of``; every fill is explained by the tape (the replay's fill rule);
the ledger equals the exchange order by order and fill by fill and reconcile is clean; the P&L is
the settlement plus the trades' cash flows to the cent.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections import Counter
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlmodel import select

from models.ledger import Decision, Heartbeat, OrderRecord, ms_from_datetime
from models.ledger import Fill as LedgerFill
from models.money import price_cents_from_dollars
from models.tax import cash_flow_cents
from tasks.db import ledger_engine, read_session
from tasks.settings import load_settings
from tasks.tax_export import read_ledger_history
from tests.integration._replay_day import (
    EVENT_TICKER,
    KEY_ID,
    NDFD_FORECASTS,
    TRADES_FIXTURE,
    WINDOW_END,
    WINDOW_START,
    DayRun,
    ReplayDay,
    check_fills,
    expected_top,
    replay_day,
    run_day,
    schedule_times,
)

RunDay = tuple[ReplayDay, DayRun, str, list[datetime]]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path, prefect_harness):
    tmp = tmp_path_factory.mktemp("replayday")
    ledger_url = f"sqlite:///{tmp / 'ledger.sqlite'}"
    times = schedule_times(WINDOW_START, WINDOW_END)
    with replay_day(tmp, fixtures_dir) as day, pytest.MonkeyPatch.context() as mp:
        for name, value in day.venue.env(ledger_url).items():
            mp.setenv(name, value)
        mp.setenv("EVENTDESK_NWS_MAX_AGE_HOURS", "18")  # the archived forecast is 11-14 h old
        load_settings(fresh=True)
        run = run_day(day, times)
        yield day, run, ledger_url, times
    load_settings(fresh=True)


def _figures(day: ReplayDay, run: DayRun) -> dict[str, Any]:
    orders = day.venue.exchange.engine.orders(KEY_ID)
    fills = day.venue.exchange.engine.fills(KEY_ID)
    return {"cycles": len(run.cycles), "orders": len(orders), "fills": len(fills),
            "contracts": sum(f.count for f in fills),
            "fees_cents": sum(f.fee_cents for f in fills),
            "pnl_cents": run.balance_end_cents - run.balance_start_cents,
            "trades_replayed": run.replay_stats["trades_replayed"],
            "outcomes": dict(Counter(f"{o[1]}:{o[3]}" for c in run.cycles
                                     for o in c.summary.get("outcomes", []))),
            "actions": dict(Counter(r["action"] for c in run.cycles
                                    for r in c.summary["decisions"])),
            "order_tif": dict(Counter(o.time_in_force for o in orders)),
            "maker_fills": sum(not f.is_taker for f in fills),
            "books_seen": sum(r["yes_bid_cents"] is not None or r["yes_ask_cents"] is not None
                              for c in run.cycles for r in c.summary["decisions"]),
            "reconcile": [run.reconcile["verdict"], *run.reconcile["applied"]],
            "run_s": round(run.seconds, 1)}


def test_paper_replay_day_every_scheduled_run_completes_with_its_artifact(
        rehearsal: RunDay) -> None:
    day, run, ledger_url, times = rehearsal
    print(json.dumps(_figures(day, run)))

    ids = [c.flow_run_id for c in run.cycles]

    async def artifacts() -> list[Any]:
        from uuid import UUID

        from prefect import get_client
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterKey,
            FlowRunFilter,
            FlowRunFilterId,
            TaskRunFilter,
        )
        from prefect.client.schemas.sorting import ArtifactSort

        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
                    any_=["trade-weather-decisions"])),
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(i) for i in ids])),
                task_run_filter=TaskRunFilter(), sort=ArtifactSort.CREATED_DESC, limit=200)

    found = asyncio.run(artifacts())

    assert len(times) == 18  # 8:00, 8:10, ... 10:50 New York time
    assert [c.as_of for c in run.cycles] == times
    assert all(c.state == "COMPLETED" for c in run.cycles), [c.summary for c in run.cycles]
    assert all("refused" not in c.summary for c in run.cycles)
    per_run = Counter(str(a.flow_run_id) for a in found)
    assert per_run == Counter(ids)  # exactly one decision table per run
    with read_session(ledger_engine(ledger_url)) as session:
        beat = session.get(Heartbeat, "trade-weather")
        decided = sorted({d.decided_ts_ms for d in session.exec(select(Decision))})
    assert beat is not None
    assert beat.ts_ms == ms_from_datetime(times[-1])
    assert decided == [ms_from_datetime(t) for t in times]  # empty books decided "none" too


def test_paper_replay_day_book_seen_is_the_tape_at_as_of(rehearsal: RunDay) -> None:
    day, run, _ledger_url, _times = rehearsal

    seen = {(c.as_of, row["market_ticker"]): (row["yes_bid_cents"], row["yes_ask_cents"])
            for c in run.cycles for row in c.summary["decisions"]}
    implied = {(c.as_of, t): expected_top(day.tape, t, ms_from_datetime(c.as_of))
               for c in run.cycles for t in day.results}

    # a book the tape has not printed yet would show here if the clocks diverged
    assert seen == implied
    assert any(v == (None, None) for v in seen.values())  # markets quiet at the start
    assert sum(v != (None, None) for v in seen.values()) >= 60


def test_paper_replay_day_orders_placed_at_their_decision_time_from_an_earlier_forecast(
        rehearsal: RunDay) -> None:
    day, _run, ledger_url, times = rehearsal
    orders = day.venue.exchange.engine.orders(KEY_ID)

    with read_session(ledger_engine(ledger_url)) as session:
        decisions = {d.id: d for d in session.exec(select(Decision))}
        decided_of = {o.exchange_order_id: decisions[o.decision_id].decided_ts_ms
                      for o in session.exec(select(OrderRecord))
                      if o.exchange_order_id is not None and o.decision_id is not None}

    assert orders, "the flow placed no order over the window"
    # the exchange stamped each order at the instant its decision was made: one clock
    assert {o.order_id: o.created_ts_ms for o in orders} == {
        o.order_id: decided_of.get(o.order_id) for o in orders}
    assert {o.created_ts_ms for o in orders} <= {ms_from_datetime(t) for t in times}
    assert all(o.expiration_ts_ms is None or o.expiration_ts_ms == o.created_ts_ms + 900_000
               for o in orders)
    issued = [json.loads(d.model_inputs_json).get("forecast_issued_ts_ms")
              for d in decisions.values()]
    assert all(i is not None and i < d.decided_ts_ms
               for i, d in zip(issued, decisions.values(), strict=True))
    assert day.nws.served
    assert all(update < at for at, update in day.nws.served)


def test_paper_replay_day_every_fill_explained_by_a_recorded_trade(rehearsal: RunDay) -> None:
    day, run, _ledger_url, _times = rehearsal

    check = check_fills(day.venue.exchange, day.tape)
    late = check_fills(day.venue.exchange, [replace(t, ts_ms=t.ts_ms + 600_000)
                                            for t in day.tape])

    print(json.dumps(asdict(check))[:2000])
    assert check.problems == ()
    assert check.maker_fills + check.taker_fills > 0
    assert check.against_tape > 0, "no resting order of ours met a recorded trade"
    assert late.problems  # the same fills do not follow from a tape ten minutes late
    assert run.replay_stats["trades_replayed"] == len(
        [t for t in day.tape if t.ts_ms >= ms_from_datetime(WINDOW_START)])
    assert run.replay_stats["errors"] == []
    assert run.replay_stats["settled"] == []  # the replay left settling to the operator


def test_paper_replay_day_ledger_equals_exchange_and_pnl_to_the_cent(rehearsal: RunDay) -> None:
    day, run, ledger_url, _times = rehearsal
    with day.venue.client() as client:
        ex_orders = list(client.iter_orders())
        ex_fills = list(client.iter_fills())
        settlements = list(client.iter_settlements())
        positions = [p for p in client.iter_positions() if p.position != 0]
    with read_session(ledger_engine(ledger_url)) as session:
        led_orders = list(session.exec(select(OrderRecord)))
        led_fills = list(session.exec(select(LedgerFill)))

    def cents(value: Any) -> int:
        return price_cents_from_dollars(value)

    def side_price(book_side: str, yes: Any, no: Any) -> tuple[str, int]:
        return ("yes", cents(yes)) if book_side == "bid" else ("no", cents(no))

    exchange_orders = {o.order_id: (o.client_order_id, o.ticker,
                                    *side_price(o.book_side, o.yes_price, o.no_price),
                                    int(o.fill_count), o.status) for o in ex_orders}
    ledger_orders = {o.exchange_order_id: (o.client_order_id, o.market_ticker, o.side,
                                           o.price_cents, o.filled_count, o.status)
                     for o in led_orders if o.exchange_order_id is not None}
    exchange_fills = {f.fill_id: (f.ticker, *side_price(f.book_side, f.yes_price, f.no_price),
                                  int(f.count), cents(f.fee_cost or 0), f.is_taker)
                      for f in ex_fills}
    ledger_fills = {f.exchange_fill_id: (f.market_ticker, f.side, f.price_cents, f.count,
                                         f.fee_cents, f.is_taker) for f in led_fills}

    assert run.reconcile["verdict"] == "clean", run.reconcile
    assert ledger_orders == exchange_orders
    unsent = Counter(o.status for o in led_orders if o.exchange_order_id is None)
    assert set(unsent) <= {"rejected"}, unsent  # refused by the risk gate, never sent
    assert ledger_fills == exchange_fills
    assert not positions
    assert {s.ticker: s.market_result for s in settlements}.items() <= run.settled.items()
    # P&L: each contract bought pays 100 if its side won; minus its price and the fees
    pnl = sum((100 if side == run.settled[ticker] else 0) * count - price * count - fee
              for ticker, side, price, count, fee, _taker in exchange_fills.values())
    assert run.balance_end_cents - run.balance_start_cents == pnl
    # the same from the exchange's own records: settlement revenue plus the trades' cash flows
    # (price and fee paid; 100 for each YES+NO pair the exchange nets before settlement)
    trade_cash = -sum(price * count + fee
                      for _t, _s, price, count, fee, _k in exchange_fills.values())
    revenue = sum(s.revenue_cents for s in settlements)
    assert revenue + trade_cash + 100 * _pairs_netted(ex_fills) == pnl
    history = read_ledger_history(ledger_url)  # and from the ledger
    assert cash_flow_cents(history.fills, history.settlements) == pnl


def _pairs_netted(fills: list[Any]) -> int:
    # YES+NO pairs the exchange paid out at 100 before settlement (bought both sides)
    held: dict[str, int] = {}
    pairs = 0
    for f in sorted(fills, key=lambda f: (f.created_time, f.fill_id)):
        before = held.get(f.ticker, 0)
        after = before + (int(f.count) if f.book_side == "bid" else -int(f.count))
        pairs += max(-before, 0) - max(-after, 0) if f.book_side == "bid" else \
            max(before, 0) - max(after, 0)
        held[f.ticker] = after
    return pairs


def test_paper_replay_day_fixture_slice_is_the_shared_recording(
        fixtures_dir: Path, shared_data: Path) -> None:
    recorded = pd.read_parquet(
        shared_data / "kalshi" / "weather-events-2024-25" / "KXHIGHNY_trades.parquet",
        filters=[("ticker", ">=", EVENT_TICKER), ("ticker", "<", EVENT_TICKER[:-1] + "9")])
    with (fixtures_dir / TRADES_FIXTURE).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    first, last = (datetime.fromisoformat(rows[i]["created_time"]) for i in (0, -1))
    window = recorded[(recorded.created_time >= first) & (recorded.created_time <= last)]
    forecasts = pd.read_csv(shared_data / "forecasts" / "ndfd-knyc" /
                            "daily_forecast_error_targets.csv")
    row = forecasts[forecasts["date"] == "2025-05-08"].iloc[0]

    assert [r["trade_id"] for r in rows] == list(window.trade_id)
    assert [(r["ticker"], int(r["count"]), int(r["yes_price"]), r["taker_side"]) for r in rows] \
        == list(zip(window.ticker, window["count"], window.yes_price, window.taker_side,
                    strict=True))
    assert first >= WINDOW_START
    assert len(rows) >= 400
    (forecast,) = NDFD_FORECASTS
    assert row["nws_forecast_high_f"] == pytest.approx(forecast.high_f, abs=1e-9)
    assert datetime.fromisoformat(row["forecast_issue_time"]).astimezone(UTC) == forecast.issued
