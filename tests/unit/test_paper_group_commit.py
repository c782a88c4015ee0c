"""Group commit of the paper exchange: one hand-off and one transaction per event-loop pass.

Orders handled in the same pass of the event loop join one commit (one fsync), each is answered
only after that commit, in log order, and a closed store fails every waiter of the unit instead
of acknowledging it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kalshi.paper.exchange import PaperExchange
from kalshi.paper.store import CommandStore, StoreError
from kalshi.signing import generate_private_key, public_key_pem
from models.matching import MarketSpec, Outcome

T0 = 1_800_000_000_000
_PEM = public_key_pem(generate_private_key()).decode()


def _order(account: str, side: str, price: int, cid: str) -> dict[str, Any]:
    return {"request": {"account_id": account, "ticker": "KXG-1-M", "side": side,
                        "price_cents": price, "count": 1, "time_in_force": "good_till_canceled",
                        "client_order_id": cid}}


async def _ready(exchange: PaperExchange) -> None:
    await exchange.start()
    for account in ("a", "b"):
        await exchange.add_key(account, _PEM, balance_cents=100_000)
    await exchange.add_market(MarketSpec("KXG-1-M", "KXG-1", "KXG", T0 - 1000, T0 + 60_000))


def test_command_store_append_many_consecutive_seqs_one_transaction_last_seq(
        tmp_path: Path) -> None:
    store = CommandStore(tmp_path / "s.sqlite")
    try:
        first, future = store.append_many([(T0 + i, "k", {"i": i}) for i in range(5)])
        last = future.result(timeout=10)
        batches = store.batches_committed
        commands = list(store.commands())
    finally:
        store.close()
    assert (first, last) == (1, 5)
    assert batches == 1
    assert [(c.seq, c.now_ms, c.args["i"]) for c in commands] == [
        (i + 1, T0 + i, i) for i in range(5)]


def test_command_store_append_many_future_cannot_be_cancelled_before_commit(
        tmp_path: Path) -> None:
    store = CommandStore(tmp_path / "s.sqlite")
    try:
        _first, future = store.append_many([(T0, "k", {"i": 0})])
        cancelled = future.cancel()
        seq = future.result(timeout=10)
    finally:
        store.close()
    assert cancelled is False
    assert seq == 1


def test_paper_exchange_orders_in_one_loop_pass_share_one_commit_answered_in_log_order(
        tmp_path: Path) -> None:
    exchange = PaperExchange(tmp_path / "x.sqlite", clock=lambda: T0, advance_interval_s=0)
    seen: list[set[str]] = []

    async def scenario() -> tuple[int, list[str]]:
        await _ready(exchange)
        exchange.add_listener(lambda o: seen.append({order.order_id for order in o.orders}))
        before = exchange.store.batches_committed
        orders = await asyncio.gather(*(
            exchange.run("submit", _order("a" if i % 2 else "b", "bid" if i % 2 else "ask",
                                          50, f"c{i}"))
            for i in range(8)))
        await exchange.stop()
        return exchange.store.batches_committed - before, [o.order_id for o in orders]

    try:
        batches, order_ids = asyncio.run(scenario())
        committed = [c.kind for c in exchange.store.commands()]
    finally:
        exchange.close()
    assert batches == 1
    assert committed.count("submit") == 8
    # listeners hear each submit's outcome after the commit, in log (= submission) order
    assert len(seen) == len(order_ids)
    assert all(order_id in outcome for order_id, outcome in zip(order_ids, seen, strict=True))


def test_paper_exchange_store_closed_before_flush_every_waiter_fails_none_acknowledged(
        tmp_path: Path) -> None:
    exchange = PaperExchange(tmp_path / "x.sqlite", clock=lambda: T0, advance_interval_s=0)
    outcomes: list[Outcome] = []

    async def scenario() -> list[BaseException | object]:
        await _ready(exchange)
        exchange.add_listener(outcomes.append)
        exchange.store.close()  # the database goes away under the venue
        return await asyncio.gather(
            *(exchange.run("submit", _order("a", "bid", 40 + i, f"x{i}")) for i in range(3)),
            return_exceptions=True)

    try:
        results = asyncio.run(scenario())
    finally:
        exchange.close()
    assert all(isinstance(r, StoreError) for r in results)
    assert outcomes == []  # nothing was acknowledged, so no listener heard of it
    with pytest.raises(StoreError, match="failed commit"):
        asyncio.run(exchange.run("submit", _order("a", "bid", 45, "later")))
