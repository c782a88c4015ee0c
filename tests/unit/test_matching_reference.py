"""Differential test: the engine's trades equal those of a naive reference matcher.

The reference keeps one flat list of resting orders and sorts it on every match, so it shares no
data structure with the engine. It covers price-time priority, execution at the maker's price,
partial fills, GTC/IOC, cancels and self-trade prevention "maker" (balances are large, no fees).
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from models.matching import Engine, MarketSpec, OrderRequest

ACCOUNTS = ("a", "b", "c", "d")


def _reference(stream: list[tuple]) -> list[tuple[int, int, int, int]]:
    """Return (taker index, maker index, count, yes price) for every match, in order."""
    resting: list[dict] = []  # {"i", "acct", "leg", "price" (own leg), "left"}
    trades: list[tuple[int, int, int, int]] = []
    for i, op in enumerate(stream):
        if op[0] == "cancel":
            target = op[1] % (i or 1)
            resting = [r for r in resting if r["i"] != target]
            continue
        _, acct, side, yes_price, count, tif = op
        leg = 0 if side == "bid" else 1
        price = yes_price if leg == 0 else 100 - yes_price
        left = count
        while left:
            crossing = sorted((r for r in resting if r["leg"] != leg
                               and r["price"] + price >= 100), key=lambda r: (-r["price"], r["i"]))
            if not crossing:
                break
            maker = crossing[0]
            if maker["acct"] == acct:  # stp="maker": cancel the resting own order
                resting.remove(maker)
                continue
            n = min(left, maker["left"])
            trades.append((i, maker["i"], n, maker["price"] if maker["leg"] == 0
                           else 100 - maker["price"]))
            left -= n
            maker["left"] -= n
            if not maker["left"]:
                resting.remove(maker)
        if left and tif == "good_till_canceled":
            resting.append({"i": i, "acct": acct, "leg": leg, "price": price, "left": left})
    return trades


def _engine_trades(stream: list[tuple]) -> list[tuple[int, int, int, int]]:
    e = Engine()
    for acct in ACCOUNTS:
        e.add_account(acct, 10 ** 9)
    e.add_market(MarketSpec("M", "E", "S", 0, 10 ** 9), 0)
    index: dict[str, int] = {}
    ids: dict[int, tuple[str, str]] = {}
    trades: list[tuple[int, int, int, int]] = []
    for i, op in enumerate(stream):
        if op[0] == "cancel":
            target = op[1] % (i or 1)
            if target in ids and e.order(ids[target][1]).status == "resting":
                e.cancel(ids[target][0], ids[target][1], i + 1)
            continue
        _, acct, side, yes_price, count, tif = op
        order, out = e.submit(OrderRequest(acct, "M", side, yes_price, count, tif, stp="maker"),
                              i + 1)
        index[order.order_id] = i
        ids[i] = (acct, order.order_id)
        fills = {f.trade_id: f for f in out.fills if not f.is_taker}
        trades += [(i, index[fills[t.trade_id].order_id], t.count, t.yes_price_cents)
                   for t in out.trades]
    return trades


def _stream(seed: int, length: int) -> list[tuple]:
    rng = random.Random(seed)
    ops: list[tuple] = []
    for _ in range(length):
        if rng.random() < 0.15:
            ops.append(("cancel", rng.randrange(1000)))
        else:
            ops.append(("order", rng.choice(ACCOUNTS), rng.choice(("bid", "ask")),
                        rng.randint(40, 60), rng.randint(1, 12),
                        rng.choice(("good_till_canceled",) * 3 + ("immediate_or_cancel",))))
    return ops


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), length=st.integers(1, 200))
def test_engine_trades_equal_naive_reference_matcher(seed, length):
    stream = _stream(seed, length)
    expected = _reference(stream)
    assert _engine_trades(stream) == expected


def test_reference_matcher_sanity_price_then_time():
    stream = [("order", "a", "ask", 45, 2, "good_till_canceled"),
              ("order", "b", "ask", 44, 2, "good_till_canceled"),
              ("order", "c", "ask", 44, 2, "good_till_canceled"),
              ("order", "d", "bid", 50, 5, "immediate_or_cancel")]
    expected = [(3, 1, 2, 44), (3, 2, 2, 44), (3, 0, 1, 45)]
    assert _reference(stream) == expected
    assert _engine_trades(stream) == expected
