"""KalshiStream against the real paper exchange (REST orders, committed outcomes, operator faults).

Orders go in over REST while the stream subscribes, asks for snapshots and loses messages and
connections; at every quiet point the local books equal the exchange's REST order books.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

from kalshi.errors import AuthError
from kalshi.signing import KalshiAuth, generate_private_key
from kalshi.stream import KalshiStream
from tests.integration.conftest import PaperExchangeHandle, add_market


@pytest.fixture
def two_markets(paper_exchange: PaperExchangeHandle, paper_market: str) -> tuple[str, str]:
    second = paper_market.replace("-M", "-W")
    add_market(paper_exchange.operator_url, second, second.rsplit("-", 1)[0] + "W")
    return paper_market, second


@pytest.fixture
def ws_faults(paper_exchange: PaperExchangeHandle):
    """Set WebSocket faults through the operator API; restore the previous faults afterwards."""
    with paper_exchange.operator() as operator:
        before = operator.get("/faults").json()

        def set_faults(**rates: float) -> None:
            response = operator.post("/faults", json=rates)
            assert response.status_code == 200, response.text

        yield set_faults
        operator.post("/faults", json={**before, "clear": True})


def _rest_books(paper_exchange: PaperExchangeHandle, tickers) -> dict[str, tuple]:
    books = {}
    with paper_exchange.client() as client:
        for ticker in tickers:
            raw = client.get(f"/markets/{ticker}/orderbook").json()["orderbook_fp"]

            def side(levels):
                return tuple(sorted(((round(Decimal(p) * 100), Decimal(q)) for p, q in levels),
                                    reverse=True))

            books[ticker] = (side(raw["yes_dollars"]), side(raw["no_dollars"]))
    return books


def _place_orders(paper_exchange: PaperExchangeHandle, tickers, seed: int, n: int) -> int:
    rng = random.Random(seed)
    accepted = 0
    with paper_exchange.client() as maker, paper_exchange.client(counterparty=True) as taker:
        for _ in range(n):
            client = rng.choice((maker, taker))
            body = {"ticker": rng.choice(tickers), "side": rng.choice(("bid", "ask")),
                    "count": str(rng.randint(1, 4)), "price": f"0.{rng.randint(30, 70)}00",
                    "time_in_force": "good_till_canceled",
                    "self_trade_prevention_type": "taker_at_cross"}
            response = client.post("/portfolio/events/orders", json=body)
            assert response.status_code == 201, response.text
            accepted += 1
    return accepted


async def _wait_equal(stream: KalshiStream, paper_exchange, tickers, timeout_s=8.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            expected = await asyncio.to_thread(_rest_books, paper_exchange, tickers)
            local = {}
            for ticker in tickers:
                book = stream.book(ticker)
                local[ticker] = None if book is None else (book.yes, book.no)
            if local == expected:
                return
            await asyncio.sleep(0.02)


def _stream(paper_exchange: PaperExchangeHandle) -> KalshiStream:
    return KalshiStream(paper_exchange.ws_url, paper_exchange.auth(), backoff_initial_s=0.01,
                        backoff_max_s=0.05, resync_timeout_s=1.0, quiet_snapshot_s=0.2,
                        rng=random.Random(4))


def test_stream_paper_exchange_concurrent_orders_book_equals_rest_book(
    paper_exchange: PaperExchangeHandle, two_markets: tuple[str, str]
) -> None:
    async def scenario() -> None:
        async with _stream(paper_exchange) as stream:
            # subscribe while orders are being committed: snapshots must not double-count them
            burst = asyncio.create_task(
                asyncio.to_thread(_place_orders, paper_exchange, two_markets, 1, 60))
            await asyncio.sleep(0.02)
            await stream.subscribe("orderbook_delta", [two_markets[0]])
            await stream.subscribe("orderbook_delta", [two_markets[1]])  # merged: add_markets
            await stream.request_snapshot()
            await burst
            await _wait_equal(stream, paper_exchange, two_markets)
            assert stream.seq_gap_count == 0

    asyncio.run(scenario())


def test_stream_paper_exchange_injected_gaps_and_drops_book_equals_rest_book(
    paper_exchange: PaperExchangeHandle, two_markets: tuple[str, str], ws_faults
) -> None:
    ws_faults(seq_gap_rate=0.1, ws_drop_rate=0.03)

    async def scenario() -> None:
        async with _stream(paper_exchange) as stream:
            await stream.subscribe("orderbook_delta", two_markets)
            for seed in (2, 3, 4):
                await asyncio.to_thread(_place_orders, paper_exchange, two_markets, seed, 40)
                await _wait_equal(stream, paper_exchange, two_markets)
            assert stream.seq_gap_count > 0
            assert stream.reconnect_count > 0

    asyncio.run(scenario())


def test_stream_paper_exchange_fill_and_user_order_for_own_account_only(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    async def scenario() -> list:
        async with _stream(paper_exchange) as stream:
            await stream.subscribe("fill", [paper_market])
            await stream.subscribe("user_orders", [paper_market])

            def trade() -> str:
                with paper_exchange.client() as me, \
                        paper_exchange.client(counterparty=True) as other:
                    order = {"ticker": paper_market, "count": "3", "price": "0.5500",
                             "self_trade_prevention_type": "taker_at_cross"}
                    mine = me.post("/portfolio/events/orders", json={
                        **order, "side": "bid", "time_in_force": "good_till_canceled",
                        "client_order_id": "ws-fill-1"})
                    other.post("/portfolio/events/orders", json={
                        **order, "side": "ask", "time_in_force": "immediate_or_cancel"})
                    return str(mine.json()["order_id"])

            order_id = await asyncio.to_thread(trade)
            seen = []
            async with asyncio.timeout(5):
                while not any(m.type == "fill" for m in seen) or not any(
                        m.type == "user_order" and m.msg["status"] == "executed" for m in seen):
                    seen.append(await stream.next_message())
            return [order_id, seen]

    order_id, seen = asyncio.run(scenario())
    fills = [m for m in seen if m.type == "fill"]
    assert [f.msg["order_id"] for f in fills] == [order_id]
    assert fills[0].msg["client_order_id"] == "ws-fill-1"
    assert (fills[0].msg["count_fp"], fills[0].msg["yes_price_dollars"]) == ("3.00", "0.5500")
    assert {m.msg["order_id"] for m in seen if m.type == "user_order"} == {order_id}


def test_stream_paper_exchange_bad_key_refused(paper_exchange: PaperExchangeHandle) -> None:
    async def scenario() -> None:
        stream = KalshiStream(paper_exchange.ws_url,
                              KalshiAuth(paper_exchange.key_id, generate_private_key()))
        await stream.start()

    with pytest.raises(AuthError) as refused:
        asyncio.run(scenario())
    assert refused.value.status == 401
