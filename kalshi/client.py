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

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Generic, Literal, TypeVar

import certifi
import httpx

from kalshi.errors import (
    KalshiError,
    NetworkError,
    OrderAlreadyExists,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
    ServerError,
    TransientError,
    WireFormatError,
    classify_status,
)
from kalshi.ratelimit import Bucket, RateLimiter, bucket_for, endpoint_cost
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
    PriceRange,
    SelfTradePrevention,
    Series,
    Settlement,
    TimeInForce,
    Trade,
    UpdateOrderGroupLimitRequest,
    parse_amend_response,
    parse_balance,
    parse_batch_cancel_item,
    parse_batch_create_item,
    parse_cancel_response,
    parse_candlestick,
    parse_create_order_response,
    parse_decrease_response,
    parse_event,
    parse_event_position,
    parse_exchange_schedule,
    parse_exchange_status,
    parse_fill,
    parse_historical_cutoff,
    parse_market,
    parse_market_position,
    parse_order,
    parse_order_group,
    parse_orderbook,
    parse_page,
    parse_series,
    parse_settlement,
    parse_trade,
    require_object,
)
from models.money import fp_from_contracts, price_dollars

__all__ = [
    "KalshiClient",
    "AsyncKalshiClient",
    "RetryPolicy",
    "DEFAULT_TIMEOUT_S",
    "ANY_TICK_GRID",
    "order_request",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 10.0
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
Kind = Literal["read", "write_idempotent", "write_once"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""

    max_retries: int = 4
    base_s: float = 0.25
    cap_s: float = 8.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * (2**attempt)))


@dataclass(frozen=True)
class _Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    expect: int = 200
    kind: Kind = "read"
    params: Mapping[str, Any] | None = None
    body: Any = None
    items: int = 1
    bucket: Bucket = field(default="read")
    cost: int = 10


def _call(
    method: str,
    path: str,
    parse: Callable[[Any], T],
    *,
    expect: int = 200,
    kind: Kind = "read",
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    items: int = 1,
) -> _Call[T]:
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    return _Call(
        method=method, path=path, parse=parse, expect=expect, kind=kind, params=clean, body=body,
        items=items, bucket=bucket_for(method, path), cost=endpoint_cost(method, path, items=items),
    )


def _field(key: str, parser: Callable[[Any], T]) -> Callable[[Any], T]:
    # "a 2xx without the expected object" -> WireFormatError (a ProtocolError) naming the key
    def parse(body: Any) -> T:
        return parser(require_object(body, "response").get(key))

    return parse


def _empty_object(body: Any) -> None:
    require_object(body, "response")


def _no_body(body: Any) -> None:
    return None


def _csv(values: str | list[str] | tuple[str, ...] | None) -> str | None:
    if values is None or isinstance(values, str):
        return values
    return ",".join(values)


# the finest tick Kalshi quotes ($0.0001): a lookup by client_order_id must not fail on the grid
ANY_TICK_GRID = PriceGrid(ranges=(PriceRange(start=Decimal(0), end=Decimal(1),
                                             step=Decimal("0.0001")),))


@lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    # loading the CA bundle costs ~0.2 s; share one verifying context across clients
    return ssl.create_default_context(cafile=certifi.where())


def order_request(
    ticker: str,
    side: BookSide,
    count: int,
    price_cents: int,
    *,
    client_order_id: str,
    time_in_force: TimeInForce = "good_till_canceled",
    self_trade_prevention_type: SelfTradePrevention = "taker_at_cross",
    expiration_ts: int | None = None,
    post_only: bool | None = None,
    reduce_only: bool | None = None,
    order_group_id: str | None = None,
    subaccount: int | None = None,
    cancel_order_on_pause: bool | None = None,
) -> CreateOrderV2Request:
    """Build a V2 create request from whole contracts and a YES price in cents."""
    if not client_order_id:
        raise ValueError("client_order_id: required for every create (idempotency key)")
    return CreateOrderV2Request(
        ticker=ticker, side=side, count=fp_from_contracts(count), price=price_dollars(price_cents),
        time_in_force=time_in_force, self_trade_prevention_type=self_trade_prevention_type,
        client_order_id=client_order_id, expiration_time=expiration_ts, post_only=post_only,
        reduce_only=reduce_only, order_group_id=order_group_id, subaccount=subaccount,
        cancel_order_on_pause=cancel_order_on_pause,
    )


def _ack_from_order(order: Order, request: CreateOrderV2Request) -> CreateOrderV2Response:
    # the id must name *this* order: another ticker or side means a reused client_order_id
    if order.ticker != request.ticker or order.book_side != request.side:
        raise OrderAlreadyExists(
            f"client_order_id {order.client_order_id!r} belongs to order {order.order_id} "
            f"({order.ticker} {order.book_side}), not to {request.ticker} {request.side}",
            method="POST", path="/portfolio/events/orders", code="client_order_id_reused")
    if order.yes_price != Decimal(request.price) or (
        order.initial_count is not None and order.initial_count != Decimal(request.count)
    ):
        log.warning("kalshi create client_order_id=%s found as %s at %s x %s, asked %s x %s "
                    "(amended since?)", order.client_order_id, order.order_id, order.yes_price,
                    order.initial_count, request.price, request.count)
    return CreateOrderV2Response(
        order_id=order.order_id, client_order_id=order.client_order_id,
        fill_count=order.fill_count, remaining_count=order.remaining_count,
        average_fill_price=None, average_fee_paid=None, ts_ms=None, resolved_by_lookup=True,
    )


# ------------------------------------------------------------------------------------------------
# endpoint definitions, shared by the sync and async clients


