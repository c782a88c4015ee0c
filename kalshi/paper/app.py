"""ASGI app of the paper exchange: Kalshi's REST routes under ``/trade-api/v2`` plus ``/operator``.

Invariant: the public market-data routes and the signed portfolio routes answer with the JSON
shapes and success codes of Kalshi's current contract; injected faults (latency, 5xx, 429, an
acknowledgement lost after the write committed) apply only to ``/trade-api/v2``, never to the
operator API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kalshi.paper import operator, portfolio
from kalshi.paper import serialize as ser
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.hotpath import OrderFastPath
from kalshi.paper.http import (
    PREFIX,
    ApiError,
    error_response,
    exchange_of,
    page,
    query_int,
    rate_limited,
)
from kalshi.paper.store import StoreError
from models.matching import EngineReject, MarketState
from models.money import fp_from_contracts, price_dollars

__all__ = ["FaultMiddleware", "create_app"]

# GET /markets?status= words -> engine statuses (docs market_lifecycle.md)
_STATUS_FILTER = {
    "unopened": {"initialized"},
    "open": {"active"},
    "paused": {"inactive"},
    "closed": {"closed", "determined"},
    "settled": {"finalized"},
}


class FaultMiddleware:
    """Inject the exchange's configured faults into ``/trade-api/v2`` HTTP requests."""

    def __init__(self, app: ASGIApp, exchange: PaperExchange) -> None:
        self.app = app
        self.exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        faults = self.exchange.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if self.exchange.roll(faults.rate_limit_rate):
            await rate_limited()(scope, receive, send)
            return
        if self.exchange.roll(faults.error_rate):
            response = error_response(503, "service_unavailable", "injected fault: service "
                                      "unavailable", "paper exchange fault injection")
            await response(scope, receive, send)
            return
        if not faults.drop_after_accept:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        dropping = False

        async def send_or_drop(message: Message) -> None:
            nonlocal dropping
            if message["type"] == "http.response.start" and state.get("paper_accepted"):
                dropping = self.exchange.roll(faults.drop_after_accept)
                if dropping:
                    # announce a body that never completes: the server closes the connection
                    headers = [(b"content-type", b"application/json"), (b"content-length", b"64")]
                    await send({"type": "http.response.start", "status": message["status"],
                                "headers": headers})
                    await send({"type": "http.response.body", "body": b"{", "more_body": True})
                    return
            if dropping:
                return
            await send(message)

        await self.app(scope, receive, send_or_drop)


# --- public market data -----------------------------------------------------------------------


async def exchange_status(request: Request) -> Response:
    return JSONResponse({"exchange_active": True, "trading_active": True,
                         "exchange_estimated_resume_time": None})


async def exchange_schedule(request: Request) -> Response:
    day = [{"open_time": "00:00", "close_time": "24:00"}]
    names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    week: dict[str, Any] = {name: day for name in names}
    week |= {"start_time": "2020-01-01T00:00:00Z", "end_time": "2099-12-31T23:59:59Z"}
    return JSONResponse({"schedule": {"standard_hours": [week], "maintenance_windows": []}})


def _market_body(exchange: PaperExchange, state: MarketState) -> dict[str, Any]:
    ticker = state.spec.ticker
    raw = exchange.markets_raw.get(ticker, {})
    created = int(raw.get("_paper_created_ms", state.spec.open_ts_ms))
    last_trade_ms, volume_24h = exchange.market_activity(ticker, exchange.clock())
    updated = max(created, last_trade_ms or 0)
    return ser.market_json(state, raw, exchange.engine.book(ticker), volume_24h=volume_24h,
                           created_ms=created, updated_ms=updated)


def _csv(request: Request, name: str) -> list[str]:
    return [p for p in (request.query_params.get(name) or "").split(",") if p]


def _status_set(request: Request) -> set[str] | None:
    words = _csv(request, "status")
    if not words:
        return None
    wanted: set[str] = set()
    for word in words:
        if word not in _STATUS_FILTER:
            raise ApiError(400, "invalid_parameters", f"status must be one of "
                           f"{sorted(_STATUS_FILTER)} (got {word!r})", "status")
        wanted |= _STATUS_FILTER[word]
    return wanted


