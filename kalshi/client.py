"""Kalshi Trade API v2 REST client: one method per endpoint, sync (``KalshiClient``) and async.

Invariants:
- Every response is checked against the exact success status of its endpoint (201 for creates, 204
  for cancel-all, 200 otherwise) and decoded by ``kalshi.wire``; a 2xx that is not the promised
  status or lacks the promised object raises ``ProtocolError``, never a silent success.
- Errors are translated exactly once, here, via ``kalshi.errors.classify_status``; transport
  failures become ``NetworkError`` (nothing was sent) or, for writes, ``OutcomeUnknown``.
- Reads retry transient errors with exponential backoff and full jitter (Kalshi sends no
  Retry-After). Writes are retried only when that cannot duplicate an effect: a 429 or a failed
  connection (not processed), cancels (idempotent), and a create whose ``client_order_id`` a lookup
  shows to be absent. A create that meets 409 ``order_already_exists`` or an unknown outcome is
  resolved by looking the order up by ``client_order_id``; it is never resent blindly.
- Nothing here knows whether the venue is Kalshi, its demo, or the paper exchange.

Keys and signatures are never logged (only method, path, status and order identifiers are).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from kalshi.async_client import AsyncKalshiClient
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
    "KalshiClient",
    "AsyncKalshiClient",
    "RetryPolicy",
    "DEFAULT_TIMEOUT_S",
    "ANY_TICK_GRID",
    "order_request",
]

log = logging.getLogger("kalshi.client")  # one logger name for the whole client

# ------------------------------------------------------------------------------------------------
# the synchronous client


class KalshiClient(ClientCore):
    """Synchronous client. ``base_url`` ends with /trade-api/v2 (prod, demo or paper)."""

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        limiter: RateLimiter | None = None,
        max_retries: int = 4,
        *,
        backoff: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        policy = backoff or RetryPolicy(max_retries=max_retries)
        super().__init__(limiter=limiter, policy=policy, rng=rng)
        self._sleep = sleep
        self._http = httpx.Client(base_url=base_url.rstrip("/"), auth=auth, transport=transport,
                                  timeout=httpx.Timeout(timeout), verify=tls_context(),
                                  headers={"Accept": "application/json"})

    def __enter__(self) -> KalshiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __repr__(self) -> str:
        return f"KalshiClient(base_url={str(self._http.base_url).rstrip('/')!r})"

    # -- machinery ------------------------------------------------------------------------------
    def _once(self, call: Call[T]) -> T:
        if self._limiter is not None:
            self._limiter.acquire(call.bucket, call.cost)
        request = self._http.build_request(call.method, call.path, **self._request_kwargs(call))
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise self._transport_error(call, exc) from exc
        return self._finish(call, response)

    def _run(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                return self._once(call)
            except KalshiError as exc:
                error, delay = self._disposition(call, exc, attempt)
                if delay is None:
                    if error is exc:
                        raise
                    raise error from exc
            self._sleep(delay)
            attempt += 1

    def _pages(self, make: Callable[[dict[str, Any]], Call[Page]],
               params: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            call = make(page_params(params, cursor))
            page = self._run(call)
            yield page.items
            cursor = next_cursor(call, page, seen)
            if cursor is None:
                return

    def _iter(self, make: Callable[[dict[str, Any]], Call[Page]], params: Mapping[str, Any],
              parse: Callable[[Any], T]) -> Iterator[T]:
        for items in self._pages(make, params):
            yield from (parse(item) for item in items)

    # -- exchange -------------------------------------------------------------------------------
    def get_exchange_status(self) -> ExchangeStatus:
        """GET /exchange/status."""
        return self._run(Endpoints.exchange_status())

    def get_exchange_schedule(self) -> ExchangeSchedule:
        """GET /exchange/schedule."""
        return self._run(Endpoints.exchange_schedule())

    # -- series, events, markets ----------------------------------------------------------------
    def get_series(self, series_ticker: str) -> Series:
        """GET /series/{series_ticker}."""
        return self._run(Endpoints.series(series_ticker))

    def get_series_list(self, *, category: str | None = None,
                        tags: str | None = None) -> list[Series]:
        """GET /series."""
        return self._run(Endpoints.series_list(category, tags))

    def get_event(self, event_ticker: str, *, with_nested_markets: bool = False) -> Event:
        """GET /events/{event_ticker} (markets from the response's ``markets`` list)."""
        return self._run(Endpoints.event(event_ticker, with_nested_markets))

    def iter_events(self, *, series_ticker: str | None = None, status: str | None = None,
                    with_nested_markets: bool | None = None, limit: int | None = None,
                    min_close_ts: int | None = None) -> Iterator[Event]:
        """GET /events, every page."""
        params = {"series_ticker": series_ticker, "status": status, "limit": limit,
                  "with_nested_markets": with_nested_markets, "min_close_ts": min_close_ts}
        return self._iter(Endpoints.events, params, parse_event)

    def get_market(self, ticker: str) -> Market:
        """GET /markets/{ticker}."""
        return self._run(Endpoints.market(ticker))

    def iter_markets(
        self, *, event_ticker: str | None = None, series_ticker: str | None = None,
        status: str | None = None, tickers: list[str] | str | None = None,
        min_close_ts: int | None = None, max_close_ts: int | None = None,
        limit: int | None = None,
    ) -> Iterator[Market]:
        """GET /markets with filters, every page (status: unopened|open|paused|closed|settled)."""
        params = {"event_ticker": event_ticker, "series_ticker": series_ticker, "status": status,
                  "tickers": csv_param(tickers), "min_close_ts": min_close_ts,
                  "max_close_ts": max_close_ts, "limit": limit}
        return self._iter(Endpoints.markets, params, parse_market)

    def get_markets(self, **filters: Any) -> list[Market]:
        """All markets matching the filters of ``iter_markets``."""
        return list(self.iter_markets(**filters))

    def get_orderbook(self, ticker: str, *, depth: int | None = None,
                      grid: PriceGrid = CENT_GRID) -> Orderbook:
        """GET /markets/{ticker}/orderbook (pass the market's ``price_grid`` if sub-penny)."""
        return self._run(Endpoints.orderbook(ticker, depth, grid))

    def get_orderbooks(self, tickers: list[str], *,
                       grid: PriceGrid = CENT_GRID) -> dict[str, Orderbook]:
        """GET /markets/orderbooks for up to 100 tickers: {ticker: book}."""
        return self._run(Endpoints.orderbooks(tickers, grid))

    def iter_trades(self, *, ticker: str | None = None, min_ts: int | None = None,
                    max_ts: int | None = None, limit: int | None = None,
                    grid: PriceGrid = CENT_GRID) -> Iterator[Trade]:
        """GET /markets/trades, every page (pass a sub-penny market's ``price_grid``)."""
        params = {"ticker": ticker, "min_ts": min_ts, "max_ts": max_ts, "limit": limit}
        return self._iter(Endpoints.trades, params, lambda raw: parse_trade(raw, grid))

    def get_candlesticks(self, series_ticker: str, ticker: str, *, start_ts: int, end_ts: int,
                         period_interval: int) -> list[Candlestick]:
        """GET /series/{series}/markets/{ticker}/candlesticks (period 1, 60 or 1440 minutes)."""
        if period_interval not in (1, 60, 1440):
            raise ValueError(f"period_interval: expected 1, 60 or 1440, got {period_interval}")
        params = {"start_ts": start_ts, "end_ts": end_ts, "period_interval": period_interval}
        return self._run(Endpoints.candlesticks(series_ticker, ticker, params, CENT_GRID))

    # -- historical -----------------------------------------------------------------------------
    def get_historical_cutoff(self) -> HistoricalCutoff:
        """GET /historical/cutoff."""
        return self._run(Endpoints.historical_cutoff())

    def get_historical_market(self, ticker: str) -> Market:
        """GET /historical/markets/{ticker}."""
        return self._run(Endpoints.market(ticker, historical=True))

    def iter_historical_markets(self, *, series_ticker: str | None = None,
                                event_ticker: str | None = None,
                                limit: int | None = None) -> Iterator[Market]:
        """GET /historical/markets, every page."""
        params = {"series_ticker": series_ticker, "event_ticker": event_ticker, "limit": limit}
        return self._iter(lambda p: Endpoints.markets(p, historical=True), params, parse_market)

    def get_historical_candlesticks(self, ticker: str, *, start_ts: int, end_ts: int,
                                    period_interval: int) -> list[Candlestick]:
        """GET /historical/markets/{ticker}/candlesticks."""
        params = {"start_ts": start_ts, "end_ts": end_ts, "period_interval": period_interval}
        return self._run(Endpoints.candlesticks(None, ticker, params, CENT_GRID))

    def iter_historical_trades(self, *, ticker: str | None = None, min_ts: int | None = None,
                               max_ts: int | None = None) -> Iterator[Trade]:
        """GET /historical/trades, every page."""
        params = {"ticker": ticker, "min_ts": min_ts, "max_ts": max_ts}
        return self._iter(lambda p: Endpoints.trades(p, historical=True), params, parse_trade)

    def iter_historical_orders(self, *, ticker: str | None = None) -> Iterator[Order]:
        """GET /historical/orders, every page."""
        return self._iter(lambda p: Endpoints.orders(p, historical=True), {"ticker": ticker},
                          parse_order)

    def iter_historical_fills(self, *, ticker: str | None = None) -> Iterator[Fill]:
        """GET /historical/fills, every page."""
        return self._iter(lambda p: Endpoints.fills(p, historical=True), {"ticker": ticker},
                          parse_fill)

    # -- portfolio ------------------------------------------------------------------------------
    def get_balance(self, *, subaccount: int | None = None) -> Balance:
        """GET /portfolio/balance."""
        return self._run(Endpoints.balance(subaccount))

    def get_positions(
        self, *, ticker: str | None = None, event_ticker: str | None = None,
        settlement_status: str | None = None, count_filter: str | None = None,
        subaccount: int | None = None,
    ) -> tuple[list[MarketPosition], list[EventPosition]]:
        """GET /portfolio/positions, every page: (market positions, event positions)."""
        params = {"ticker": ticker, "event_ticker": event_ticker, "subaccount": subaccount,
                  "settlement_status": settlement_status, "count_filter": count_filter}
        markets: list[MarketPosition] = []
        events: list[EventPosition] = []
        for items in self._pages(Endpoints.positions, params):
            m, e = split_positions(items)
            markets += m
            events += e
        return markets, events

    def iter_positions(self, **filters: Any) -> Iterator[MarketPosition]:
        """Market positions over every page (filters as ``get_positions``)."""
        return iter(self.get_positions(**filters)[0])

    def iter_fills(self, *, ticker: str | None = None, order_id: str | None = None,
                   min_ts: int | None = None, max_ts: int | None = None,
                   limit: int | None = None, grid: PriceGrid = CENT_GRID) -> Iterator[Fill]:
        """GET /portfolio/fills, every page."""
        params = {"ticker": ticker, "order_id": order_id, "min_ts": min_ts, "max_ts": max_ts,
                  "limit": limit}
        return self._iter(Endpoints.fills, params, lambda raw: parse_fill(raw, grid))

    def iter_settlements(self, *, ticker: str | None = None, event_ticker: str | None = None,
                         limit: int | None = None) -> Iterator[Settlement]:
        """GET /portfolio/settlements, every page."""
        params = {"ticker": ticker, "event_ticker": event_ticker, "limit": limit}
        return self._iter(Endpoints.settlements, params, parse_settlement)

    def iter_orders(self, *, ticker: str | None = None, event_ticker: str | None = None,
                    status: str | None = None, min_ts: int | None = None,
                    max_ts: int | None = None, limit: int | None = None,
                    grid: PriceGrid = CENT_GRID) -> Iterator[Order]:
        """GET /portfolio/orders, every page (status: resting|canceled|executed)."""
        params = {"ticker": ticker, "event_ticker": event_ticker, "status": status,
                  "min_ts": min_ts, "max_ts": max_ts, "limit": limit}
        return self._iter(Endpoints.orders, params, lambda raw: parse_order(raw, grid))

    def get_order(self, order_id: str) -> Order:
        """GET /portfolio/orders/{order_id}."""
        return self._run(Endpoints.order(order_id))

    def find_order(self, ticker: str, client_order_id: str) -> Order | None:
        """Return our order on ``ticker`` with this ``client_order_id``, or None if absent."""
        for order in self.iter_orders(ticker=ticker, grid=ANY_TICK_GRID):
            if order.client_order_id == client_order_id:
                return order
        return None

    # -- order writes ---------------------------------------------------------------------------
    def create_order(self, request: CreateOrderV2Request) -> CreateOrderV2Response:
        """POST /portfolio/events/orders; duplicates and unknown outcomes resolve by lookup."""
        cid = request.client_order_id
        if not cid:
            raise ValueError("client_order_id: required for every create (idempotency key)")
        log.info("kalshi create ticker=%s side=%s count=%s price=%s client_order_id=%s",
                 request.ticker, request.side, request.count, request.price, cid)
        attempt = 0
        while True:
            try:
                return self._run(Endpoints.create(request))
            except OrderAlreadyExists as exc:
                found = self.find_order(request.ticker, cid)
                if found is None:
                    raise ProtocolError(f"409 for client_order_id {cid!r} but no such order",
                                        method="POST", path=exc.path, status=409) from exc
                log.info("kalshi create client_order_id=%s already exists as %s", cid,
                         found.order_id)
                return ack_from_order(found, request)
            except OutcomeUnknown as exc:
                # give the venue time to make an accepted order visible, then look it up
                self._sleep(self._policy.delay(attempt, self._rng))
                found = self._lookup_after_unknown(request.ticker, cid, exc)
                if found is not None:
                    log.info("kalshi create client_order_id=%s was accepted as %s", cid,
                             found.order_id)
                    return ack_from_order(found, request)
                if attempt >= self._policy.max_retries:
                    raise
                log.warning("kalshi create client_order_id=%s absent after %s; resending", cid,
                            type(exc).__name__)
                attempt += 1

    def _lookup_after_unknown(self, ticker: str, cid: str, exc: OutcomeUnknown) -> Order | None:
        try:
            return self.find_order(ticker, cid)
        except TransientError as lookup_exc:
            raise OutcomeUnknown(f"create outcome unknown and lookup failed: {lookup_exc}",
                                 method=exc.method, path=exc.path) from lookup_exc

    def place_order(self, ticker: str, side: BookSide, count: int, price_cents: int, *,
                    client_order_id: str, **options: Any) -> CreateOrderV2Response:
        """Create a limit order from whole contracts and a YES price in cents."""
        return self.create_order(order_request(ticker, side, count, price_cents,
                                               client_order_id=client_order_id, **options))

    def batch_create_orders(self, orders: list[CreateOrderV2Request]) -> list[BatchCreateItem]:
        """POST /portfolio/events/orders/batched (results in request order; not auto-resolved)."""
        if any(not o.client_order_id for o in orders):
            raise ValueError("client_order_id: required on every order of a batch")
        return self._run(Endpoints.batch_create(BatchCreateOrdersV2Request(orders=tuple(orders))))

    def amend_order(self, order_id: str, request: AmendOrderV2Request, *,
                    subaccount: int | None = None) -> AmendOrderV2Response:
        """POST /portfolio/events/orders/{id}/amend (not retried after sending)."""
        return self._run(Endpoints.amend(order_id, request, subaccount))

    def decrease_order(self, order_id: str,
                       request: DecreaseOrderV2Request) -> DecreaseOrderV2Response:
        """POST /portfolio/events/orders/{id}/decrease (not retried after sending)."""
        return self._run(Endpoints.decrease(order_id, request))

    def cancel_order(self, order_id: str, *, market_ticker: str | None = None,
                     subaccount: int | None = None) -> CancelOrderV2Response:
        """DELETE /portfolio/events/orders/{id}."""
        params = {"market_ticker": market_ticker, "subaccount": subaccount}
        return self._run(Endpoints.cancel(order_id, params))

    def batch_cancel_orders(self, orders: list[BatchCancelOrder]) -> list[BatchCancelItem]:
        """DELETE /portfolio/events/orders/batched."""
        return self._run(Endpoints.batch_cancel(BatchCancelOrdersV2Request(orders=tuple(orders))))

    def cancel_all_orders(self, *, subaccount: int | None = None) -> None:
        """DELETE /portfolio/events/orders (204): every resting order, or one subaccount's."""
        self._run(Endpoints.cancel_all(subaccount))

    # -- order groups ---------------------------------------------------------------------------
    def create_order_group(self, contracts_limit: int, *,
                           subaccount: int | None = None) -> str:
        """POST /portfolio/order_groups/create; return the new group's id."""
        request = CreateOrderGroupRequest(contracts_limit=contracts_limit, subaccount=subaccount)
        return self._run(Endpoints.create_group(request))

    def get_order_group(self, group_id: str, *, subaccount: int | None = None) -> OrderGroup:
        """GET /portfolio/order_groups/{id}."""
        return self._run(Endpoints.group(group_id, subaccount))

    def list_order_groups(self, *, subaccount: int | None = None) -> list[OrderGroup]:
        """GET /portfolio/order_groups."""
        return self._run(Endpoints.groups(subaccount))

    def trigger_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/trigger: cancel its orders, block new ones."""
        self._run(Endpoints.group_action(group_id, "trigger", {"subaccount": subaccount}))

    def reset_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/reset."""
        self._run(Endpoints.group_action(group_id, "reset", {"subaccount": subaccount}))

    def delete_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """DELETE /portfolio/order_groups/{id}."""
        self._run(Endpoints.group_action(group_id, "delete", {"subaccount": subaccount}))

    def update_order_group_limit(self, group_id: str, contracts_limit: int, *,
                                 subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/limit."""
        body = UpdateOrderGroupLimitRequest(contracts_limit=contracts_limit).to_wire()
        self._run(Endpoints.group_action(group_id, "limit", {"subaccount": subaccount}, body))
