"""End to end over HTTP: synthetic liquidity in a served paper exchange, seen and traded by our own
``KalshiClient`` with a real RSA key, exactly as a strategy would on paper, demo or live."""

from __future__ import annotations

import asyncio

import uvicorn

from kalshi.client import KalshiClient, order_request
from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.liquidity import MM_ACCOUNT, start_liquidity
from kalshi.signing import KalshiAuth, generate_private_key, public_key_pem

from ._liquidity_helpers import wait_until


def test_synthetic_liquidity_over_http_client_sees_two_sided_book_and_fills(tmp_path):
    key = generate_private_key()

    async def scenario():
        exchange = PaperExchange(tmp_path / "paper.db", synchronous="NORMAL")
        server = uvicorn.Server(uvicorn.Config(create_app(exchange), host="127.0.0.1", port=0,
                                               log_level="warning", lifespan="on"))
        serving = asyncio.create_task(server.serve())
        await wait_until(lambda: server.started, what="uvicorn started")
        port = server.servers[0].sockets[0].getsockname()[1]
        handle = start_liquidity(exchange, "synthetic", seed=11, interval_s=0.05,
                                 series=["KXHIGHNY"])
        await exchange.add_key("user-key", public_key_pem(key).decode(), balance_cents=100_000)
        await wait_until(lambda: handle.stats.steps >= 2, what="liquidity steps")
        await handle.aclose()  # the quotes stay resting (until their expiry): a stable book

        def trade() -> tuple:
            with KalshiClient(f"http://127.0.0.1:{port}/trade-api/v2",
                              KalshiAuth("user-key", key)) as client:
                event = next(iter(client.iter_events(series_ticker="KXHIGHNY",
                                                     with_nested_markets=True)))
                ticker = event.markets[2].ticker
                market = client.get_market(ticker)
                book = client.get_orderbook(ticker)
                ask_cents = market.yes_ask_cents
                ack = client.create_order(order_request(
                    ticker, "bid", 3, ask_cents, client_order_id="e2e-1",
                    time_in_force="immediate_or_cancel"))
                positions, _ = client.get_positions(ticker=ticker)
                return event, market, book, ack, positions, ask_cents

        try:
            result = await asyncio.to_thread(trade)
        finally:
            server.should_exit = True
            await serving
            exchange.close()
        return result, handle.stats

    (event, market, book, ack, positions, ask_cents), stats = asyncio.run(scenario())

    assert len(event.markets) == 6
    assert "Central Park, New York" in market.rules_primary
    assert market.status == "active"
    assert book.best_yes_bid is not None
    assert book.best_yes_ask is not None
    assert book.best_yes_bid < book.best_yes_ask
    assert market.yes_bid_cents < ask_cents
    assert ack.fill_count == 3  # the maker's quote at the ask filled the user's order
    assert [p.position_contracts for p in positions] == [3]
    assert stats.rejects == {}
    assert MM_ACCOUNT.startswith("sys-")
