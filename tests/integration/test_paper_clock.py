"""Reads see the exchange clock: a market past its close reads closed, and an expired order
reads canceled, without any state-changing call or periodic tick in between (and the close is
committed, so it survives a restart)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

import httpx

from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.signing import KalshiAuth, generate_private_key, public_key_pem
from models.matching import MarketSpec, OrderRequest

from ._liquidity_helpers import StepClock

S0 = 1_790_000_000_000
TICKER = "KXCLOCK-26NOV22-B50"


def test_paper_reads_after_close_time_without_tick_show_closed_and_expired(
        tmp_path: Path) -> None:
    clock = StepClock(S0)
    key = generate_private_key()
    db = tmp_path / "clock.sqlite"

    async def scenario() -> tuple[str, str, str, str]:
        exchange = PaperExchange(db, clock=clock, synchronous="NORMAL", advance_interval_s=0)
        await exchange.start()
        try:
            await exchange.add_key("k", public_key_pem(key).decode(), balance_cents=10_000)
            await exchange.add_market(MarketSpec(TICKER, "KXCLOCK-26NOV22", "KXCLOCK", 0,
                                                 S0 + 60_000))
            await exchange.run("submit", {"request": asdict(OrderRequest(
                "k", TICKER, "bid", 40, 2, "good_till_canceled",
                expiration_ts_ms=S0 + 30_000))})
            transport = httpx.ASGITransport(app=create_app(exchange, extra_routes=[]))
            auth = KalshiAuth("k", key, now_ms=clock)
            async with httpx.AsyncClient(transport=transport, auth=auth,
                                         base_url="http://paper/trade-api/v2") as client:
                before = (await client.get(f"/markets/{TICKER}")).json()["market"]["status"]
                clock.advance(31_000)
                orders = (await client.get("/portfolio/orders")).json()["orders"]
                clock.advance(30_000)
                after = (await client.get(f"/markets/{TICKER}")).json()["market"]["status"]
        finally:
            await exchange.stop()
            exchange.close()
        restarted = PaperExchange(db, clock=clock, advance_interval_s=0)
        try:
            replayed = restarted.engine.market(TICKER).status
        finally:
            restarted.close()
        return before, orders[0]["status"], after, replayed

    before, order_status, after, replayed = asyncio.run(scenario())

    assert before == "active"
    assert order_status == "canceled"  # expired at +30 s, read at +31 s
    assert after == "closed"
    assert replayed == "closed"  # the close the read caused was committed
