"""Mirror liquidity: public order books fetched by ``KalshiClient`` from a loopback server are
copied into the paper book as the mirror account's resting orders, and follow their changes."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import asdict
from datetime import UTC, date, datetime

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kalshi.paper.liquidity import MIRROR_ACCOUNT, start_liquidity
from models.matching import OrderRequest
from models.synthetic import draw_event, market_dict, series_info

from ._liquidity_helpers import StepClock, open_exchange, serve_http, wait_until

AS_OF = datetime(2026, 11, 22, 2, 15, tzinfo=UTC)
EVENT = draw_event(series_info("KXHIGHNY"), date(2026, 11, 22), random.Random(2),
                   open_not_after=AS_OF)
MARKET = EVENT.markets[2]


class Source:
    """The public endpoints of a Kalshi-like venue, serving whatever book the test sets."""

    def __init__(self, book: dict) -> None:
        self.book = book
        self.status = 200
        self.book_requests = 0

    def app(self) -> Starlette:
        async def market(request: Request) -> JSONResponse:
            ticker = request.path_params["ticker"]
            if ticker != MARKET.ticker:
                return JSONResponse({"error": {"code": "not_found", "message": ticker}}, 404)
            return JSONResponse({"market": market_dict(EVENT, MARKET, AS_OF)})

        async def orderbook(request: Request) -> JSONResponse:
            self.book_requests += 1
            if self.status != 200:
                return JSONResponse({"error": {"code": "internal", "message": "x"}}, self.status)
            return JSONResponse(self.book)

        return Starlette(routes=[
            Route("/trade-api/v2/markets/{ticker}", market),
            Route("/trade-api/v2/markets/{ticker}/orderbook", orderbook),
        ])


@pytest.fixture
def books(fixtures_dir):
    folder = fixtures_dir / "kalshi_orderbooks"
    return {name: json.loads((folder / f"{name}.json").read_text())
            for name in ("orderbook_fp_current", "orderbook_legacy")}


def _view(exchange):
    if MARKET.ticker not in exchange.market_tickers():
        return (), ()
    book = exchange.engine.book(MARKET.ticker)
    return book.yes, book.no


def test_mirror_liquidity_copies_and_follows_recorded_format_books(tmp_path, books):
    source = Source(books["orderbook_fp_current"])
    clock = StepClock(int(AS_OF.timestamp() * 1000))
    current = (((42, 13), (41, 5), (39, 12), (1, 200)), ((56, 17), (55, 3), (1, 100)))
    legacy = (((42, 13), (1, 200)), ((56, 17), (1, 100)))

    async def scenario(base_url):
        async with open_exchange(tmp_path / "paper.db", clock) as exchange:
            handle = start_liquidity(exchange, "mirror", base_url=f"{base_url}/trade-api/v2",
                                     tickers=[MARKET.ticker], interval_s=0.02)
            await wait_until(lambda: handle.stats.markets_added == 1, what="market copied")
            await wait_until(lambda: _view(exchange) == current, what="current book mirrored")
            source.book = books["orderbook_legacy"]
            await wait_until(lambda: _view(exchange) == legacy, what="legacy book mirrored")
            await handle.aclose()
            return exchange, handle.stats

    with serve_http(source.app()) as base_url:
        exchange, stats = asyncio.run(scenario(base_url))

    assert "yes@42:13.50->13" in stats.fractional_dropped  # reported, not silently truncated
    assert stats.orders_canceled >= 3  # levels 41, 39 and 55 left the source book
    assert stats.errors == []
    assert exchange.markets_raw[MARKET.ticker]["rules_primary"].startswith("If the highest")
    orders = exchange.engine.orders(MIRROR_ACCOUNT, status="resting")
    assert {o.account_id for o in orders} == {MIRROR_ACCOUNT}
    assert all(o.expiration_ts_ms is not None for o in orders)


def test_mirror_liquidity_user_takes_mirrored_ask_through_engine(tmp_path, books):
    source = Source(books["orderbook_legacy"])
    clock = StepClock(int(AS_OF.timestamp() * 1000))

    async def scenario(base_url):
        async with open_exchange(tmp_path / "paper.db", clock) as exchange:
            handle = start_liquidity(exchange, "mirror", base_url=f"{base_url}/trade-api/v2",
                                     tickers=[MARKET.ticker], interval_s=0.02)
            await wait_until(lambda: _view(exchange)[1][:1] == ((56, 17),), what="mirrored")
            await exchange.run("add_account", {"account_id": "user", "balance_cents": 10_000})
            req = OrderRequest("user", MARKET.ticker, "bid", 44, 5, "immediate_or_cancel")
            order = await exchange.run("submit", {"request": asdict(req)})
            await handle.aclose()
            return exchange, order

    with serve_http(source.app()) as base_url:
        exchange, order = asyncio.run(scenario(base_url))

    assert order.fill_count == 5
    assert order.taker_fill_cost_cents == 5 * 44  # the implied ask: 100 - best NO bid 56
    positions = {p.account_id: p.position for a in ("user", MIRROR_ACCOUNT)
                 for p in exchange.engine.positions(a)}
    assert positions == {"user": 5, MIRROR_ACCOUNT: -5}


def test_mirror_liquidity_crossed_or_failing_source_reported_book_kept(tmp_path, books):
    source = Source(books["orderbook_legacy"])
    clock = StepClock(int(AS_OF.timestamp() * 1000))
    legacy = (((42, 13), (1, 200)), ((56, 17), (1, 100)))

    async def scenario(base_url):
        async with open_exchange(tmp_path / "paper.db", clock) as exchange:
            handle = start_liquidity(exchange, "mirror", base_url=f"{base_url}/trade-api/v2",
                                     tickers=[MARKET.ticker], interval_s=0.02)
            await wait_until(lambda: _view(exchange) == legacy, what="mirrored")
            source.book = {"orderbook_fp": {"yes_dollars": [["0.6000", "1.00"]],
                                            "no_dollars": [["0.4500", "1.00"]]}}
            await wait_until(lambda: any("crossed" in e for e in handle.stats.errors),
                             what="crossed book reported")
            source.status = 404
            await wait_until(lambda: "HTTP 404" in handle.stats.errors[-1], what="404 reported")
            await handle.aclose()
            return _view(exchange), handle.stats

    with serve_http(source.app()) as base_url:
        view, stats = asyncio.run(scenario(base_url))

    assert view == legacy  # a bad source never wipes or crosses the paper book
    assert "crossed book, best yes bid 60 + best no bid 45 >= 100" in stats.errors[0]
    assert stats.errors[0].startswith(f"{MARKET.ticker}: crossed")  # names the market once