def _handle(fn: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            await exchange_of(request).catch_up()  # closes/expiries due by now, before reading
            result: Response = await fn(request)
        except ApiError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except StoreError as exc:
            return error_response(503, "service_unavailable",
                                  "the paper exchange cannot write its database", str(exc))
        return result

    endpoint.__name__ = fn.__name__
    return endpoint


@_handle
async def get_markets(request: Request) -> Response:
    exchange = exchange_of(request)
    statuses = _status_set(request)
    tickers = set(_csv(request, "tickers"))
    event_ticker = set(_csv(request, "event_ticker"))
    series_ticker = request.query_params.get("series_ticker")
    min_close = query_int(request, "min_close_ts", lo=0)
    max_close = query_int(request, "max_close_ts", lo=0)
    chosen = []
    for state in sorted(exchange.engine.markets(), key=lambda s: s.spec.ticker):
        spec = state.spec
        if statuses is not None and state.status not in statuses:
            continue
        if tickers and spec.ticker not in tickers:
            continue
        if event_ticker and spec.event_ticker not in event_ticker:
            continue
        if series_ticker and spec.series_ticker != series_ticker:
            continue
        if min_close is not None and spec.close_ts_ms < min_close * 1000:
            continue
        if max_close is not None and spec.close_ts_ms > max_close * 1000:
            continue
        chosen.append(state)
    chunk, cursor = page(request, chosen, lambda s: s.spec.ticker)
    return JSONResponse({"markets": [_market_body(exchange, s) for s in chunk], "cursor": cursor})


def _market_state(exchange: PaperExchange, ticker: str) -> MarketState:
    try:
        return exchange.engine.market(ticker)
    except (EngineReject, KeyError) as exc:
        raise ApiError(404, "not_found", f"market {ticker!r} not found", "ticker") from exc


@_handle
async def get_market(request: Request) -> Response:
    exchange = exchange_of(request)
    state = _market_state(exchange, request.path_params["ticker"])
    return JSONResponse({"market": _market_body(exchange, state)})


@_handle
async def get_orderbook(request: Request) -> Response:
    exchange = exchange_of(request)
    ticker = request.path_params["ticker"]
    _market_state(exchange, ticker)
    depth = query_int(request, "depth", 0, lo=0, hi=100) or 0
    book = exchange.engine.book(ticker, depth)
    return JSONResponse({"orderbook_fp": ser.orderbook_json(book)})


@_handle
async def get_orderbooks(request: Request) -> Response:
    exchange = exchange_of(request)
    tickers = request.query_params.getlist("tickers")
    tickers = [t for part in tickers for t in part.split(",") if t]
    if not 1 <= len(tickers) <= 100:
        raise ApiError(400, "invalid_parameters", f"tickers: give 1..100 (got {len(tickers)})",
                       "tickers")
    books = []
    for ticker in tickers:
        _market_state(exchange, ticker)
        books.append({"ticker": ticker,
                      "orderbook_fp": ser.orderbook_json(exchange.engine.book(ticker))})
    return JSONResponse({"orderbooks": books})


@_handle
async def get_trades(request: Request) -> Response:
    exchange = exchange_of(request)
    ticker = request.query_params.get("ticker") or None
    min_ts = query_int(request, "min_ts", lo=0)
    max_ts = query_int(request, "max_ts", lo=0)
    trades = [
        t for t in reversed(exchange.engine.trades(ticker))
        if (min_ts is None or t.ts_ms >= min_ts * 1000)
        and (max_ts is None or t.ts_ms <= max_ts * 1000)
    ]
    chunk, cursor = page(request, trades, lambda t: t.trade_id)
    return JSONResponse({"trades": [ser.trade_json(t) for t in chunk], "cursor": cursor})


def _ohlc(prices: list[int]) -> dict[str, str] | None:
    if not prices:
        return None
    return {"open_dollars": price_dollars(prices[0]),
            "low_dollars": price_dollars(min(prices)),
            "high_dollars": price_dollars(max(prices)),
            "close_dollars": price_dollars(prices[-1])}


@_handle
async def get_candlesticks(request: Request) -> Response:
    exchange = exchange_of(request)
    ticker = request.path_params["ticker"]
    state = _market_state(exchange, ticker)
    if state.spec.series_ticker != request.path_params["series_ticker"]:
        raise ApiError(404, "not_found", f"market {ticker!r} is not in series "
                       f"{request.path_params['series_ticker']!r}", "series_ticker")
    start_ts = query_int(request, "start_ts", lo=0)
    end_ts = query_int(request, "end_ts", lo=0)
    period = query_int(request, "period_interval")
    for name, value in (("start_ts", start_ts), ("end_ts", end_ts), ("period_interval", period)):
        if value is None:
            raise ApiError(400, "invalid_parameters", f"{name} is required", name)
    assert start_ts is not None
    assert end_ts is not None
    assert period is not None
    if period not in (1, 60, 1440):
        raise ApiError(400, "invalid_parameters",
                       f"period_interval must be 1, 60 or 1440 (got {period})", "period_interval")
    span_ms = period * 60_000
    buckets: dict[int, list[Any]] = {}
    for trade in exchange.engine.trades(ticker):
        if not start_ts * 1000 < trade.ts_ms <= end_ts * 1000 + span_ms:
            continue
        end_ms = -(-trade.ts_ms // span_ms) * span_ms
        if end_ms // 1000 > end_ts:
            continue
        buckets.setdefault(end_ms, []).append(trade)
    candles = []
    last_close: int | None = None
    for end_ms in sorted(buckets):
        trades = buckets[end_ms]
        prices = [t.yes_price_cents for t in trades]
        # a YES taker lifted the ask, a NO taker hit the bid: the quotes that traded
        asks = [t.yes_price_cents for t in trades if t.taker_side == "yes"] or prices
        bids = [t.yes_price_cents for t in trades if t.taker_side == "no"] or prices
        price: dict[str, str | None] = dict(_ohlc(prices) or {})
        price["mean_dollars"] = price_dollars(sum(prices) // len(prices))
        price["previous_dollars"] = price_dollars(last_close) if last_close else None
        candles.append({
            "end_period_ts": end_ms // 1000,
            "yes_bid": _ohlc(bids),
            "yes_ask": _ohlc(asks),
            "price": price,
            "volume_fp": fp_from_contracts(sum(t.count for t in trades)),
            "open_interest_fp": fp_from_contracts(state.open_interest),
        })
        last_close = prices[-1]
    return JSONResponse({"ticker": ticker, "candlesticks": candles})


def _event_markets(exchange: PaperExchange) -> dict[str, list[MarketState]]:
    grouped: dict[str, list[MarketState]] = {}
    for state in sorted(exchange.engine.markets(), key=lambda s: s.spec.ticker):
        grouped.setdefault(state.spec.event_ticker, []).append(state)
    return grouped


def _event_body(exchange: PaperExchange, event_ticker: str, markets: list[MarketState],
                nested: bool) -> dict[str, Any]:
    raw = exchange.events_raw.get(event_ticker, {})
    series = markets[0].spec.series_ticker if markets else str(raw.get("series_ticker", ""))
    body = ser.event_json(raw, event_ticker, series)
    if nested:
        body["markets"] = [_market_body(exchange, m) for m in markets]
    return body


def _event_status(markets: list[MarketState]) -> str:
    statuses = {m.status for m in markets}
    if statuses & {"active", "initialized", "inactive"}:
        return "open"
    if statuses == {"finalized"}:
        return "settled"
    return "closed"


@_handle
async def get_events(request: Request) -> Response:
    exchange = exchange_of(request)
    nested = (request.query_params.get("with_nested_markets") or "").lower() == "true"
    status = request.query_params.get("status") or None
    if status is not None and status not in ("open", "closed", "settled"):
        raise ApiError(400, "invalid_parameters",
                       f"status must be open, closed or settled (got {status!r})", "status")
    series_ticker = request.query_params.get("series_ticker")
    wanted = set(_csv(request, "tickers")) | set(_csv(request, "event_ticker"))
    grouped = _event_markets(exchange)
    chosen = []
    for event_ticker, markets in grouped.items():
        if series_ticker and markets[0].spec.series_ticker != series_ticker:
            continue
        if wanted and event_ticker not in wanted:
            continue
        if status and _event_status(markets) != status:
            continue
        chosen.append((event_ticker, markets))
    chunk, cursor = page(request, chosen, lambda e: e[0], default_limit=200, max_limit=200)
    return JSONResponse({
        "events": [_event_body(exchange, e, ms, nested) for e, ms in chunk],
        "cursor": cursor,
    })


@_handle
async def get_event(request: Request) -> Response:
    exchange = exchange_of(request)
    event_ticker = request.path_params["event_ticker"]
    markets = _event_markets(exchange).get(event_ticker)
    if not markets:
        raise ApiError(404, "not_found", f"event {event_ticker!r} not found", "event_ticker")
    nested = (request.query_params.get("with_nested_markets") or "").lower() == "true"
    return JSONResponse({
        "event": _event_body(exchange, event_ticker, markets, nested),
        "markets": [_market_body(exchange, m) for m in markets],
    })


def _series_tickers(exchange: PaperExchange) -> list[str]:
    known = set(exchange.series_raw) | {s.spec.series_ticker for s in exchange.engine.markets()}
    return sorted(known)


@_handle
async def get_series_list(request: Request) -> Response:
    exchange = exchange_of(request)
    category = request.query_params.get("category")
    out = []
    for ticker in _series_tickers(exchange):
        body = ser.series_json(exchange.series_raw.get(ticker, {}), ticker)
        if category and body.get("category") != category:
            continue
        out.append(body)
    return JSONResponse({"series": out})


@_handle
async def get_series(request: Request) -> Response:
    exchange = exchange_of(request)
    ticker = request.path_params["series_ticker"]
    if ticker not in _series_tickers(exchange):
        raise ApiError(404, "not_found", f"series {ticker!r} not found", "series_ticker")
    return JSONResponse({"series": ser.series_json(exchange.series_raw.get(ticker, {}), ticker)})


async def historical_cutoff(request: Request) -> Response:
    # nothing on the paper exchange is old enough to be "historical": the cutoff is the epoch
    epoch = "1970-01-01T00:00:00Z"
    return JSONResponse({"market_settled_ts": epoch, "trades_created_ts": epoch,
                         "orders_updated_ts": epoch, "market_positions_last_updated_ts": epoch})


async def historical_empty(request: Request) -> Response:
    kind = request.url.path.rsplit("/", 1)[-1]
    return JSONResponse({kind: [], "cursor": ""})


async def not_found(request: Request) -> Response:
    return error_response(404, "not_found", f"no route {request.method} {request.url.path}",
                          request.url.path)


def _public_routes() -> list[Route]:
    p = PREFIX
    return [
        Route(p + "/exchange/status", exchange_status, methods=["GET"]),
        Route(p + "/exchange/schedule", exchange_schedule, methods=["GET"]),
        Route(p + "/series", get_series_list, methods=["GET"]),
        Route(p + "/series/{series_ticker}", get_series, methods=["GET"]),
        Route(p + "/series/{series_ticker}/markets/{ticker}/candlesticks", get_candlesticks,
              methods=["GET"]),
        Route(p + "/events", get_events, methods=["GET"]),
        Route(p + "/events/{event_ticker}", get_event, methods=["GET"]),
        Route(p + "/markets", get_markets, methods=["GET"]),
        Route(p + "/markets/trades", get_trades, methods=["GET"]),
        Route(p + "/markets/orderbooks", get_orderbooks, methods=["GET"]),
        Route(p + "/markets/{ticker}", get_market, methods=["GET"]),
        Route(p + "/markets/{ticker}/orderbook", get_orderbook, methods=["GET"]),
        Route(p + "/historical/cutoff", historical_cutoff, methods=["GET"]),
        Route(p + "/historical/markets", historical_empty, methods=["GET"]),
        Route(p + "/historical/trades", historical_empty, methods=["GET"]),
    ]


def create_app(exchange: PaperExchange, *, extra_routes: list[Any] | None = None,
               close_on_shutdown: bool = False,
               before_stop: Callable[[], Awaitable[None]] | None = None) -> ASGIApp:
    """Return the ASGI app serving ``exchange`` (Kalshi REST, operator API, optional extras).

    The WebSocket API (``kalshi.paper.ws``) is mounted at ``/trade-api/ws/v2`` unless
    ``extra_routes`` is given, which replaces it. ``close_on_shutdown`` closes the exchange's
    database when the server shuts down (for a process that owns the exchange).
    ``before_stop`` runs first at shutdown (stop the liquidity driver there, so every command
    it had the engine apply is committed before the store closes).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await exchange.start()
        try:
            yield
        finally:
            try:
                if before_stop is not None:
                    await before_stop()
            finally:
                await exchange.stop()
            if close_on_shutdown:
                exchange.close()

    routes: list[Any] = [*_public_routes(), *portfolio.routes(), *operator.routes()]
    routes += list(extra_routes) if extra_routes is not None else _websocket_routes(exchange)
    app = Starlette(lifespan=lifespan,
                    exception_handlers={404: _not_found_handler, 405: _method_handler})
    app.router = _IndexedRouter(routes, lifespan=lifespan)
    app.state.exchange = exchange
    # the order-entry route is served by a lean ASGI path inside the fault injection
    return FaultMiddleware(OrderFastPath(app, exchange), exchange)


class _IndexedRouter(Router):
    """Starlette's router with a dict lookup for paths without parameters.

    Starlette tries every route's regex in order (about 20 before the order routes); the hot
    static paths (``/portfolio/events/orders``, ``/portfolio/orders``, ...) are found in one
    dict lookup instead, and anything else (path parameters, 404, 405) takes the usual walk.
    """

    def __init__(self, routes: list[Any], **kwargs: Any) -> None:
        super().__init__(routes, **kwargs)
        self._static: dict[str, Route] = {}
        for route in routes:
            if isinstance(route, Route) and not route.param_convertors:
                self._static.setdefault(route.path, route)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self._static.get(scope["path"])
            if route is not None:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)


def _websocket_routes(exchange: PaperExchange) -> list[Any]:
    # the WebSocket API lives in its own module (another area); mount it when it is present
    try:
        from kalshi.paper.ws import websocket_route
    except ImportError:
        return []
    return [websocket_route(exchange, rng=exchange.rng)]


async def _not_found_handler(request: Request, exc: Exception) -> Response:
    return await not_found(request)


async def _method_handler(request: Request, exc: Exception) -> Response:
    return error_response(405, "method_not_allowed",
                          f"{request.method} is not allowed on {request.url.path}",
                          request.url.path)