class _Endpoints:
    """Builds one ``_Call`` per endpoint; paths are relative to the base URL (/trade-api/v2)."""

    # exchange
    @staticmethod
    def exchange_status() -> _Call[ExchangeStatus]:
        return _call("GET", "/exchange/status", parse_exchange_status)

    @staticmethod
    def exchange_schedule() -> _Call[ExchangeSchedule]:
        return _call("GET", "/exchange/schedule", parse_exchange_schedule)

    # series, events, markets
    @staticmethod
    def series(ticker: str) -> _Call[Series]:
        return _call("GET", f"/series/{ticker}", _field("series", parse_series))

    @staticmethod
    def series_list(category: str | None, tags: str | None) -> _Call[list[Series]]:
        def parse(body: Any) -> list[Series]:
            page = parse_page(body, "series", cursor_required=False)
            return [parse_series(s) for s in page.items]

        return _call("GET", "/series", parse, params={"category": category, "tags": tags})

    @staticmethod
    def event(event_ticker: str, with_nested_markets: bool) -> _Call[Event]:
        def parse(body: Any) -> Event:
            obj = require_object(body, "response")
            return parse_event(obj.get("event"), obj.get("markets"))

        return _call("GET", f"/events/{event_ticker}", parse,
                     params={"with_nested_markets": with_nested_markets or None})

    @staticmethod
    def events(params: Mapping[str, Any]) -> _Call[Page]:
        return _call("GET", "/events", lambda b: parse_page(b, "events"), params=params)

    @staticmethod
    def market(ticker: str, historical: bool = False) -> _Call[Market]:
        prefix = "/historical" if historical else ""
        return _call("GET", f"{prefix}/markets/{ticker}", _field("market", parse_market))

    @staticmethod
    def markets(params: Mapping[str, Any], historical: bool = False) -> _Call[Page]:
        prefix = "/historical" if historical else ""
        return _call("GET", f"{prefix}/markets", lambda b: parse_page(b, "markets"), params=params)

    @staticmethod
    def orderbook(ticker: str, depth: int | None, grid: PriceGrid) -> _Call[Orderbook]:
        return _call("GET", f"/markets/{ticker}/orderbook", lambda b: parse_orderbook(b, grid),
                     params={"depth": depth})

    @staticmethod
    def orderbooks(tickers: list[str], grid: PriceGrid) -> _Call[dict[str, Orderbook]]:
        def parse(body: Any) -> dict[str, Orderbook]:
            page = parse_page(body, "orderbooks", cursor_required=False)
            books: dict[str, Orderbook] = {}
            for i, item in enumerate(page.items):
                obj = require_object(item, f"orderbooks[{i}]")
                ticker = obj.get("ticker")
                if not isinstance(ticker, str):
                    raise ProtocolError(f"orderbooks[{i}].ticker: expected a string, "
                                        f"got {ticker!r}")
                books[ticker] = parse_orderbook(obj, grid)
            return books

        if not 1 <= len(tickers) <= 100:
            raise ValueError(f"tickers: expected 1..100 tickers, got {len(tickers)}")
        # an array parameter: sent "multi" style, tickers=A&tickers=B
        return _call("GET", "/markets/orderbooks", parse, params={"tickers": list(tickers)})

    @staticmethod
    def trades(params: Mapping[str, Any], historical: bool = False) -> _Call[Page]:
        path = "/historical/trades" if historical else "/markets/trades"
        return _call("GET", path, lambda b: parse_page(b, "trades"), params=params)

    @staticmethod
    def candlesticks(series_ticker: str | None, ticker: str, params: Mapping[str, Any],
                     grid: PriceGrid) -> _Call[list[Candlestick]]:
        def parse(body: Any) -> list[Candlestick]:
            page = parse_page(body, "candlesticks", cursor_required=False)
            return [parse_candlestick(c, grid) for c in page.items]

        if series_ticker is None:
            path = f"/historical/markets/{ticker}/candlesticks"
        else:
            path = f"/series/{series_ticker}/markets/{ticker}/candlesticks"
        return _call("GET", path, parse, params=params)

    @staticmethod
    def historical_cutoff() -> _Call[HistoricalCutoff]:
        return _call("GET", "/historical/cutoff", parse_historical_cutoff)

    # portfolio reads
    @staticmethod
    def balance(subaccount: int | None) -> _Call[Balance]:
        return _call("GET", "/portfolio/balance", parse_balance,
                     params={"subaccount": subaccount})

    @staticmethod
    def positions(params: Mapping[str, Any], historical: bool = False) -> _Call[Page]:
        def parse(body: Any) -> Page:
            obj = require_object(body, "positions response")
            markets = parse_page(obj, "market_positions", cursor_required=False)
            events = parse_page({"event_positions": obj.get("event_positions", [])},
                                "event_positions", cursor_required=False)
            items = tuple(("m", m) for m in markets.items) + tuple(("e", e) for e in events.items)
            return Page(items=items, cursor=markets.cursor)

        path = "/historical/positions" if historical else "/portfolio/positions"
        return _call("GET", path, parse, params=params)

    @staticmethod
    def fills(params: Mapping[str, Any], historical: bool = False) -> _Call[Page]:
        path = "/historical/fills" if historical else "/portfolio/fills"
        return _call("GET", path, lambda b: parse_page(b, "fills"), params=params)

    @staticmethod
    def settlements(params: Mapping[str, Any]) -> _Call[Page]:
        return _call("GET", "/portfolio/settlements",
                     lambda b: parse_page(b, "settlements", cursor_required=False), params=params)

    @staticmethod
    def orders(params: Mapping[str, Any], historical: bool = False) -> _Call[Page]:
        path = "/historical/orders" if historical else "/portfolio/orders"
        return _call("GET", path, lambda b: parse_page(b, "orders"), params=params)

    @staticmethod
    def order(order_id: str) -> _Call[Order]:
        return _call("GET", f"/portfolio/orders/{order_id}", _field("order", parse_order))

    # order writes (V2)
    @staticmethod
    def create(request: CreateOrderV2Request) -> _Call[CreateOrderV2Response]:
        return _call("POST", "/portfolio/events/orders", parse_create_order_response,
                     expect=201, kind="write_once", body=request.to_wire())

    @staticmethod
    def batch_create(request: BatchCreateOrdersV2Request) -> _Call[list[BatchCreateItem]]:
        def parse(body: Any) -> list[BatchCreateItem]:
            page = parse_page(body, "orders", cursor_required=False)
            if len(page.items) != len(request.orders):
                raise ProtocolError(f"batch create answered {len(page.items)} items for "
                                    f"{len(request.orders)} orders")
            return [parse_batch_create_item(i) for i in page.items]

        return _call("POST", "/portfolio/events/orders/batched", parse, expect=201,
                     kind="write_once", body=request.to_wire(), items=len(request.orders))

    @staticmethod
    def amend(order_id: str, request: AmendOrderV2Request,
              subaccount: int | None) -> _Call[AmendOrderV2Response]:
        return _call("POST", f"/portfolio/events/orders/{order_id}/amend", parse_amend_response,
                     kind="write_once", body=request.to_wire(), params={"subaccount": subaccount})

    @staticmethod
    def decrease(order_id: str, request: DecreaseOrderV2Request) -> _Call[DecreaseOrderV2Response]:
        return _call("POST", f"/portfolio/events/orders/{order_id}/decrease",
                     parse_decrease_response, kind="write_once", body=request.to_wire())

    @staticmethod
    def cancel(order_id: str, params: Mapping[str, Any]) -> _Call[CancelOrderV2Response]:
        return _call("DELETE", f"/portfolio/events/orders/{order_id}", parse_cancel_response,
                     kind="write_idempotent", params=params)

    @staticmethod
    def batch_cancel(request: BatchCancelOrdersV2Request) -> _Call[list[BatchCancelItem]]:
        def parse(body: Any) -> list[BatchCancelItem]:
            page = parse_page(body, "orders", cursor_required=False)
            return [parse_batch_cancel_item(i) for i in page.items]

        return _call("DELETE", "/portfolio/events/orders/batched", parse,
                     kind="write_idempotent", body=request.to_wire(), items=len(request.orders))

    @staticmethod
    def cancel_all(subaccount: int | None) -> _Call[None]:
        return _call("DELETE", "/portfolio/events/orders", _no_body, expect=204,
                     kind="write_idempotent", params={"subaccount": subaccount})

    # order groups
    @staticmethod
    def create_group(request: CreateOrderGroupRequest) -> _Call[str]:
        def parse(body: Any) -> str:
            group_id = require_object(body, "response").get("order_group_id")
            if not isinstance(group_id, str) or not group_id:
                raise ProtocolError(f"order group create answered no order_group_id: {body!r}")
            return group_id

        return _call("POST", "/portfolio/order_groups/create", parse, expect=201,
                     kind="write_once", body=request.to_wire())

    @staticmethod
    def group(group_id: str, subaccount: int | None) -> _Call[OrderGroup]:
        return _call("GET", f"/portfolio/order_groups/{group_id}",
                     lambda b: parse_order_group(b, group_id), params={"subaccount": subaccount})

    @staticmethod
    def groups(subaccount: int | None) -> _Call[list[OrderGroup]]:
        def parse(body: Any) -> list[OrderGroup]:
            obj = require_object(body, "response")
            page = parse_page({"order_groups": obj.get("order_groups") or []}, "order_groups",
                              cursor_required=False)
            return [parse_order_group(g) for g in page.items]

        return _call("GET", "/portfolio/order_groups", parse, params={"subaccount": subaccount})

    @staticmethod
    def group_action(group_id: str, action: Literal["trigger", "reset", "limit", "delete"],
                     params: Mapping[str, Any], body: Any = None) -> _Call[None]:
        if action == "delete":
            return _call("DELETE", f"/portfolio/order_groups/{group_id}", _empty_object,
                         kind="write_idempotent", params=params)
        return _call("PUT", f"/portfolio/order_groups/{group_id}/{action}", _empty_object,
                     kind="write_idempotent", params=params, body=body)


