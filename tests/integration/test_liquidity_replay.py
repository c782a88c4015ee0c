"""Replay liquidity against a real PaperExchange.

Recorded trades become IOC counter-orders in recorded time order on a simulated clock; defects of
the trade stream are reported; the markets settle as recorded.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from dataclasses import asdict
from datetime import date, datetime, timedelta

import pandas as pd

from kalshi.paper.liquidity import REPLAY_ACCOUNT, start_liquidity
from models.matching import OrderRequest
from models.synthetic import draw_event, event_payload, series_info, settle_event

from ._liquidity_helpers import StepClock, open_exchange, wait_until

S0 = 1_795_000_000_000  # exchange time at the start of each replay
USER = "user-1"


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _write_event(data_dir, event, as_of):
    payload = event_payload(event, as_of)
    for market, result in zip(payload["markets"], settle_event(event).values(), strict=True):
        market["result"] = result  # recorded events carry their result
    with gzip.open(data_dir / "KXHIGHNY_events.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"event": {"event_ticker": "other"}, "markets": []}) + "\n")
        handle.write(json.dumps(payload) + "\n")


def _write_trades(data_dir, rows):
    frame = pd.DataFrame(rows, columns=["trade_id", "ticker", "count", "created_time",
                                        "yes_price", "no_price", "taker_side"])
    frame["created_time"] = pd.to_datetime(frame["created_time"], utc=True)
    frame.to_parquet(data_dir / "KXHIGHNY_trades.parquet")


async def _submit(exchange, side, price, count, ticker):
    req = OrderRequest(USER, ticker, side, price, count, "good_till_canceled")
    await exchange.run("submit", {"request": asdict(req)})


def test_replay_liquidity_unsorted_duplicate_gap_reported_and_fed_in_time_order(tmp_path):
    event = draw_event(series_info("KXHIGHNY"), date(2025, 5, 8), random.Random(4))
    start = event.close_time_utc - timedelta(hours=11)
    _write_event(tmp_path, event, start)
    m1, m2 = event.markets[2].ticker, event.markets[3].ticker

    def at(seconds):
        return (start + timedelta(seconds=seconds)).isoformat()

    _write_trades(tmp_path, [  # file order: t1, t3, t2 (unsorted), t1 again, t4 after 10 h
        ("t1", m1, 2, at(60), 35, 65, "yes"),
        ("t3", m1, 1, at(180), 18, 82, "no"),
        ("t2", m1, 3, at(120), 15, 85, "no"),
        ("t1", m1, 2, at(60), 35, 65, "yes"),
        ("t4", m2, 1, at(36_000), 50, 50, "yes"),
    ])
    clock = StepClock(S0)

    async def scenario():
        async with open_exchange(tmp_path / "paper.db", clock) as exchange:
            handle = start_liquidity(exchange, "replay", data_dir=tmp_path,
                                     event_ticker=event.event_ticker, speed=60, quote=False,
                                     recorded_start=start, interval_s=0.01)
            await wait_until(lambda: handle.stats.steps >= 1, what="replay set up")
            await exchange.run("add_account", {"account_id": USER, "balance_cents": 100_000})
            await _submit(exchange, "ask", 30, 5, m1)
            await _submit(exchange, "bid", 20, 5, m1)
            for _ in range(3):  # one exchange second = one recorded minute
                clock.advance(1000)
                await wait_until(lambda s=handle.stats.steps: handle.stats.steps > s + 1,
                                 what="a replay step")
            fills_before_gap = [(t.count, t.yes_price_cents, t.taker_side)
                                for t in exchange.engine.trades(m1)]
            # past t4 first (a single jump over both t4 and the close would race the exchange's
            # own close against the replay step), then past the close and its grace
            clock.advance(10 * 60 * 1000 - 3000 + 5000)
            await wait_until(lambda: handle.stats.trades_replayed >= 4, what="t4 replayed")
            clock.advance(60 * 1000 + 10_000)
            await wait_until(lambda: handle.stats.finished, what="replay finished")
            await handle.aclose()
            return exchange, handle.stats, fills_before_gap

    exchange, stats, fills = asyncio.run(scenario())

    assert [(i.kind, i.trade_id) for i in stats.replay_issues] == [
        ("unsorted", "t2"), ("unsorted", "t1"), ("duplicate", "t1"), ("gap", "t4")]
    # t1 lifts the user's ask, then t2 (3) and t3 (1) hit the bid: recorded, not file, order
    assert fills == [(2, 30, "yes"), (3, 20, "no"), (1, 20, "no")]
    assert stats.trades_replayed == 4
    expected = settle_event(event)
    assert {t: exchange.engine.market(t).result for t in expected} == expected
    assert {s.ticker for s in exchange.engine.settlements(USER)} == {m1}


def test_replay_liquidity_recorded_event_every_trade_in_order_and_recorded_results(
        tmp_path, shared_data):
    data_dir = shared_data / "kalshi" / "weather-events-2024-25"
    event_ticker = "KXHIGHNY-25MAY08"
    with gzip.open(data_dir / "KXHIGHNY_events.jsonl.gz", "rt") as handle:
        record = json.loads(next(line for line in handle if event_ticker in line))
    tickers = [m["ticker"] for m in record["markets"]]
    recorded = pd.read_parquet(data_dir / "KXHIGHNY_trades.parquet",
                               filters=[("ticker", "in", tickers)])
    recorded = recorded.sort_values("created_time", kind="stable")
    clock = StepClock(S0)

    async def scenario():
        async with open_exchange(tmp_path / "paper.db", clock) as exchange:
            handle = start_liquidity(exchange, "replay", data_dir=data_dir,
                                     event_ticker=event_ticker, speed=10_000, interval_s=0.01)
            while not handle.stats.finished:
                clock.advance(1000)  # about 2.8 recorded hours per exchange second
                await wait_until(lambda s=handle.stats.steps: handle.stats.steps > s + 1,
                                 what="a replay step")
            await handle.aclose()
            return exchange, handle.stats

    exchange, stats, = asyncio.run(scenario())

    assert stats.trades_replayed == len(recorded)
    assert stats.errors == []
    assert {i.kind for i in stats.replay_issues} <= {"gap"}  # the file is clean apart from nights
    orders = sorted(exchange.engine.orders(REPLAY_ACCOUNT), key=lambda o: o.order_id)
    assert [(o.ticker, o.side, o.price_cents, o.initial_count) for o in orders] == [
        (r.ticker, "bid" if r.taker_side == "yes" else "ask", r.yes_price, r.count)
        for r in recorded.itertuples()]
    assert all(o.time_in_force == "immediate_or_cancel" for o in orders)
    assert stats.contracts_filled > 0  # replayed takers met the quotes left behind
    assert {t: exchange.engine.market(t).result for t in tickers} == {
        m["ticker"]: m["result"] for m in record["markets"]}
