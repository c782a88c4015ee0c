"""Endpoint table and request core shared by the sync and async Kalshi clients.

Invariant: each endpoint is described once (method, path, success status, parser, retry kind);
both clients execute the same descriptions, so they cannot drift apart.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
from collections.abc import Callable, Mapping
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
    AmendOrderV2Request,
    AmendOrderV2Response,
    Balance,
    BatchCancelItem,
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
    TimeInForce,
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
    parse_historical_cutoff,
    parse_market,
    parse_market_position,
    parse_order,
    parse_order_group,
    parse_orderbook,
    parse_page,
    parse_series,
    require_object,
)
from models.money import fp_from_contracts, price_dollars

__all__ = [
    "RetryPolicy",
    "Call",
    "Endpoints",
    "ClientCore",
    "DEFAULT_TIMEOUT_S",
    "ANY_TICK_GRID",
    "order_request",
    "ack_from_order",
    "csv_param",
    "next_cursor",
    "page_params",
    "split_positions",
    "tls_context",
    "identity",
    "T",
]

log = logging.getLogger("kalshi.client")  # one logger name for the whole client

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
class Call(Generic[T]):
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
) -> Call[T]:
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    return Call(
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


def csv_param(values: str | list[str] | tuple[str, ...] | None) -> str | None:
    if values is None or isinstance(values, str):
        return values
    return ",".join(values)


# the finest tick Kalshi quotes ($0.0001): a lookup by client_order_id must not fail on the grid
ANY_TICK_GRID = PriceGrid(ranges=(PriceRange(start=Decimal(0), end=Decimal(1),
                                             step=Decimal("0.0001")),))


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
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


def ack_from_order(order: Order, request: CreateOrderV2Request) -> CreateOrderV2Response:
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


class Endpoints:
    """Builds one ``Call`` per endpoint; paths are relative to the base URL (/trade-api/v2)."""

    # exchange
    @staticmethod
    def exchange_status() -> Call[ExchangeStatus]:
        return _call("GET", "/exchange/status", parse_exchange_status)

    @staticmethod
    def exchange_schedule() -> Call[ExchangeSchedule]:
        return _call("GET", "/exchange/schedule", parse_exchange_schedule)

    # series, events, markets
    @staticmethod
    def series(ticker: str) -> Call[Series]:
        return _call("GET", f"/series/{ticker}", _field("series", parse_series))

    @staticmethod
    def series_list(category: str | None, tags: str | None) -> Call[list[Series]]:
        def parse(body: Any) -> list[Series]:
            page = parse_page(body, "series", cursor_required=False)
            return [parse_series(s) for s in page.items]

        return _call("GET", "/series", parse, params={"category": category, "tags": tags})

    @staticmethod
    def event(event_ticker: str, with_nested_markets: bool) -> Call[Event]:
        def parse(body: Any) -> Event:
            obj = require_object(body, "response")
            return parse_event(obj.get("event"), obj.get("markets"))

        return _call("GET", f"/events/{event_ticker}", parse,
                     params={"with_nested_markets": with_nested_markets or None})

    @staticmethod
    def events(params: Mapping[str, Any]) -> Call[Page]:
        return _call("GET", "/events", lambda b: parse_page(b, "events"), params=params)

    @staticmethod
    def market(ticker: str, historical: bool = False) -> Call[Market]:
        prefix = "/historical" if historical else ""
        return _call("GET", f"{prefix}/markets/{ticker}", _field("market", parse_market))

    @staticmethod
    def markets(params: Mapping[str, Any], historical: bool = False) -> Call[Page]:
        prefix = "/historical" if historical else ""
        return _call("GET", f"{prefix}/markets", lambda b: parse_page(b, "markets"), params=params)

    @staticmethod
    def orderbook(ticker: str, depth: int | None, grid: PriceGrid) -> Call[Orderbook]:
        return _call("GET", f"/markets/{ticker}/orderbook", lambda b: parse_orderbook(b, grid),
                     params={"depth": depth})

    @staticmethod
    def orderbooks(tickers: list[str], grid: PriceGrid) -> Call[dict[str, Orderbook]]:
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
    def trades(params: Mapping[str, Any], historical: bool = False) -> Call[Page]:
        path = "/historical/trades" if historical else "/markets/trades"
        return _call("GET", path, lambda b: parse_page(b, "trades"), params=params)

    @staticmethod
    def candlesticks(series_ticker: str | None, ticker: str, params: Mapping[str, Any],
                     grid: PriceGrid) -> Call[list[Candlestick]]:
        def parse(body: Any) -> list[Candlestick]:
            page = parse_page(body, "candlesticks", cursor_required=False)
            return [parse_candlestick(c, grid) for c in page.items]

        if series_ticker is None:
            path = f"/historical/markets/{ticker}/candlesticks"
        else:
            path = f"/series/{series_ticker}/markets/{ticker}/candlesticks"
        return _call("GET", path, parse, params=params)

    @staticmethod
    def historical_cutoff() -> Call[HistoricalCutoff]:
        return _call("GET", "/historical/cutoff", parse_historical_cutoff)

    # portfolio reads
    @staticmethod
    def balance(subaccount: int | None) -> Call[Balance]:
        return _call("GET", "/portfolio/balance", parse_balance,
                     params={"subaccount": subaccount})

    @staticmethod
    def positions(params: Mapping[str, Any], historical: bool = False) -> Call[Page]:
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
    def fills(params: Mapping[str, Any], historical: bool = False) -> Call[Page]:
        path = "/historical/fills" if historical else "/portfolio/fills"
        return _call("GET", path, lambda b: parse_page(b, "fills"), params=params)

    @staticmethod
    def settlements(params: Mapping[str, Any]) -> Call[Page]:
        return _call("GET", "/portfolio/settlements",
                     lambda b: parse_page(b, "settlements", cursor_required=False), params=params)

    @staticmethod
    def orders(params: Mapping[str, Any], historical: bool = False) -> Call[Page]:
        path = "/historical/orders" if historical else "/portfolio/orders"
        return _call("GET", path, lambda b: parse_page(b, "orders"), params=params)

    @staticmethod
    def order(order_id: str) -> Call[Order]:
        return _call("GET", f"/portfolio/orders/{order_id}", _field("order", parse_order))

    # order writes (V2)
    @staticmethod
    def create(request: CreateOrderV2Request) -> Call[CreateOrderV2Response]:
        return _call("POST", "/portfolio/events/orders", parse_create_order_response,
                     expect=201, kind="write_once", body=request.to_wire())

    @staticmethod
    def batch_create(request: BatchCreateOrdersV2Request) -> Call[list[BatchCreateItem]]:
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
              subaccount: int | None) -> Call[AmendOrderV2Response]:
        return _call("POST", f"/portfolio/events/orders/{order_id}/amend", parse_amend_response,
                     kind="write_once", body=request.to_wire(), params={"subaccount": subaccount})

    @staticmethod
    def decrease(order_id: str, request: DecreaseOrderV2Request) -> Call[DecreaseOrderV2Response]:
        return _call("POST", f"/portfolio/events/orders/{order_id}/decrease",
                     parse_decrease_response, kind="write_once", body=request.to_wire())

    @staticmethod
    def cancel(order_id: str, params: Mapping[str, Any]) -> Call[CancelOrderV2Response]:
        return _call("DELETE", f"/portfolio/events/orders/{order_id}", parse_cancel_response,
                     kind="write_idempotent", params=params)

    @staticmethod
    def batch_cancel(request: BatchCancelOrdersV2Request) -> Call[list[BatchCancelItem]]:
        def parse(body: Any) -> list[BatchCancelItem]:
            page = parse_page(body, "orders", cursor_required=False)
            return [parse_batch_cancel_item(i) for i in page.items]

        return _call("DELETE", "/portfolio/events/orders/batched", parse,
                     kind="write_idempotent", body=request.to_wire(), items=len(request.orders))

    @staticmethod
    def cancel_all(subaccount: int | None) -> Call[None]:
        return _call("DELETE", "/portfolio/events/orders", _no_body, expect=204,
                     kind="write_idempotent", params={"subaccount": subaccount})

    # order groups
    @staticmethod
    def create_group(request: CreateOrderGroupRequest) -> Call[str]:
        def parse(body: Any) -> str:
            group_id = require_object(body, "response").get("order_group_id")
            if not isinstance(group_id, str) or not group_id:
                raise ProtocolError(f"order group create answered no order_group_id: {body!r}")
            return group_id

        return _call("POST", "/portfolio/order_groups/create", parse, expect=201,
                     kind="write_once", body=request.to_wire())

    @staticmethod
    def group(group_id: str, subaccount: int | None) -> Call[OrderGroup]:
        return _call("GET", f"/portfolio/order_groups/{group_id}",
                     lambda b: parse_order_group(b, group_id), params={"subaccount": subaccount})

    @staticmethod
    def groups(subaccount: int | None) -> Call[list[OrderGroup]]:
        def parse(body: Any) -> list[OrderGroup]:
            obj = require_object(body, "response")
            page = parse_page({"order_groups": obj.get("order_groups") or []}, "order_groups",
                              cursor_required=False)
            return [parse_order_group(g) for g in page.items]

        return _call("GET", "/portfolio/order_groups", parse, params={"subaccount": subaccount})

    @staticmethod
    def group_action(group_id: str, action: Literal["trigger", "reset", "limit", "delete"],
                     params: Mapping[str, Any], body: Any = None) -> Call[None]:
        if action == "delete":
            return _call("DELETE", f"/portfolio/order_groups/{group_id}", _empty_object,
                         kind="write_idempotent", params=params)
        return _call("PUT", f"/portfolio/order_groups/{group_id}/{action}", _empty_object,
                     kind="write_idempotent", params=params, body=body)


# ------------------------------------------------------------------------------------------------
# transport-independent pieces of one exchange of messages


class ClientCore:
    def __init__(self, *, limiter: RateLimiter | None, policy: RetryPolicy,
                 rng: random.Random | None) -> None:
        self._limiter = limiter
        self._policy = policy
        self._rng = rng or random.Random()

    @staticmethod
    def _request_kwargs(call: Call[Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": dict(call.params or {})}
        if call.body is not None:
            kwargs["json"] = call.body
        elif call.method in ("POST", "PUT"):
            kwargs["content"] = b""
        return kwargs

    @staticmethod
    def _transport_error(call: Call[Any], exc: httpx.TransportError) -> KalshiError:
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if isinstance(exc, _NOT_SENT) or call.kind == "read":
            return NetworkError(what, method=call.method, path=call.path)
        return OutcomeUnknown(f"sent, but no answer ({what})", method=call.method, path=call.path)

    @staticmethod
    def _finish(call: Call[T], response: httpx.Response) -> T:
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

    def _disposition(self, call: Call[Any], exc: KalshiError,
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


def page_params(base: Mapping[str, Any], cursor: str | None) -> dict[str, Any]:
    params = dict(base)
    if cursor:
        params["cursor"] = cursor
    return params


def next_cursor(call: Call[Any], page: Page, seen: set[str]) -> str | None:
    if not page.cursor:
        return None
    if page.cursor in seen:
        raise ProtocolError(f"pagination repeated cursor {page.cursor!r}", method=call.method,
                            path=call.path)
    seen.add(page.cursor)
    return page.cursor


def identity(item: Any) -> Any:
    return item


def split_positions(items: tuple[Any, ...]) -> tuple[list[MarketPosition], list[EventPosition]]:
    markets = [parse_market_position(raw) for tag, raw in items if tag == "m"]
    events = [parse_event_position(raw) for tag, raw in items if tag == "e"]
    return markets, events
