"""The lean order-entry path answers byte for byte what the Starlette route answers.

Two exchanges with the same clock, keys and markets get the same requests: one through the
served app (whose ``POST /portfolio/events/orders`` takes ``OrderFastPath``), one through the
Starlette app alone. Status, body bytes and content headers must match for accepted orders,
fills and every kind of refusal; and the fast path must really serve the route itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.hotpath import OrderFastPath
from kalshi.signing import KalshiAuth, generate_private_key, public_key_pem
from models.matching import MarketSpec

from ._liquidity_helpers import StepClock

S0 = 1_790_000_000_000
TICKER = "KXFAST-26NOV22-B50"
ORDERS = "/portfolio/events/orders"
KEYS = {name: generate_private_key() for name in ("maker", "taker", "basic", "intruder")}


def _order(side: str, price: str, count: str = "2", **extra: Any) -> dict[str, Any]:
    return {"ticker": TICKER, "side": side, "count": count, "price": price,
            "time_in_force": "good_till_canceled", "self_trade_prevention_type": "maker",
            **extra}


# (key id, signing key, body): the body is JSON unless it is bytes (sent as is)
REQUESTS: list[tuple[str, str, Any]] = [
    ("maker", "maker", _order("bid", "0.4500", client_order_id="m-1")),
    ("taker", "taker", _order("ask", "0.4400", count="3")),  # fills 2 at 45c, rests 1
    ("maker", "maker", _order("bid", "0.4500", client_order_id="m-1")),  # m-1 executed: reusable
    ("maker", "maker", _order("bid", "0.3000", client_order_id="m-2")),
    ("maker", "maker", _order("bid", "0.3100", client_order_id="m-2")),  # 409 duplicate
    ("maker", "maker", _order("bid", "0.505")),  # sub-penny
    ("maker", "maker", _order("bid", "0.4500", colour="red")),  # unknown field
    ("maker", "maker", _order("bid", "0.4500", count="100000")),  # insufficient balance
    ("maker", "maker", {"ticker": TICKER}),  # missing fields
    ("maker", "maker", b"{not json"),
    ("maker", "maker", b""),
    ("maker", "maker", _order("bid", "0.4500", ticker="KXNOPE-26NOV22-B1")),  # no market
    ("maker", "intruder", _order("bid", "0.4500")),  # wrong key signs: 401
    *[("basic", "basic", _order("bid", "0.2000", count="1"))] * 11,  # the 11th is a 429
]


async def _exchange(db: Path, clock: StepClock) -> PaperExchange:
    exchange = PaperExchange(db, clock=clock, monotonic=lambda: 0.0, synchronous="NORMAL",
                             advance_interval_s=0)
    await exchange.start()
    for name in ("maker", "taker", "basic"):
        tier = "basic" if name == "basic" else "prestige"
        await exchange.add_key(name, public_key_pem(KEYS[name]).decode(), balance_cents=100_000,
                               tier=tier)
    await exchange.add_market(MarketSpec(TICKER, "KXFAST-26NOV22", "KXFAST", 0, S0 + 3_600_000))
    return exchange


async def _answers(app: Any, clock: StepClock) -> list[tuple[int, str, str, bytes]]:
    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://paper/trade-api/v2") as client:
        for key_id, signer, body in REQUESTS:
            auth = KalshiAuth(key_id, KEYS[signer], now_ms=clock)
            if isinstance(body, bytes):
                response = await client.post(ORDERS, content=body, auth=auth,
                                             headers={"content-type": "application/json"})
            else:
                response = await client.post(ORDERS, json=body, auth=auth)
            answers.append((response.status_code, response.headers["content-type"],
                            response.headers["content-length"], response.content))
    return answers


def test_order_fast_path_every_answer_matches_starlette_route_byte_for_byte(
        tmp_path: Path) -> None:
    clock = StepClock(S0)
    inner_calls: list[str] = []

    async def scenario() -> tuple[list[Any], list[Any]]:
        fast_exchange = await _exchange(tmp_path / "fast.sqlite", clock)
        slow_exchange = await _exchange(tmp_path / "slow.sqlite", clock)
        try:
            served = create_app(fast_exchange, extra_routes=[])
            fast = served.app
            assert isinstance(fast, OrderFastPath)
            starlette_app = fast.app

            async def counting(scope: Any, receive: Any, send: Any) -> None:
                inner_calls.append(scope["path"])
                await starlette_app(scope, receive, send)

            fast.app = counting
            fast_answers = await _answers(served, clock)
            slow_answers = await _answers(create_app(slow_exchange, extra_routes=[]).app.app,
                                          clock)
        finally:
            for exchange in (fast_exchange, slow_exchange):
                await exchange.stop()
                exchange.close()
        return fast_answers, slow_answers

    fast_answers, slow_answers = asyncio.run(scenario())

    assert inner_calls == []  # the fast path answered every order request itself
    statuses = [status for status, *_ in fast_answers]
    assert statuses == [201, 201, 201, 201, 409, 400, 400, 400, 400, 400, 400, 404, 401,
                        *[201] * 10, 429]
    assert b'"average_fill_price":"0.4500"' in fast_answers[1][3]
    for index, (fast, slow) in enumerate(zip(fast_answers, slow_answers, strict=True)):
        assert fast == slow, f"request {index}: {REQUESTS[index][2]!r}"
