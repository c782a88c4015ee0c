"""Portfolio routes of the paper exchange: balance, positions, fills, settlements, orders, V2 order
writes and order groups, all signed and rate-limited.

Invariant: a write is answered with its success status only after the engine accepted it and its
command is committed; a refused write (4xx) leaves the book and balances exactly as they were.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kalshi.paper import serialize as ser
from kalshi.paper.exchange import TIERS, PaperExchange
from kalshi.paper.http import (
    PREFIX,
    ApiError,
    authed,
    engine_error,
    exchange_of,
    json_body,
    json_object,
    opt_bool,
    opt_int,
    opt_str,
    page,
    query_int,
    require_str,
    spend,
)
from models.matching import TIME_IN_FORCE, EngineReject, Order
from models.money import (
    MoneyError,
    contracts_from_fp,
    fp_from_contracts,
    price_cents_from_dollars,
)

__all__ = ["MAX_BATCH", "parse_order_request", "routes", "submit_order"]

MAX_BATCH = 20  # Kalshi's documented batch limit before budgets replaced it

_CREATE_FIELDS = {
    "ticker", "client_order_id", "side", "count", "price", "expiration_time", "time_in_force",
    "post_only", "self_trade_prevention_type", "cancel_order_on_pause", "reduce_only",
    "subaccount", "order_group_id", "exchange_index",
}
_AMEND_FIELDS = {
    "ticker", "side", "price", "count", "client_order_id", "updated_client_order_id",
    "expiration_time", "exchange_index",
}
_DECREASE_FIELDS = {"reduce_by", "reduce_to", "exchange_index", "market_ticker"}


def _no_unknown(data: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise ApiError(400, "invalid_parameters", f"unknown field(s) {unknown}", unknown[0])


def _subaccount(data: dict[str, Any]) -> None:
    sub = opt_int(data, "subaccount")
    if sub not in (None, 0):
        raise ApiError(400, "invalid_parameters",
                       f"subaccount: the paper exchange has only subaccount 0 (got {sub})",
                       "subaccount")


def _count(value: Any, name: str) -> int:
    if value is None:
        raise ApiError(400, "invalid_parameters", f"{name} is required", name)
    if isinstance(value, bool | float):
        raise ApiError(400, "invalid_parameters",
                       f"{name} must be a fixed-point string such as \"10.00\" (got {value!r})",
                       name)
    try:
        count = contracts_from_fp(value, field=name, allow_negative=True)
    except MoneyError as exc:
        raise ApiError(400, "invalid_order_size", str(exc), name) from exc
    return count


def _price(value: Any, name: str = "price") -> int:
    if value is None:
        raise ApiError(400, "invalid_parameters", f"{name} is required", name)
    if not isinstance(value, str):
        raise ApiError(400, "invalid_parameters",
                       f"{name} must be a dollar string such as \"0.5600\" (got {value!r})", name)
    try:
        return int(price_cents_from_dollars(value, field=name))
    except MoneyError as exc:
        raise ApiError(400, "invalid_price", str(exc), name) from exc


def _side(data: dict[str, Any]) -> str:
    side = require_str(data, "side")
    if side not in ("bid", "ask"):
        raise ApiError(400, "invalid_parameters", f"side must be bid or ask (got {side!r})", "side")
    return side


def parse_order_request(data: dict[str, Any], account_id: str) -> dict[str, Any]:
    """Validate a ``CreateOrderV2Request`` body; return ``OrderRequest`` fields as JSON values."""
    _no_unknown(data, _CREATE_FIELDS)
    _subaccount(data)
    ticker = require_str(data, "ticker")
    side = _side(data)
    count = _count(data.get("count"), "count")
    if count <= 0:
        raise ApiError(400, "invalid_order_size", f"count must be positive (got {data['count']!r})",
                       "count")
    price_cents = _price(data.get("price"))
    tif = require_str(data, "time_in_force")
    if tif not in TIME_IN_FORCE:
        raise ApiError(400, "invalid_parameters",
                       f"time_in_force must be one of {list(TIME_IN_FORCE)} (got {tif!r})",
                       "time_in_force")
    stp = require_str(data, "self_trade_prevention_type")
    if stp not in ("taker_at_cross", "maker"):
        raise ApiError(400, "invalid_parameters",
                       f"self_trade_prevention_type must be taker_at_cross or maker (got {stp!r})",
                       "self_trade_prevention_type")
    expiration_s = opt_int(data, "expiration_time")
    if expiration_s is not None and expiration_s <= 0:
        raise ApiError(400, "invalid_parameters",
                       f"expiration_time must be positive Unix seconds (got {expiration_s})",
                       "expiration_time")
    opt_bool(data, "cancel_order_on_pause")
    opt_int(data, "exchange_index")
    client_order_id = opt_str(data, "client_order_id")
    return {
        "account_id": account_id,
        "ticker": ticker,
        "side": side,
        "price_cents": price_cents,
        "count": count,
        "time_in_force": tif,
        "stp": stp,
        "client_order_id": client_order_id or None,
        "expiration_ts_ms": expiration_s * 1000 if expiration_s is not None else None,
        "post_only": opt_bool(data, "post_only"),
        "reduce_only": opt_bool(data, "reduce_only"),
        "buy_max_cost_cents": None,
        "order_group_id": opt_str(data, "order_group_id"),
    }


def _create_result(order: Order) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id or "",
        "fill_count": fp_from_contracts(order.fill_count),
        "remaining_count": fp_from_contracts(order.remaining_count),
        "ts_ms": order.last_update_ts_ms,  # the engine time that processed it
    }
    price, fee = ser.average_fill(order)
    if price is not None:
        body["average_fill_price"] = price
        body["average_fee_paid"] = fee
    return body


def _accept(request: Request) -> None:
    # the write is committed: from here on a dropped response is a "lost ack" fault
    request.scope.setdefault("state", {})["paper_accepted"] = True


# --- reads ------------------------------------------------------------------------------------


@authed("read")
async def get_balance(request: Request, account: str) -> Response:
    exchange = exchange_of(request)
    engine = exchange.engine
    balance = engine.balance_cents(account)
    value = 0
    for position in engine.positions(account):
        if position.position == 0:
            continue
        book = engine.book(position.ticker)
        leg = book.yes if position.position > 0 else book.no
        best = max((p for p, _q in leg), default=0)
        value += abs(position.position) * best  # liquidation value at the best bid
    return JSONResponse({
        "balance": balance,
        "balance_dollars": ser.money(balance),
        "portfolio_value": value,
        "updated_ts": exchange.clock() // 1000,
    })


def _csv(request: Request, name: str) -> list[str]:
    text = request.query_params.get(name) or ""
    return [part for part in text.split(",") if part]


@authed("read")
async def get_positions(request: Request, account: str) -> Response:
    exchange = exchange_of(request)
    engine = exchange.engine
    settlement_status = request.query_params.get("settlement_status") or "unsettled"
    if settlement_status not in ("unsettled", "settled", "all"):
        raise ApiError(400, "invalid_parameters", "settlement_status must be unsettled, settled "
                       f"or all (got {settlement_status!r})", "settlement_status")
    tickers = set(_csv(request, "ticker"))
    event_tickers = set(_csv(request, "event_ticker"))
    count_filter = set(_csv(request, "count_filter"))
    chosen = []
    for position in engine.positions(account):
        state = engine.market(position.ticker)
        settled = state.status == "finalized"
        if settlement_status == "unsettled" and settled:
            continue
        if settlement_status == "settled" and not settled:
            continue
        if tickers and position.ticker not in tickers:
            continue
        if event_tickers and state.spec.event_ticker not in event_tickers:
            continue
        if "position" in count_filter and position.position == 0:
            continue
        if "total_traded" in count_filter and position.total_traded_cents == 0:
            continue
        chosen.append((position, state.spec.event_ticker))
    chunk, cursor = page(request, chosen, lambda pe: pe[0].ticker)
    # a position changes only by a fill or a settlement: its last update is the latest of those
    last_ms: dict[str, int] = {}
    changes = [(f.ticker, f.ts_ms) for f in engine.fills(account)]
    changes += [(s.ticker, s.ts_ms) for s in engine.settlements(account)]
    for ticker, ts_ms in changes:
        last_ms[ticker] = max(last_ms.get(ticker, 0), ts_ms)
    by_event: dict[str, list[Any]] = defaultdict(list)
    for position, event_ticker in chunk:
        by_event[event_ticker].append(position)
    return JSONResponse({
        "market_positions": [ser.position_json(p, last_ms.get(p.ticker, 0)) for p, _e in chunk],
        "event_positions": [ser.event_position_json(e, ps) for e, ps in by_event.items()],
        "cursor": cursor,
    })


def _ts_window(request: Request) -> tuple[int | None, int | None]:
    min_ts = query_int(request, "min_ts", lo=0)
    max_ts = query_int(request, "max_ts", lo=0)
    return (min_ts * 1000 if min_ts is not None else None,
            max_ts * 1000 if max_ts is not None else None)


def _in_window(ts_ms: int, window: tuple[int | None, int | None]) -> bool:
    lo, hi = window
    return (lo is None or ts_ms >= lo) and (hi is None or ts_ms <= hi)


@authed("read")
async def get_fills(request: Request, account: str) -> Response:
    engine = exchange_of(request).engine
    tickers = set(_csv(request, "ticker"))
    order_id = request.query_params.get("order_id")
    window = _ts_window(request)
    fills = [
        f for f in reversed(engine.fills(account))
        if (not tickers or f.ticker in tickers) and (not order_id or f.order_id == order_id)
        and _in_window(f.ts_ms, window)
    ]
    chunk, cursor = page(request, fills, lambda f: f.fill_id)
    return JSONResponse({"fills": [ser.fill_json(f) for f in chunk], "cursor": cursor})


@authed("read")
async def get_settlements(request: Request, account: str) -> Response:
    engine = exchange_of(request).engine
    tickers = set(_csv(request, "ticker"))
    event_tickers = set(_csv(request, "event_ticker"))
    window = _ts_window(request)
    rows = [
        s for s in reversed(engine.settlements(account))
        if (not tickers or s.ticker in tickers)
        and (not event_tickers or s.event_ticker in event_tickers) and _in_window(s.ts_ms, window)
    ]
    chunk, cursor = page(request, rows, lambda s: f"{s.ticker}|{s.ts_ms}")
    return JSONResponse({"settlements": [ser.settlement_json(s) for s in chunk], "cursor": cursor})


@authed("read")
async def get_orders(request: Request, account: str) -> Response:
    engine = exchange_of(request).engine
    status = request.query_params.get("status") or None
    if status is not None and status not in ("resting", "canceled", "executed"):
        raise ApiError(400, "invalid_parameters",
                       f"status must be resting, canceled or executed (got {status!r})", "status")
    tickers = set(_csv(request, "ticker"))
    event_tickers = set(_csv(request, "event_ticker"))
    if len(event_tickers) > 10:
        raise ApiError(400, "invalid_parameters", "event_ticker takes at most 10 tickers",
                       "event_ticker")
    window = _ts_window(request)
    orders = []
    for order in engine.orders(account, status=status):
        if tickers and order.ticker not in tickers:
            continue
        if event_tickers and engine.market(order.ticker).spec.event_ticker not in event_tickers:
            continue
        if _in_window(order.created_ts_ms, window):
            orders.append(order)
    orders.sort(key=lambda o: (o.created_ts_ms, o.order_id), reverse=True)
    chunk, cursor = page(request, orders, lambda o: o.order_id)
    return JSONResponse({"orders": [ser.order_json(o) for o in chunk], "cursor": cursor})


def _own_order(request: Request, account: str, order_id: str) -> Order:
    try:
        order = exchange_of(request).engine.order(order_id)
    except (EngineReject, KeyError) as exc:
        raise ApiError(404, "not_found", f"order {order_id!r} not found", "order_id") from exc
    if order.account_id != account:
        raise ApiError(404, "not_found", f"order {order_id!r} not found", "order_id")
    return order


@authed("read", cost=2)
async def get_order(request: Request, account: str) -> Response:
    order = _own_order(request, account, request.path_params["order_id"])
    return JSONResponse({"order": ser.order_json(order)})


# --- V2 order writes ----------------------------------------------------------------------------


@authed("write")
async def create_order(request: Request, account: str) -> Response:
    body = await submit_order(exchange_of(request), account, await request.body())
    _accept(request)
    return JSONResponse(body, status_code=201)


async def submit_order(exchange: PaperExchange, account: str, raw: bytes) -> dict[str, Any]:
    """Parse a ``CreateOrderV2Request`` body, submit it, return the 201 body once committed.

    Shared by the Starlette route and the lean ASGI path (``kalshi.paper.hotpath``), so both
    answer alike. Raises ``ApiError``, ``EngineReject`` or ``StoreError``.
    """
    fields = parse_order_request(json_object(raw), account)
    order = await exchange.run("submit", {"request": fields})
    return _create_result(order)


@authed("write", cost=0)
async def create_orders_batched(request: Request, account: str) -> Response:
    exchange = exchange_of(request)
    data = await json_body(request)
    _no_unknown(data, {"orders"})
    items = data.get("orders")
    if not isinstance(items, list) or not items:
        raise ApiError(400, "invalid_parameters", "orders must be a non-empty list", "orders")
    if len(items) > MAX_BATCH:
        raise ApiError(400, "invalid_parameters",
                       f"batch of {len(items)} orders exceeds the limit of {MAX_BATCH}", "orders")
    spend(request, "write", 10 * len(items))
    parsed: list[dict[str, Any] | ApiError] = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise ApiError(400, "invalid_parameters", "each order must be an object", "orders")
            parsed.append(parse_order_request(item, account))
        except ApiError as exc:
            parsed.append(exc)
    valid = [p for p in parsed if isinstance(p, dict)]
    results: list[Any] = []
    if valid:
        results = list(await exchange.run("submit_batch", {"requests": valid}))
        _accept(request)
    out: list[dict[str, Any]] = []
    for item, got in zip(items, parsed, strict=True):
        client_id = item.get("client_order_id") if isinstance(item, dict) else None
        if isinstance(got, ApiError):
            out.append({"client_order_id": client_id, "error": got.body()})
            continue
        result = results.pop(0)
        if isinstance(result, EngineReject):
            out.append({"client_order_id": client_id, "error": engine_error(result).body()})
        else:
            out.append(_create_result(result))
    return JSONResponse({"orders": out}, status_code=201)


@authed("write")
async def amend_order(request: Request, account: str) -> Response:
    exchange = exchange_of(request)
    order = _own_order(request, account, request.path_params["order_id"])
    data = await json_body(request)
    _no_unknown(data, _AMEND_FIELDS)
    ticker = require_str(data, "ticker")
    side = _side(data)
    if ticker != order.ticker:
        raise ApiError(400, "order_ticker_mismatch",
                       f"ticker {ticker!r} is not the order's {order.ticker!r}", "ticker")
    if side != order.side:
        raise ApiError(400, "order_side_mismatch",
                       f"side {side!r} is not the order's {order.side!r}", "side")
    client_id = opt_str(data, "client_order_id")
    if client_id is not None and client_id != order.client_order_id:
        raise ApiError(400, "order_id_and_client_order_id_mismatch",
                       f"client_order_id {client_id!r} does not belong to this order",
                       "client_order_id")
    price_cents = _price(data.get("price"))
    count = _count(data.get("count"), "count")
    if count <= 0:
        raise ApiError(400, "invalid_order_size", f"count must be positive (got {data['count']!r})",
                       "count")
    expiration_s = opt_int(data, "expiration_time")
    if expiration_s is not None and expiration_s < 0:
        raise ApiError(400, "invalid_parameters",
                       f"expiration_time must be >= 0 (got {expiration_s})", "expiration_time")
    if expiration_s == 0:
        raise ApiError(400, "invalid_parameters",
                       "expiration_time 0 (remove the expiry) is not supported by the paper "
                       "exchange's engine", "expiration_time")
    amended = await exchange.run("amend", {
        "account_id": account,
        "order_id": order.order_id,
        "price_cents": price_cents,
        "count": count,
        "updated_client_order_id": opt_str(data, "updated_client_order_id"),
        "expiration_ts_ms": expiration_s * 1000 if expiration_s else None,
    })
    _accept(request)
    body = _create_result(amended)
    return JSONResponse(body)


@authed("write")
async def decrease_order(request: Request, account: str) -> Response:
    exchange = exchange_of(request)
    order = _own_order(request, account, request.path_params["order_id"])
    data = await json_body(request)
    _no_unknown(data, _DECREASE_FIELDS)
    has_by, has_to = data.get("reduce_by") is not None, data.get("reduce_to") is not None
    if has_by == has_to:
        raise ApiError(400, "invalid_parameters", "give exactly one of reduce_by or reduce_to",
                       "reduce_by")
    reduce_by = _count(data["reduce_by"], "reduce_by") if has_by else None
    reduce_to = _count(data["reduce_to"], "reduce_to") if has_to else None
    if (reduce_by is not None and reduce_by <= 0) or (reduce_to is not None and reduce_to < 0):
        name = "reduce_by" if has_by else "reduce_to"
        raise ApiError(400, "invalid_order_size", f"{name} out of range (got {data[name]!r})", name)
    decreased = await exchange.run("decrease", {
        "account_id": account, "order_id": order.order_id, "reduce_by": reduce_by,
        "reduce_to": reduce_to,
    })
    _accept(request)
    return JSONResponse({
        "order_id": decreased.order_id,
        "client_order_id": decreased.client_order_id or "",
        "remaining_count": fp_from_contracts(decreased.remaining_count),
        "ts_ms": decreased.last_update_ts_ms,
    })


@authed("write", cost=2)
async def cancel_order(request: Request, account: str) -> Response:
    exchange = exchange_of(request)
    order = _own_order(request, account, request.path_params["order_id"])
    canceled, reduced_by = await exchange.run(
        "cancel", {"account_id": account, "order_id": order.order_id}
    )
    _accept(request)
    return JSONResponse({
        "order_id": canceled.order_id,
        "client_order_id": canceled.client_order_id or "",
        "reduced_by": fp_from_contracts(reduced_by),
        "ts_ms": canceled.last_update_ts_ms,
    })


@authed("write", cost=0)
async def cancel_orders_batched(request: Request, account: str) -> Response:
    exchange = exchange_of(request)
    data = await json_body(request)
    _no_unknown(data, {"orders"})
    items = data.get("orders")
    if not isinstance(items, list) or not items:
        raise ApiError(400, "invalid_parameters", "orders must be a non-empty list", "orders")
    if len(items) > MAX_BATCH:
        raise ApiError(400, "invalid_parameters",
                       f"batch of {len(items)} cancels exceeds the limit of {MAX_BATCH}", "orders")
    order_ids: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            raise ApiError(400, "invalid_parameters", "each order must be an object", "orders")
        _no_unknown(item, {"order_id", "subaccount", "exchange_index", "market_ticker"})
        _subaccount(item)
        order_ids.append(require_str(item, "order_id"))
    spend(request, "write", 2 * len(items))
    results = await exchange.run("cancel_batch", {"account_id": account, "order_ids": order_ids})
    _accept(request)
    out: list[dict[str, Any]] = []
    for order_id, result in zip(order_ids, results, strict=True):
        if isinstance(result, EngineReject):
            out.append({"order_id": order_id, "reduced_by": "0.00",
                        "error": engine_error(result).body()})
        else:
            canceled, reduced_by = result
            out.append({"order_id": order_id, "client_order_id": canceled.client_order_id or "",
                        "reduced_by": fp_from_contracts(reduced_by),
                        "ts_ms": canceled.last_update_ts_ms})
    return JSONResponse({"orders": out})


@authed("write", cost=2)
async def cancel_all_orders(request: Request, account: str) -> Response:
    sub = query_int(request, "subaccount")
    if sub not in (None, 0):
        raise ApiError(400, "invalid_parameters",
                       f"subaccount: the paper exchange has only subaccount 0 (got {sub})",
                       "subaccount")
    await exchange_of(request).run("cancel_all", {"account_id": account})
    _accept(request)
    return Response(status_code=204)


@authed("read")
async def get_resting_value(request: Request, account: str) -> Response:
    engine = exchange_of(request).engine
    total = sum((o.price_cents if o.side == "bid" else 100 - o.price_cents) * o.remaining_count
                for o in engine.orders(account, status="resting"))
    return JSONResponse({
        "total_resting_order_value": total,
        "resting_order_value_breakdown": [{"exchange_index": 0, "balance": ser.money(total)}],
    })


@authed("read")
async def get_account_limits(request: Request, account: str) -> Response:
    exchange = exchange_of(request)
    tier = exchange.key_tier(request.state.key_id)
    limits = TIERS[tier] or (10**9, 1, 10**9, 1)
    read_rate, read_cap, write_rate, write_cap = limits
    return JSONResponse({
        "usage_tier": tier,
        "read": {"refill_rate": read_rate, "bucket_capacity": read_rate * read_cap},
        "write": {"refill_rate": write_rate, "bucket_capacity": write_rate * write_cap},
        "grants": [{"exchange_instance": "event_contract", "level": tier, "expires_ts": None,
                    "source": "paper"}],
    })


@authed("read")
async def get_historical_empty(request: Request, account: str) -> Response:
    # the historical cutoff is the epoch: every order, fill and position is served live
    kind = request.url.path.rsplit("/", 1)[-1]
    if kind == "positions":
        return JSONResponse({"market_positions": [], "event_positions": [], "cursor": ""})
    return JSONResponse({kind: [], "cursor": ""})


# --- order groups -------------------------------------------------------------------------------


def _contracts_limit(data: dict[str, Any]) -> int:
    limit = opt_int(data, "contracts_limit")
    if limit is None and data.get("contracts_limit_fp") is not None:
        limit = _count(data["contracts_limit_fp"], "contracts_limit_fp")
    if limit is None:
        raise ApiError(400, "invalid_parameters", "contracts_limit is required", "contracts_limit")
    if not 1 <= limit <= 1_000_000:
        raise ApiError(400, "invalid_parameters",
                       f"contracts_limit must be in 1..1000000 (got {limit})", "contracts_limit")
    return limit


def _group_json(group: dict[str, Any]) -> dict[str, Any]:
    limit = group.get("contracts_limit")
    return {
        "id": group.get("order_group_id") or group.get("id"),
        "is_auto_cancel_enabled": bool(group.get("is_auto_cancel_enabled", True)),
        "contracts_limit_fp": fp_from_contracts(int(limit)) if limit is not None else None,
        "exchange_index": 0,
    }


@authed("write")
async def create_order_group(request: Request, account: str) -> Response:
    data = await json_body(request)
    _no_unknown(data, {"contracts_limit", "contracts_limit_fp", "subaccount", "exchange_index"})
    _subaccount(data)
    limit = _contracts_limit(data)
    group_id = await exchange_of(request).run(
        "create_group", {"account_id": account, "contracts_limit": limit}
    )
    return JSONResponse({"order_group_id": group_id, "subaccount": 0, "exchange_index": 0},
                        status_code=201)


@authed("read")
async def get_order_groups(request: Request, account: str) -> Response:
    groups = exchange_of(request).engine.order_groups(account)
    return JSONResponse({"order_groups": [_group_json(g) for g in groups]})


def _group(request: Request, account: str) -> dict[str, Any]:
    group_id = request.path_params["group_id"]
    try:
        return exchange_of(request).engine.order_group(account, group_id)
    except EngineReject as exc:
        raise engine_error(exc) from exc


@authed("read")
async def get_order_group(request: Request, account: str) -> Response:
    group = _group(request, account)
    body = _group_json(group)
    body.pop("id")
    body["orders"] = list(group.get("orders", []))
    return JSONResponse(body)


@authed("write")
async def delete_order_group(request: Request, account: str) -> Response:
    group_id = request.path_params["group_id"]
    await exchange_of(request).run("delete_group", {"account_id": account, "group_id": group_id})
    return JSONResponse({})


@authed("write")
async def trigger_order_group(request: Request, account: str) -> Response:
    group_id = request.path_params["group_id"]
    await exchange_of(request).run("trigger_group", {"account_id": account, "group_id": group_id})
    return JSONResponse({})


@authed("write")
async def reset_order_group(request: Request, account: str) -> Response:
    group_id = request.path_params["group_id"]
    await exchange_of(request).run("reset_group", {"account_id": account, "group_id": group_id})
    return JSONResponse({})


@authed("write")
async def limit_order_group(request: Request, account: str) -> Response:
    group_id = request.path_params["group_id"]
    data = await json_body(request)
    _no_unknown(data, {"contracts_limit", "contracts_limit_fp", "subaccount", "exchange_index"})
    limit = _contracts_limit(data)
    await exchange_of(request).run(
        "group_limit", {"account_id": account, "group_id": group_id, "contracts_limit": limit}
    )
    return JSONResponse({})


def routes() -> list[Route]:
    """Return the portfolio routes (batched paths before ``{order_id}`` ones)."""
    p = PREFIX + "/portfolio"
    return [
        Route(p + "/balance", get_balance, methods=["GET"]),
        Route(p + "/positions", get_positions, methods=["GET"]),
        Route(p + "/fills", get_fills, methods=["GET"]),
        Route(p + "/settlements", get_settlements, methods=["GET"]),
        Route(p + "/orders", get_orders, methods=["GET"]),
        Route(p + "/orders/{order_id}", get_order, methods=["GET"]),
        Route(p + "/events/orders", create_order, methods=["POST"]),
        Route(p + "/events/orders", cancel_all_orders, methods=["DELETE"]),
        Route(p + "/events/orders/batched", create_orders_batched, methods=["POST"]),
        Route(p + "/events/orders/batched", cancel_orders_batched, methods=["DELETE"]),
        Route(p + "/events/orders/{order_id}/amend", amend_order, methods=["POST"]),
        Route(p + "/events/orders/{order_id}/decrease", decrease_order, methods=["POST"]),
        Route(p + "/events/orders/{order_id}", cancel_order, methods=["DELETE"]),
        Route(p + "/summary/total_resting_order_value", get_resting_value, methods=["GET"]),
        Route(PREFIX + "/account/limits", get_account_limits, methods=["GET"]),
        Route(PREFIX + "/historical/orders", get_historical_empty, methods=["GET"]),
        Route(PREFIX + "/historical/fills", get_historical_empty, methods=["GET"]),
        Route(PREFIX + "/historical/positions", get_historical_empty, methods=["GET"]),
        Route(p + "/order_groups", get_order_groups, methods=["GET"]),
        Route(p + "/order_groups/create", create_order_group, methods=["POST"]),
        Route(p + "/order_groups/{group_id}", get_order_group, methods=["GET"]),
        Route(p + "/order_groups/{group_id}", delete_order_group, methods=["DELETE"]),
        Route(p + "/order_groups/{group_id}/trigger", trigger_order_group, methods=["PUT"]),
        Route(p + "/order_groups/{group_id}/reset", reset_order_group, methods=["PUT"]),
        Route(p + "/order_groups/{group_id}/limit", limit_order_group, methods=["PUT"]),
    ]
