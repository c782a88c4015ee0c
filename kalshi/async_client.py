"""Asynchronous Kalshi client: the same endpoints and rules as ``kalshi.client``.

Invariant: identical request descriptions and error translation as the sync client; only the
transport and the sleeps are asynchronous.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx

from kalshi.endpoints import (
    ANY_TICK_GRID,
    DEFAULT_TIMEOUT_S,
    Call,
    ClientCore,
    Endpoints,
    RetryPolicy,
    T,
    ack_from_order,
    csv_param,
    identity,
    next_cursor,
    order_request,
    page_params,
    split_positions,
    tls_context,
)
from kalshi.errors import (
    KalshiError,
    OrderAlreadyExists,
    OutcomeUnknown,
    ProtocolError,
    TransientError,
)
from kalshi.ratelimit import RateLimiter
from kalshi.wire import (
    CENT_GRID,
    AmendOrderV2Request,
    AmendOrderV2Response,
    Balance,
    BatchCancelItem,
    BatchCancelOrder,
    BatchCancelOrdersV2Request,
    BatchCreateItem,
    BatchCreateOrdersV2Request,
    BookSide,
    CancelOrderV2Response,
    Candlestick,
    CreateOrderGroupRequest,
    CreateOrderV2Request,
    CreateOrderV2Response,
    DecreaseOrderV2Request,
    DecreaseOrderV2Response,
    Event,
    EventPosition,
    ExchangeSchedule,
    ExchangeStatus,
    Fill,
    HistoricalCutoff,
    Market,
    MarketPosition,
    Order,
    Orderbook,
    OrderGroup,
    Page,
    PriceGrid,
    Series,
    Settlement,
    Trade,
    UpdateOrderGroupLimitRequest,
    parse_event,
    parse_fill,
    parse_market,
    parse_order,
    parse_settlement,
    parse_trade,
)

__all__ = [
    "AsyncKalshiClient",
]

log = logging.getLogger("kalshi.client")  # one logger name for the whole client

# ------------------------------------------------------------------------------------------------
# the asynchronous client (same endpoints, same rules)


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class AsyncKalshiClient(ClientCore):
    """Asynchronous client for flows that fan out over many markets."""

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        limiter: RateLimiter | None = None,
        max_retries: int = 4,
        *,
        backoff: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = _async_sleep,
        rng: random.Random | None = None,
    ) -> None:
        policy = backoff or RetryPolicy(max_retries=max_retries)
        super().__init__(limiter=limiter, policy=policy, rng=rng)
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), auth=auth,
                                       transport=transport, timeout=httpx.Timeout(timeout),
                                       verify=tls_context(), headers={"Accept": "application/json"})

    async def __aenter__(self) -> AsyncKalshiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"AsyncKalshiClient(base_url={str(self._http.base_url).rstrip('/')!r})"

    async def _once(self, call: Call[T]) -> T:
        if self._limiter is not None:
            await self._limiter.acquire_async(call.bucket, call.cost)
        request = self._http.build_request(call.method, call.path, **self._request_kwargs(call))
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise self._transport_error(call, exc) from exc
        return self._finish(call, response)

    async def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                return await self._once(call)
            except KalshiError as exc:
                error, delay = self._disposition(call, exc, attempt)
                if delay is None:
                    if error is exc:
                        raise
                    raise error from exc
            await self._sleep(delay)
            attempt += 1

    async def _iter(self, make: Callable[[dict[str, Any]], Call[Page]],
                    params: Mapping[str, Any], parse: Callable[[Any], T]) -> AsyncIterator[T]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            call = make(page_params(params, cursor))
            page = await self._run(call)
            for item in page.items:
                yield parse(item)
            cursor = next_cursor(call, page, seen)
            if cursor is None:
                return

    async def get_exchange_status(self) -> ExchangeStatus:
        """GET /exchange/status."""
        return await self._run(Endpoints.exchange_status())

    async def get_exchange_schedule(self) -> ExchangeSchedule:
        """GET /exchange/schedule."""
        return await self._run(Endpoints.exchange_schedule())

    async def get_series_list(self, *, category: str | None = None,
                              tags: str | None = None) -> list[Series]:
        """GET /series."""
        return await self._run(Endpoints.series_list(category, tags))

    def iter_events(self, *, series_ticker: str | None = None, status: str | None = None,
                    with_nested_markets: bool | None = None,
                    limit: int | None = None) -> AsyncIterator[Event]:
        """GET /events, every page."""
        params = {"series_ticker": series_ticker, "status": status, "limit": limit,
                  "with_nested_markets": with_nested_markets}
        return self._iter(Endpoints.events, params, parse_event)

    async def get_candlesticks(self, series_ticker: str, ticker: str, *, start_ts: int,
                               end_ts: int, period_interval: int) -> list[Candlestick]:
        """GET /series/{series}/markets/{ticker}/candlesticks."""
        if period_interval not in (1, 60, 1440):
            raise ValueError(f"period_interval: expected 1, 60 or 1440, got {period_interval}")
        params = {"start_ts": start_ts, "end_ts": end_ts, "period_interval": period_interval}
        return await self._run(Endpoints.candlesticks(series_ticker, ticker, params, CENT_GRID))

    async def get_historical_cutoff(self) -> HistoricalCutoff:
        """GET /historical/cutoff."""
        return await self._run(Endpoints.historical_cutoff())

    async def get_historical_market(self, ticker: str) -> Market:
        """GET /historical/markets/{ticker}."""
        return await self._run(Endpoints.market(ticker, historical=True))

    def iter_historical_markets(self, *, series_ticker: str | None = None,
                                event_ticker: str | None = None) -> AsyncIterator[Market]:
        """GET /historical/markets, every page."""
        params = {"series_ticker": series_ticker, "event_ticker": event_ticker}
        return self._iter(lambda p: Endpoints.markets(p, historical=True), params, parse_market)

    def iter_historical_trades(self, *, ticker: str | None = None) -> AsyncIterator[Trade]:
        """GET /historical/trades, every page."""
        return self._iter(lambda p: Endpoints.trades(p, historical=True), {"ticker": ticker},
                          parse_trade)

    def iter_historical_orders(self, *, ticker: str | None = None) -> AsyncIterator[Order]:
        """GET /historical/orders, every page."""
        return self._iter(lambda p: Endpoints.orders(p, historical=True), {"ticker": ticker},
                          parse_order)

    def iter_historical_fills(self, *, ticker: str | None = None) -> AsyncIterator[Fill]:
        """GET /historical/fills, every page."""
        return self._iter(lambda p: Endpoints.fills(p, historical=True), {"ticker": ticker},
                          parse_fill)

    async def get_positions(
        self, *, ticker: str | None = None, event_ticker: str | None = None,
        settlement_status: str | None = None, subaccount: int | None = None,
    ) -> tuple[list[MarketPosition], list[EventPosition]]:
        """GET /portfolio/positions, every page: (market positions, event positions)."""
        params = {"ticker": ticker, "event_ticker": event_ticker, "subaccount": subaccount,
                  "settlement_status": settlement_status}
        raw = [item async for item in self._iter(Endpoints.positions, params, identity)]
        markets, events = split_positions(tuple(raw))
        return markets, events

    def iter_settlements(self, *, ticker: str | None = None,
                         event_ticker: str | None = None) -> AsyncIterator[Settlement]:
        """GET /portfolio/settlements, every page."""
        return self._iter(Endpoints.settlements, {"ticker": ticker, "event_ticker": event_ticker},
                          parse_settlement)

    async def batch_create_orders(
        self, orders: list[CreateOrderV2Request]
    ) -> list[BatchCreateItem]:
        """POST /portfolio/events/orders/batched (results in request order; not auto-resolved)."""
        if any(not o.client_order_id for o in orders):
            raise ValueError("client_order_id: required on every order of a batch")
        request = BatchCreateOrdersV2Request(orders=tuple(orders))
        return await self._run(Endpoints.batch_create(request))

    async def batch_cancel_orders(self, orders: list[BatchCancelOrder]) -> list[BatchCancelItem]:
        """DELETE /portfolio/events/orders/batched."""
        request = BatchCancelOrdersV2Request(orders=tuple(orders))
        return await self._run(Endpoints.batch_cancel(request))

    async def place_order(self, ticker: str, side: BookSide, count: int, price_cents: int, *,
                          client_order_id: str, **options: Any) -> CreateOrderV2Response:
        """Create a limit order from whole contracts and a YES price in cents."""
        return await self.create_order(order_request(ticker, side, count, price_cents,
                                                     client_order_id=client_order_id, **options))

    async def create_order_group(self, contracts_limit: int, *,
                                 subaccount: int | None = None) -> str:
        """POST /portfolio/order_groups/create; return the new group's id."""
        request = CreateOrderGroupRequest(contracts_limit=contracts_limit, subaccount=subaccount)
        return await self._run(Endpoints.create_group(request))

    async def get_order_group(self, group_id: str, *,
                              subaccount: int | None = None) -> OrderGroup:
        """GET /portfolio/order_groups/{id}."""
        return await self._run(Endpoints.group(group_id, subaccount))

    async def list_order_groups(self, *, subaccount: int | None = None) -> list[OrderGroup]:
        """GET /portfolio/order_groups."""
        return await self._run(Endpoints.groups(subaccount))

    async def trigger_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/trigger."""
        await self._run(Endpoints.group_action(group_id, "trigger", {"subaccount": subaccount}))

    async def reset_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/reset."""
        await self._run(Endpoints.group_action(group_id, "reset", {"subaccount": subaccount}))

    async def delete_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """DELETE /portfolio/order_groups/{id}."""
        await self._run(Endpoints.group_action(group_id, "delete", {"subaccount": subaccount}))

    async def update_order_group_limit(self, group_id: str, contracts_limit: int, *,
                                       subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/limit."""
        body = UpdateOrderGroupLimitRequest(contracts_limit=contracts_limit).to_wire()
        await self._run(Endpoints.group_action(group_id, "limit", {"subaccount": subaccount},
                                                body))

    async def get_series(self, series_ticker: str) -> Series:
        """GET /series/{series_ticker}."""
        return await self._run(Endpoints.series(series_ticker))

    async def get_event(self, event_ticker: str, *, with_nested_markets: bool = False) -> Event:
        """GET /events/{event_ticker}."""
        return await self._run(Endpoints.event(event_ticker, with_nested_markets))

    async def get_market(self, ticker: str) -> Market:
        """GET /markets/{ticker}."""
        return await self._run(Endpoints.market(ticker))

    def iter_markets(
        self, *, event_ticker: str | None = None, series_ticker: str | None = None,
        status: str | None = None, tickers: list[str] | str | None = None,
        min_close_ts: int | None = None, max_close_ts: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Market]:
        """GET /markets with filters, every page."""
        params = {"event_ticker": event_ticker, "series_ticker": series_ticker, "status": status,
                  "tickers": csv_param(tickers), "min_close_ts": min_close_ts,
                  "max_close_ts": max_close_ts, "limit": limit}
        return self._iter(Endpoints.markets, params, parse_market)

    async def get_orderbook(self, ticker: str, *, depth: int | None = None,
                            grid: PriceGrid = CENT_GRID) -> Orderbook:
        """GET /markets/{ticker}/orderbook."""
        return await self._run(Endpoints.orderbook(ticker, depth, grid))

    async def get_orderbooks(self, tickers: list[str], *,
                             grid: PriceGrid = CENT_GRID) -> dict[str, Orderbook]:
        """GET /markets/orderbooks for up to 100 tickers: {ticker: book}."""
        return await self._run(Endpoints.orderbooks(tickers, grid))

    def iter_trades(self, *, ticker: str | None = None, min_ts: int | None = None,
                    max_ts: int | None = None,
                    grid: PriceGrid = CENT_GRID) -> AsyncIterator[Trade]:
        """GET /markets/trades, every page."""
        params = {"ticker": ticker, "min_ts": min_ts, "max_ts": max_ts}
        return self._iter(Endpoints.trades, params, lambda raw: parse_trade(raw, grid))

    async def get_balance(self, *, subaccount: int | None = None) -> Balance:
        """GET /portfolio/balance."""
        return await self._run(Endpoints.balance(subaccount))

    def iter_fills(self, *, ticker: str | None = None, order_id: str | None = None,
                   min_ts: int | None = None, max_ts: int | None = None,
                   grid: PriceGrid = CENT_GRID) -> AsyncIterator[Fill]:
        """GET /portfolio/fills, every page."""
        params = {"ticker": ticker, "order_id": order_id, "min_ts": min_ts, "max_ts": max_ts}
        return self._iter(Endpoints.fills, params, lambda raw: parse_fill(raw, grid))

    def iter_orders(self, *, ticker: str | None = None, event_ticker: str | None = None,
                    status: str | None = None, min_ts: int | None = None,
                    max_ts: int | None = None,
                    grid: PriceGrid = CENT_GRID) -> AsyncIterator[Order]:
        """GET /portfolio/orders, every page."""
        params = {"ticker": ticker, "event_ticker": event_ticker, "status": status,
                  "min_ts": min_ts, "max_ts": max_ts}
        return self._iter(Endpoints.orders, params, lambda raw: parse_order(raw, grid))

    async def get_order(self, order_id: str) -> Order:
        """GET /portfolio/orders/{order_id}."""
        return await self._run(Endpoints.order(order_id))

    async def find_order(self, ticker: str, client_order_id: str) -> Order | None:
        """Return our order on ``ticker`` with this ``client_order_id``, or None if absent."""
        async for order in self.iter_orders(ticker=ticker, grid=ANY_TICK_GRID):
            if order.client_order_id == client_order_id:
                return order
        return None

    async def create_order(self, request: CreateOrderV2Request) -> CreateOrderV2Response:
        """POST /portfolio/events/orders; duplicates and unknown outcomes resolve by lookup."""
        cid = request.client_order_id
        if not cid:
            raise ValueError("client_order_id: required for every create (idempotency key)")
        log.info("kalshi create ticker=%s side=%s count=%s price=%s client_order_id=%s",
                 request.ticker, request.side, request.count, request.price, cid)
        attempt = 0
        while True:
            try:
                return await self._run(Endpoints.create(request))
            except OrderAlreadyExists as exc:
                found = await self.find_order(request.ticker, cid)
                if found is None:
                    raise ProtocolError(f"409 for client_order_id {cid!r} but no such order",
                                        method="POST", path=exc.path, status=409) from exc
                return ack_from_order(found, request)
            except OutcomeUnknown as exc:
                await self._sleep(self._policy.delay(attempt, self._rng))
                try:
                    found = await self.find_order(request.ticker, cid)
                except TransientError as lookup_exc:
                    raise OutcomeUnknown(f"create outcome unknown and lookup failed: {lookup_exc}",
                                         method=exc.method, path=exc.path) from lookup_exc
                if found is not None:
                    return ack_from_order(found, request)
                if attempt >= self._policy.max_retries:
                    raise
                log.warning("kalshi create client_order_id=%s absent after %s; resending", cid,
                            type(exc).__name__)
                attempt += 1

    async def cancel_order(self, order_id: str, *, market_ticker: str | None = None,
                           subaccount: int | None = None) -> CancelOrderV2Response:
        """DELETE /portfolio/events/orders/{id}."""
        params = {"market_ticker": market_ticker, "subaccount": subaccount}
        return await self._run(Endpoints.cancel(order_id, params))

    async def amend_order(self, order_id: str, request: AmendOrderV2Request, *,
                          subaccount: int | None = None) -> AmendOrderV2Response:
        """POST /portfolio/events/orders/{id}/amend (not retried after sending)."""
        return await self._run(Endpoints.amend(order_id, request, subaccount))

    async def decrease_order(self, order_id: str,
                             request: DecreaseOrderV2Request) -> DecreaseOrderV2Response:
        """POST /portfolio/events/orders/{id}/decrease (not retried after sending)."""
        return await self._run(Endpoints.decrease(order_id, request))

    async def cancel_all_orders(self, *, subaccount: int | None = None) -> None:
        """DELETE /portfolio/events/orders (204)."""
        await self._run(Endpoints.cancel_all(subaccount))