# ------------------------------------------------------------------------------------------------
# transport-independent pieces of one exchange of messages


class _Core:
    def __init__(self, *, limiter: RateLimiter | None, policy: RetryPolicy,
                 rng: random.Random | None) -> None:
        self._limiter = limiter
        self._policy = policy
        self._rng = rng or random.Random()

    @staticmethod
    def _request_kwargs(call: _Call[Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": dict(call.params or {})}
        if call.body is not None:
            kwargs["json"] = call.body
        elif call.method in ("POST", "PUT"):
            kwargs["content"] = b""
        return kwargs

    @staticmethod
    def _transport_error(call: _Call[Any], exc: httpx.TransportError) -> KalshiError:
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, _NOT_SENT) or call.kind == "read":
            return NetworkError(what, method=call.method, path=call.path)
        return OutcomeUnknown(f"sent, but no answer ({what})", method=call.method, path=call.path)

    @staticmethod
    def _finish(call: _Call[T], response: httpx.Response) -> T:
        status = response.status_code
        log.debug("kalshi %s %s -> %s", call.method, call.path, status)
        if status == call.expect:
            if status == 204:
                return call.parse(None)
            try:
                body = json.loads(response.content)
            except ValueError as exc:
                raise ProtocolError(f"malformed JSON: {response.content[:80]!r}",
                                    method=call.method, path=call.path, status=status) from exc
            try:
                return call.parse(body)
            except WireFormatError as exc:  # add where it came from; the field is already named
                exc.method, exc.path, exc.status = call.method, call.path, status
                raise
        if 200 <= status < 300:
            raise ProtocolError(f"expected HTTP {call.expect}, got {status}",
                                method=call.method, path=call.path, status=status)
        try:
            error_body = json.loads(response.content) if response.content else None
        except ValueError:
            error_body = None
        raise classify_status(status, error_body if isinstance(error_body, dict) else None,
                              method=call.method, path=call.path)

    def _disposition(self, call: _Call[Any], exc: KalshiError,
                     attempt: int) -> tuple[KalshiError, float | None]:
        """Return the error to raise and, if the call may be retried, the delay before it."""
        if call.kind == "write_once" and isinstance(exc, ServerError):
            exc = OutcomeUnknown(f"server error after sending: {exc.message}", method=call.method,
                                 path=call.path, status=exc.status, code=exc.code)
        if attempt >= self._policy.max_retries or not isinstance(exc, TransientError):
            return exc, None
        safe = (
            call.kind != "write_once"
            or isinstance(exc, RateLimited)
            or (isinstance(exc, NetworkError) and not isinstance(exc, OutcomeUnknown))
        )
        if not safe:
            return exc, None
        delay = self._policy.delay(attempt, self._rng)
        log.warning("kalshi %s %s: %s; retry %d in %.2fs", call.method, call.path,
                    type(exc).__name__, attempt + 1, delay)
        return exc, delay


def _page_params(base: Mapping[str, Any], cursor: str | None) -> dict[str, Any]:
    params = dict(base)
    if cursor:
        params["cursor"] = cursor
    return params


def _next_cursor(call: _Call[Any], page: Page, seen: set[str]) -> str | None:
    if not page.cursor:
        return None
    if page.cursor in seen:
        raise ProtocolError(f"pagination repeated cursor {page.cursor!r}", method=call.method,
                            path=call.path)
    seen.add(page.cursor)
    return page.cursor


def _identity(item: Any) -> Any:
    return item


def _split_positions(items: tuple[Any, ...]) -> tuple[list[MarketPosition], list[EventPosition]]:
    markets = [parse_market_position(raw) for tag, raw in items if tag == "m"]
    events = [parse_event_position(raw) for tag, raw in items if tag == "e"]
    return markets, events


# ------------------------------------------------------------------------------------------------
# the synchronous client


class KalshiClient(_Core):
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
                                  timeout=httpx.Timeout(timeout), verify=_tls(),
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
    def _once(self, call: _Call[T]) -> T:
        if self._limiter is not None:
            self._limiter.acquire(call.bucket, call.cost)
        request = self._http.build_request(call.method, call.path, **self._request_kwargs(call))
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise self._transport_error(call, exc) from exc
        return self._finish(call, response)

    def _run(self, call: _Call[T]) -> T:
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

    def _pages(self, make: Callable[[dict[str, Any]], _Call[Page]],
               params: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            call = make(_page_params(params, cursor))
            page = self._run(call)
            yield page.items
            cursor = _next_cursor(call, page, seen)
            if cursor is None:
                return

    def _iter(self, make: Callable[[dict[str, Any]], _Call[Page]], params: Mapping[str, Any],
              parse: Callable[[Any], T]) -> Iterator[T]:
        for items in self._pages(make, params):
            yield from (parse(item) for item in items)

    # -- exchange -------------------------------------------------------------------------------
    def get_exchange_status(self) -> ExchangeStatus:
        """GET /exchange/status."""
        return self._run(_Endpoints.exchange_status())

    def get_exchange_schedule(self) -> ExchangeSchedule:
        """GET /exchange/schedule."""
        return self._run(_Endpoints.exchange_schedule())

    # -- series, events, markets ----------------------------------------------------------------
    def get_series(self, series_ticker: str) -> Series:
        """GET /series/{series_ticker}."""
        return self._run(_Endpoints.series(series_ticker))

    def get_series_list(self, *, category: str | None = None,
                        tags: str | None = None) -> list[Series]:
        """GET /series."""
        return self._run(_Endpoints.series_list(category, tags))

    def get_event(self, event_ticker: str, *, with_nested_markets: bool = False) -> Event:
        """GET /events/{event_ticker} (markets from the response's ``markets`` list)."""
        return self._run(_Endpoints.event(event_ticker, with_nested_markets))

    def iter_events(self, *, series_ticker: str | None = None, status: str | None = None,
                    with_nested_markets: bool | None = None, limit: int | None = None,
                    min_close_ts: int | None = None) -> Iterator[Event]:
        """GET /events, every page."""
        params = {"series_ticker": series_ticker, "status": status, "limit": limit,
                  "with_nested_markets": with_nested_markets, "min_close_ts": min_close_ts}
        return self._iter(_Endpoints.events, params, parse_event)

    def get_market(self, ticker: str) -> Market:
        """GET /markets/{ticker}."""
        return self._run(_Endpoints.market(ticker))

    def iter_markets(
        self, *, event_ticker: str | None = None, series_ticker: str | None = None,
        status: str | None = None, tickers: list[str] | str | None = None,
        min_close_ts: int | None = None, max_close_ts: int | None = None,
        limit: int | None = None,
    ) -> Iterator[Market]:
        """GET /markets with filters, every page (status: unopened|open|paused|closed|settled)."""
        params = {"event_ticker": event_ticker, "series_ticker": series_ticker, "status": status,
                  "tickers": _csv(tickers), "min_close_ts": min_close_ts,
                  "max_close_ts": max_close_ts, "limit": limit}
        return self._iter(_Endpoints.markets, params, parse_market)

    def get_markets(self, **filters: Any) -> list[Market]:
        """All markets matching the filters of ``iter_markets``."""
        return list(self.iter_markets(**filters))

    def get_orderbook(self, ticker: str, *, depth: int | None = None,
                      grid: PriceGrid = CENT_GRID) -> Orderbook:
        """GET /markets/{ticker}/orderbook (pass the market's ``price_grid`` if sub-penny)."""
        return self._run(_Endpoints.orderbook(ticker, depth, grid))

    def get_orderbooks(self, tickers: list[str], *,
                       grid: PriceGrid = CENT_GRID) -> dict[str, Orderbook]:
        """GET /markets/orderbooks for up to 100 tickers: {ticker: book}."""
        return self._run(_Endpoints.orderbooks(tickers, grid))

    def iter_trades(self, *, ticker: str | None = None, min_ts: int | None = None,
                    max_ts: int | None = None, limit: int | None = None,
                    grid: PriceGrid = CENT_GRID) -> Iterator[Trade]:
        """GET /markets/trades, every page (pass a sub-penny market's ``price_grid``)."""
        params = {"ticker": ticker, "min_ts": min_ts, "max_ts": max_ts, "limit": limit}
        return self._iter(_Endpoints.trades, params, lambda raw: parse_trade(raw, grid))

    def get_candlesticks(self, series_ticker: str, ticker: str, *, start_ts: int, end_ts: int,
                         period_interval: int) -> list[Candlestick]:
        """GET /series/{series}/markets/{ticker}/candlesticks (period 1, 60 or 1440 minutes)."""
        if period_interval not in (1, 60, 1440):
            raise ValueError(f"period_interval: expected 1, 60 or 1440, got {period_interval}")
        params = {"start_ts": start_ts, "end_ts": end_ts, "period_interval": period_interval}
        return self._run(_Endpoints.candlesticks(series_ticker, ticker, params, CENT_GRID))

    # -- historical -----------------------------------------------------------------------------
    def get_historical_cutoff(self) -> HistoricalCutoff:
        """GET /historical/cutoff."""
        return self._run(_Endpoints.historical_cutoff())

    def get_historical_market(self, ticker: str) -> Market:
        """GET /historical/markets/{ticker}."""
        return self._run(_Endpoints.market(ticker, historical=True))

    def iter_historical_markets(self, *, series_ticker: str | None = None,
                                event_ticker: str | None = None,
                                limit: int | None = None) -> Iterator[Market]:
        """GET /historical/markets, every page."""
        params = {"series_ticker": series_ticker, "event_ticker": event_ticker, "limit": limit}
        return self._iter(lambda p: _Endpoints.markets(p, historical=True), params, parse_market)

    def get_historical_candlesticks(self, ticker: str, *, start_ts: int, end_ts: int,
                                    period_interval: int) -> list[Candlestick]:
        """GET /historical/markets/{ticker}/candlesticks."""
        params = {"start_ts": start_ts, "end_ts": end_ts, "period_interval": period_interval}
        return self._run(_Endpoints.candlesticks(None, ticker, params, CENT_GRID))

    def iter_historical_trades(self, *, ticker: str | None = None, min_ts: int | None = None,
                               max_ts: int | None = None) -> Iterator[Trade]:
        """GET /historical/trades, every page."""
        params = {"ticker": ticker, "min_ts": min_ts, "max_ts": max_ts}
        return self._iter(lambda p: _Endpoints.trades(p, historical=True), params, parse_trade)

    def iter_historical_orders(self, *, ticker: str | None = None) -> Iterator[Order]:
        """GET /historical/orders, every page."""
        return self._iter(lambda p: _Endpoints.orders(p, historical=True), {"ticker": ticker},
                          parse_order)

    def iter_historical_fills(self, *, ticker: str | None = None) -> Iterator[Fill]:
        """GET /historical/fills, every page."""
        return self._iter(lambda p: _Endpoints.fills(p, historical=True), {"ticker": ticker},
                          parse_fill)

    # -- portfolio ------------------------------------------------------------------------------
    def get_balance(self, *, subaccount: int | None = None) -> Balance:
        """GET /portfolio/balance."""
        return self._run(_Endpoints.balance(subaccount))

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
        for items in self._pages(_Endpoints.positions, params):
            m, e = _split_positions(items)
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
        return self._iter(_Endpoints.fills, params, lambda raw: parse_fill(raw, grid))

    def iter_settlements(self, *, ticker: str | None = None, event_ticker: str | None = None,
                         limit: int | None = None) -> Iterator[Settlement]:
        """GET /portfolio/settlements, every page."""
        params = {"ticker": ticker, "event_ticker": event_ticker, "limit": limit}
        return self._iter(_Endpoints.settlements, params, parse_settlement)

    def iter_orders(self, *, ticker: str | None = None, event_ticker: str | None = None,
                    status: str | None = None, min_ts: int | None = None,
                    max_ts: int | None = None, limit: int | None = None,
                    grid: PriceGrid = CENT_GRID) -> Iterator[Order]:
        """GET /portfolio/orders, every page (status: resting|canceled|executed)."""
        params = {"ticker": ticker, "event_ticker": event_ticker, "status": status,
                  "min_ts": min_ts, "max_ts": max_ts, "limit": limit}
        return self._iter(_Endpoints.orders, params, lambda raw: parse_order(raw, grid))

    def get_order(self, order_id: str) -> Order:
        """GET /portfolio/orders/{order_id}."""
        return self._run(_Endpoints.order(order_id))

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
                return self._run(_Endpoints.create(request))
            except OrderAlreadyExists as exc:
                found = self.find_order(request.ticker, cid)
                if found is None:
                    raise ProtocolError(f"409 for client_order_id {cid!r} but no such order",
                                        method="POST", path=exc.path, status=409) from exc
                log.info("kalshi create client_order_id=%s already exists as %s", cid,
                         found.order_id)
                return _ack_from_order(found, request)
            except OutcomeUnknown as exc:
                # give the venue time to make an accepted order visible, then look it up
                self._sleep(self._policy.delay(attempt, self._rng))
                found = self._lookup_after_unknown(request.ticker, cid, exc)
                if found is not None:
                    log.info("kalshi create client_order_id=%s was accepted as %s", cid,
                             found.order_id)
                    return _ack_from_order(found, request)
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
        return self._run(_Endpoints.batch_create(BatchCreateOrdersV2Request(orders=tuple(orders))))

    def amend_order(self, order_id: str, request: AmendOrderV2Request, *,
                    subaccount: int | None = None) -> AmendOrderV2Response:
        """POST /portfolio/events/orders/{id}/amend (not retried after sending)."""
        return self._run(_Endpoints.amend(order_id, request, subaccount))

    def decrease_order(self, order_id: str,
                       request: DecreaseOrderV2Request) -> DecreaseOrderV2Response:
        """POST /portfolio/events/orders/{id}/decrease (not retried after sending)."""
        return self._run(_Endpoints.decrease(order_id, request))

    def cancel_order(self, order_id: str, *, market_ticker: str | None = None,
                     subaccount: int | None = None) -> CancelOrderV2Response:
        """DELETE /portfolio/events/orders/{id}."""
        params = {"market_ticker": market_ticker, "subaccount": subaccount}
        return self._run(_Endpoints.cancel(order_id, params))

    def batch_cancel_orders(self, orders: list[BatchCancelOrder]) -> list[BatchCancelItem]:
        """DELETE /portfolio/events/orders/batched."""
        return self._run(_Endpoints.batch_cancel(BatchCancelOrdersV2Request(orders=tuple(orders))))

    def cancel_all_orders(self, *, subaccount: int | None = None) -> None:
        """DELETE /portfolio/events/orders (204): every resting order, or one subaccount's."""
        self._run(_Endpoints.cancel_all(subaccount))

    # -- order groups ---------------------------------------------------------------------------
    def create_order_group(self, contracts_limit: int, *,
                           subaccount: int | None = None) -> str:
        """POST /portfolio/order_groups/create; return the new group's id."""
        request = CreateOrderGroupRequest(contracts_limit=contracts_limit, subaccount=subaccount)
        return self._run(_Endpoints.create_group(request))

    def get_order_group(self, group_id: str, *, subaccount: int | None = None) -> OrderGroup:
        """GET /portfolio/order_groups/{id}."""
        return self._run(_Endpoints.group(group_id, subaccount))

    def list_order_groups(self, *, subaccount: int | None = None) -> list[OrderGroup]:
        """GET /portfolio/order_groups."""
        return self._run(_Endpoints.groups(subaccount))

    def trigger_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/trigger: cancel its orders, block new ones."""
        self._run(_Endpoints.group_action(group_id, "trigger", {"subaccount": subaccount}))

    def reset_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/reset."""
        self._run(_Endpoints.group_action(group_id, "reset", {"subaccount": subaccount}))

    def delete_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """DELETE /portfolio/order_groups/{id}."""
        self._run(_Endpoints.group_action(group_id, "delete", {"subaccount": subaccount}))

    def update_order_group_limit(self, group_id: str, contracts_limit: int, *,
                                 subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/limit."""
        body = UpdateOrderGroupLimitRequest(contracts_limit=contracts_limit).to_wire()
        self._run(_Endpoints.group_action(group_id, "limit", {"subaccount": subaccount}, body))


# ------------------------------------------------------------------------------------------------
# the asynchronous client (same endpoints, same rules)


async def _async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class AsyncKalshiClient(_Core):
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
                                       verify=_tls(), headers={"Accept": "application/json"})

    async def __aenter__(self) -> AsyncKalshiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"AsyncKalshiClient(base_url={str(self._http.base_url).rstrip('/')!r})"

    async def _once(self, call: _Call[T]) -> T:
        if self._limiter is not None:
            await self._limiter.acquire_async(call.bucket, call.cost)
        request = self._http.build_request(call.method, call.path, **self._request_kwargs(call))
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise self._transport_error(call, exc) from exc
        return self._finish(call, response)

    async def _run(self, call: _Call[T]) -> T:
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

    async def _iter(self, make: Callable[[dict[str, Any]], _Call[Page]],
                    params: Mapping[str, Any], parse: Callable[[Any], T]) -> AsyncIterator[T]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            call = make(_page_params(params, cursor))
            page = await self._run(call)
            for item in page.items:
                yield parse(item)
            cursor = _next_cursor(call, page, seen)
            if cursor is None:
                return

    async def get_exchange_status(self) -> ExchangeStatus:
        """GET /exchange/status."""
        return await self._run(_Endpoints.exchange_status())

    async def get_exchange_schedule(self) -> ExchangeSchedule:
        """GET /exchange/schedule."""
        return await self._run(_Endpoints.exchange_schedule())

    async def get_series_list(self, *, category: str | None = None,
                              tags: str | None = None) -> list[Series]:
        """GET /series."""
        return await self._run(_Endpoints.series_list(category, tags))

    def iter_events(self, *, series_ticker: str | None = None, status: str | None = None,
                    with_nested_markets: bool | None = None,
                    limit: int | None = None) -> AsyncIterator[Event]:
        """GET /events, every page."""
        params = {"series_ticker": series_ticker, "status": status, "limit": limit,
                  "with_nested_markets": with_nested_markets}
        return self._iter(_Endpoints.events, params, parse_event)

    async def get_candlesticks(self, series_ticker: str, ticker: str, *, start_ts: int,
                               end_ts: int, period_interval: int) -> list[Candlestick]:
        """GET /series/{series}/markets/{ticker}/candlesticks."""
        if period_interval not in (1, 60, 1440):
            raise ValueError(f"period_interval: expected 1, 60 or 1440, got {period_interval}")
        params = {"start_ts": start_ts, "end_ts": end_ts, "period_interval": period_interval}
        return await self._run(_Endpoints.candlesticks(series_ticker, ticker, params, CENT_GRID))

    async def get_historical_cutoff(self) -> HistoricalCutoff:
        """GET /historical/cutoff."""
        return await self._run(_Endpoints.historical_cutoff())

    async def get_historical_market(self, ticker: str) -> Market:
        """GET /historical/markets/{ticker}."""
        return await self._run(_Endpoints.market(ticker, historical=True))

    def iter_historical_markets(self, *, series_ticker: str | None = None,
                                event_ticker: str | None = None) -> AsyncIterator[Market]:
        """GET /historical/markets, every page."""
        params = {"series_ticker": series_ticker, "event_ticker": event_ticker}
        return self._iter(lambda p: _Endpoints.markets(p, historical=True), params, parse_market)

    def iter_historical_trades(self, *, ticker: str | None = None) -> AsyncIterator[Trade]:
        """GET /historical/trades, every page."""
        return self._iter(lambda p: _Endpoints.trades(p, historical=True), {"ticker": ticker},
                          parse_trade)

    def iter_historical_orders(self, *, ticker: str | None = None) -> AsyncIterator[Order]:
        """GET /historical/orders, every page."""
        return self._iter(lambda p: _Endpoints.orders(p, historical=True), {"ticker": ticker},
                          parse_order)

    def iter_historical_fills(self, *, ticker: str | None = None) -> AsyncIterator[Fill]:
        """GET /historical/fills, every page."""
        return self._iter(lambda p: _Endpoints.fills(p, historical=True), {"ticker": ticker},
                          parse_fill)

    async def get_positions(
        self, *, ticker: str | None = None, event_ticker: str | None = None,
        settlement_status: str | None = None, subaccount: int | None = None,
    ) -> tuple[list[MarketPosition], list[EventPosition]]:
        """GET /portfolio/positions, every page: (market positions, event positions)."""
        params = {"ticker": ticker, "event_ticker": event_ticker, "subaccount": subaccount,
                  "settlement_status": settlement_status}
        raw = [item async for item in self._iter(_Endpoints.positions, params, _identity)]
        markets, events = _split_positions(tuple(raw))
        return markets, events

    def iter_settlements(self, *, ticker: str | None = None,
                         event_ticker: str | None = None) -> AsyncIterator[Settlement]:
        """GET /portfolio/settlements, every page."""
        return self._iter(_Endpoints.settlements, {"ticker": ticker, "event_ticker": event_ticker},
                          parse_settlement)

    async def batch_create_orders(
        self, orders: list[CreateOrderV2Request]
    ) -> list[BatchCreateItem]:
        """POST /portfolio/events/orders/batched (results in request order; not auto-resolved)."""
        if any(not o.client_order_id for o in orders):
            raise ValueError("client_order_id: required on every order of a batch")
        request = BatchCreateOrdersV2Request(orders=tuple(orders))
        return await self._run(_Endpoints.batch_create(request))

    async def batch_cancel_orders(self, orders: list[BatchCancelOrder]) -> list[BatchCancelItem]:
        """DELETE /portfolio/events/orders/batched."""
        request = BatchCancelOrdersV2Request(orders=tuple(orders))
        return await self._run(_Endpoints.batch_cancel(request))

    async def place_order(self, ticker: str, side: BookSide, count: int, price_cents: int, *,
                          client_order_id: str, **options: Any) -> CreateOrderV2Response:
        """Create a limit order from whole contracts and a YES price in cents."""
        return await self.create_order(order_request(ticker, side, count, price_cents,
                                                     client_order_id=client_order_id, **options))

    async def create_order_group(self, contracts_limit: int, *,
                                 subaccount: int | None = None) -> str:
        """POST /portfolio/order_groups/create; return the new group's id."""
        request = CreateOrderGroupRequest(contracts_limit=contracts_limit, subaccount=subaccount)
        return await self._run(_Endpoints.create_group(request))

    async def get_order_group(self, group_id: str, *,
                              subaccount: int | None = None) -> OrderGroup:
        """GET /portfolio/order_groups/{id}."""
        return await self._run(_Endpoints.group(group_id, subaccount))

    async def list_order_groups(self, *, subaccount: int | None = None) -> list[OrderGroup]:
        """GET /portfolio/order_groups."""
        return await self._run(_Endpoints.groups(subaccount))

    async def trigger_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/trigger."""
        await self._run(_Endpoints.group_action(group_id, "trigger", {"subaccount": subaccount}))

    async def reset_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/reset."""
        await self._run(_Endpoints.group_action(group_id, "reset", {"subaccount": subaccount}))

    async def delete_order_group(self, group_id: str, *, subaccount: int | None = None) -> None:
        """DELETE /portfolio/order_groups/{id}."""
        await self._run(_Endpoints.group_action(group_id, "delete", {"subaccount": subaccount}))

    async def update_order_group_limit(self, group_id: str, contracts_limit: int, *,
                                       subaccount: int | None = None) -> None:
        """PUT /portfolio/order_groups/{id}/limit."""
        body = UpdateOrderGroupLimitRequest(contracts_limit=contracts_limit).to_wire()
        await self._run(_Endpoints.group_action(group_id, "limit", {"subaccount": subaccount},
                                                body))

    async def get_series(self, series_ticker: str) -> Series:
        """GET /series/{series_ticker}."""
        return await self._run(_Endpoints.series(series_ticker))

    async def get_event(self, event_ticker: str, *, with_nested_markets: bool = False) -> Event:
        """GET /events/{event_ticker}."""
        return await self._run(_Endpoints.event(event_ticker, with_nested_markets))

    async def get_market(self, ticker: str) -> Market:
        """GET /markets/{ticker}."""
        return await self._run(_Endpoints.market(ticker))

    def iter_markets(
        self, *, event_ticker: str | None = None, series_ticker: str | None = None,
        status: str | None = None, tickers: list[str] | str | None = None,
        min_close_ts: int | None = None, max_close_ts: int | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Market]:
        """GET /markets with filters, every page."""
        params = {"event_ticker": event_ticker, "series_ticker": series_ticker, "status": status,
                  "tickers": _csv(tickers), "min_close_ts": min_close_ts,
                  "max_close_ts": max_close_ts, "limit": limit}
        return self._iter(_Endpoints.markets, params, parse_market)

    async def get_orderbook(self, ticker: str, *, depth: int | None = None,
                            grid: PriceGrid = CENT_GRID) -> Orderbook:
        """GET /markets/{ticker}/orderbook."""
        return await self._run(_Endpoints.orderbook(ticker, depth, grid))

    async def get_orderbooks(self, tickers: list[str], *,
                             grid: PriceGrid = CENT_GRID) -> dict[str, Orderbook]:
        """GET /markets/orderbooks for up to 100 tickers: {ticker: book}."""
        return await self._run(_Endpoints.orderbooks(tickers, grid))

    def iter_trades(self, *, ticker: str | None = None, min_ts: int | None = None,
                    max_ts: int | None = None,
                    grid: PriceGrid = CENT_GRID) -> AsyncIterator[Trade]:
        """GET /markets/trades, every page."""
        params = {"ticker": ticker, "min_ts": min_ts, "max_ts": max_ts}
        return self._iter(_Endpoints.trades, params, lambda raw: parse_trade(raw, grid))

    async def get_balance(self, *, subaccount: int | None = None) -> Balance:
        """GET /portfolio/balance."""
        return await self._run(_Endpoints.balance(subaccount))

    def iter_fills(self, *, ticker: str | None = None, order_id: str | None = None,
                   min_ts: int | None = None, max_ts: int | None = None,
                   grid: PriceGrid = CENT_GRID) -> AsyncIterator[Fill]:
        """GET /portfolio/fills, every page."""
        params = {"ticker": ticker, "order_id": order_id, "min_ts": min_ts, "max_ts": max_ts}
        return self._iter(_Endpoints.fills, params, lambda raw: parse_fill(raw, grid))

    def iter_orders(self, *, ticker: str | None = None, event_ticker: str | None = None,
                    status: str | None = None, min_ts: int | None = None,
                    max_ts: int | None = None,
                    grid: PriceGrid = CENT_GRID) -> AsyncIterator[Order]:
        """GET /portfolio/orders, every page."""
        params = {"ticker": ticker, "event_ticker": event_ticker, "status": status,
                  "min_ts": min_ts, "max_ts": max_ts}
        return self._iter(_Endpoints.orders, params, lambda raw: parse_order(raw, grid))

    async def get_order(self, order_id: str) -> Order:
        """GET /portfolio/orders/{order_id}."""
        return await self._run(_Endpoints.order(order_id))

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
                return await self._run(_Endpoints.create(request))
            except OrderAlreadyExists as exc:
                found = await self.find_order(request.ticker, cid)
                if found is None:
                    raise ProtocolError(f"409 for client_order_id {cid!r} but no such order",
                                        method="POST", path=exc.path, status=409) from exc
                return _ack_from_order(found, request)
            except OutcomeUnknown as exc:
                await self._sleep(self._policy.delay(attempt, self._rng))
                try:
                    found = await self.find_order(request.ticker, cid)
                except TransientError as lookup_exc:
                    raise OutcomeUnknown(f"create outcome unknown and lookup failed: {lookup_exc}",
                                         method=exc.method, path=exc.path) from lookup_exc
                if found is not None:
                    return _ack_from_order(found, request)
                if attempt >= self._policy.max_retries:
                    raise
                log.warning("kalshi create client_order_id=%s absent after %s; resending", cid,
                            type(exc).__name__)
                attempt += 1

    async def cancel_order(self, order_id: str, *, market_ticker: str | None = None,
                           subaccount: int | None = None) -> CancelOrderV2Response:
        """DELETE /portfolio/events/orders/{id}."""
        params = {"market_ticker": market_ticker, "subaccount": subaccount}
        return await self._run(_Endpoints.cancel(order_id, params))

    async def amend_order(self, order_id: str, request: AmendOrderV2Request, *,
                          subaccount: int | None = None) -> AmendOrderV2Response:
        """POST /portfolio/events/orders/{id}/amend (not retried after sending)."""
        return await self._run(_Endpoints.amend(order_id, request, subaccount))

    async def decrease_order(self, order_id: str,
                             request: DecreaseOrderV2Request) -> DecreaseOrderV2Response:
        """POST /portfolio/events/orders/{id}/decrease (not retried after sending)."""
        return await self._run(_Endpoints.decrease(order_id, request))

    async def cancel_all_orders(self, *, subaccount: int | None = None) -> None:
        """DELETE /portfolio/events/orders (204)."""
        await self._run(_Endpoints.cancel_all(subaccount))
