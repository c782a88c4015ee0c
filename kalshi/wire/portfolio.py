"""Balance, positions, fills, settlements, orders and error bodies, from both API shapes.

Invariant: money is kept exact (Decimal dollars, integer-cent accessors that raise rather than
round); counts are never negative.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from kalshi.wire._base import (
    _HUNDRED,
    _ORDER_STATUSES,
    CENT_GRID,
    BookSide,
    PriceGrid,
    _cents,
    _count,
    _dt,
    _enum,
    _fail,
    _Frozen,
    _int,
    _money,
    _rbool,
    _rcount,
    _rdt,
    _renum,
    _rmoney,
    _rprice,
    _rstr,
    _str,
    _whole,
    require_object,
)
from kalshi.wire.markets import (
    _book_side,
)
from models.money import (
    Cents,
)

__all__ = [
    "Balance",
    "MarketPosition",
    "EventPosition",
    "Positions",
    "Fill",
    "Settlement",
    "Order",
    "ErrorResponse",
    "parse_balance",
    "parse_market_position",
    "parse_event_position",
    "parse_fill",
    "parse_settlement",
    "parse_order",
    "parse_error",
]

# --------------------------------------------------------------------------------------------
# portfolio


class Balance(_Frozen):
    """Available balance (cents, plus the exact dollar string when sent)."""

    balance_cents: int
    balance_dollars: Decimal | None
    portfolio_value_cents: int | None
    updated_ts: int | None


def parse_balance(raw: Any) -> Balance:
    """Map ``GetBalanceResponse``; ``balance`` and ``balance_dollars`` must agree."""
    obj = require_object(raw, "balance response")
    ctx = "balance"
    cents = _int(obj, "balance", ctx)
    assert cents is not None
    dollars = _money(obj, "balance_dollars", ctx, required=False)
    if dollars is not None and (dollars * _HUNDRED).to_integral_value(rounding="ROUND_FLOOR") != (
        cents
    ):
        raise _fail(f"{ctx}.balance_dollars", f"disagrees with balance={cents}", obj.get(
            "balance_dollars"))
    return Balance(
        balance_cents=cents,
        balance_dollars=dollars,
        portfolio_value_cents=_int(obj, "portfolio_value", ctx, required=False),
        updated_ts=_int(obj, "updated_ts", ctx, required=False),
    )


class MarketPosition(_Frozen):
    """A position in one market: signed contracts (+ YES, - NO) and dollar aggregates."""

    ticker: str
    position: Decimal
    market_exposure: Decimal
    realized_pnl: Decimal
    total_traded: Decimal
    fees_paid: Decimal
    last_updated_time: datetime | None

    @property
    def position_contracts(self) -> int:
        """Signed whole contracts (raises FractionalCountError on a fractional position)."""
        return _whole(self.position, "position")


def parse_market_position(raw: Any) -> MarketPosition:
    """Map a wire ``MarketPosition`` (``position_fp``/``*_dollars`` or legacy integers)."""
    obj = require_object(raw, "market_position")
    ctx = f"market_position[{obj.get('ticker')}]"
    return MarketPosition(
        ticker=_rstr(obj, "ticker", ctx),
        position=_rcount(obj, "position_fp", ctx, "position", signed=True),
        market_exposure=_rmoney(obj, "market_exposure_dollars", ctx, "market_exposure"),
        realized_pnl=_rmoney(obj, "realized_pnl_dollars", ctx, "realized_pnl"),
        total_traded=_rmoney(obj, "total_traded_dollars", ctx, "total_traded"),
        fees_paid=_rmoney(obj, "fees_paid_dollars", ctx, "fees_paid"),
        last_updated_time=_dt(obj, "last_updated_ts", ctx, required=False),
    )


class EventPosition(_Frozen):
    """Aggregates over one event."""

    event_ticker: str
    total_cost: Decimal
    total_cost_shares: Decimal | None
    event_exposure: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal


def parse_event_position(raw: Any) -> EventPosition:
    """Map a wire ``EventPosition``."""
    obj = require_object(raw, "event_position")
    ctx = f"event_position[{obj.get('event_ticker')}]"
    return EventPosition(
        event_ticker=_rstr(obj, "event_ticker", ctx),
        total_cost=_rmoney(obj, "total_cost_dollars", ctx, "total_cost"),
        total_cost_shares=_count(obj, "total_cost_shares_fp", ctx, required=False, signed=True),
        event_exposure=_rmoney(obj, "event_exposure_dollars", ctx, "event_exposure"),
        realized_pnl=_rmoney(obj, "realized_pnl_dollars", ctx, "realized_pnl"),
        fees_paid=_rmoney(obj, "fees_paid_dollars", ctx, "fees_paid"),
    )


class Positions(_Frozen):
    """One page of ``GET /portfolio/positions``."""

    market_positions: tuple[MarketPosition, ...]
    event_positions: tuple[EventPosition, ...]
    cursor: str


class Fill(_Frozen):
    """One of our fills."""

    fill_id: str
    trade_id: str
    order_id: str
    ticker: str
    book_side: BookSide
    count: Decimal
    yes_price: Decimal
    no_price: Decimal
    is_taker: bool
    fee_cost: Decimal | None
    created_time: datetime | None

    @property
    def count_contracts(self) -> int:
        """Whole contracts filled (raises FractionalCountError on a fractional fill)."""
        return _whole(self.count, "count")


def parse_fill(raw: Any, grid: PriceGrid = CENT_GRID) -> Fill:
    """Map a wire fill (current or legacy)."""
    obj = require_object(raw, "fill")
    trade_id = obj.get("trade_id")
    ctx = f"fill[{obj.get('fill_id') or trade_id}]"
    fill_id = _str(obj, "fill_id", ctx, required=False) or _rstr(obj, "trade_id", ctx)
    return Fill(
        fill_id=fill_id,
        trade_id=_rstr(obj, "trade_id", ctx),
        order_id=_rstr(obj, "order_id", ctx),
        ticker=_str(obj, "ticker", ctx, required=False) or _rstr(obj, "market_ticker", ctx),
        book_side=_book_side(obj, ctx),
        count=_rcount(obj, "count_fp", ctx, "count"),
        yes_price=_rprice(obj, "yes_price_dollars", ctx, "yes_price", grid),
        no_price=_rprice(obj, "no_price_dollars", ctx, "no_price", grid),
        is_taker=_rbool(obj, "is_taker", ctx),
        fee_cost=_money(obj, "fee_cost", ctx, required=False),
        created_time=_dt(obj, "created_time", ctx, required=False),
    )


class Settlement(_Frozen):
    """One settled market in our portfolio."""

    ticker: str
    event_ticker: str | None
    market_result: str
    yes_count: Decimal
    no_count: Decimal
    yes_total_cost: Decimal
    no_total_cost: Decimal
    revenue_cents: int
    value_cents: int | None
    fee_cost: Decimal | None
    settled_time: datetime


def parse_settlement(raw: Any) -> Settlement:
    """Map a wire settlement (``*_fp``/``*_dollars`` or legacy integers)."""
    obj = require_object(raw, "settlement")
    ctx = f"settlement[{obj.get('ticker')}]"
    revenue = _int(obj, "revenue", ctx)
    assert revenue is not None
    return Settlement(
        ticker=_rstr(obj, "ticker", ctx),
        event_ticker=_str(obj, "event_ticker", ctx, required=False),
        market_result=_renum(obj, "market_result", ctx,
                             frozenset({"yes", "no", "scalar", "void"})),
        yes_count=_rcount(obj, "yes_count_fp", ctx, "yes_count"),
        no_count=_rcount(obj, "no_count_fp", ctx, "no_count"),
        yes_total_cost=_rmoney(obj, "yes_total_cost_dollars", ctx, "yes_total_cost"),
        no_total_cost=_rmoney(obj, "no_total_cost_dollars", ctx, "no_total_cost"),
        revenue_cents=revenue,
        value_cents=_int(obj, "value", ctx, required=False),
        fee_cost=_money(obj, "fee_cost", ctx, required=False),
        settled_time=_rdt(obj, "settled_time", ctx),
    )


class Order(_Frozen):
    """One of our orders as ``GET /portfolio/orders`` reports it (direction on the YES book)."""

    order_id: str
    user_id: str | None
    client_order_id: str
    ticker: str
    book_side: BookSide
    type: Literal["limit", "market"]
    status: Literal["resting", "canceled", "executed"]
    yes_price: Decimal
    no_price: Decimal
    fill_count: Decimal
    remaining_count: Decimal
    initial_count: Decimal | None
    taker_fill_cost: Decimal | None
    maker_fill_cost: Decimal | None
    taker_fees: Decimal | None
    maker_fees: Decimal | None
    created_time: datetime | None
    last_update_time: datetime | None
    expiration_time: datetime | None
    order_group_id: str | None
    self_trade_prevention_type: str | None
    subaccount_number: int | None

    @property
    def yes_price_cents(self) -> Cents:
        """The order's YES price in cents."""
        return _cents(self.yes_price, "yes_price")

    @property
    def remaining_contracts(self) -> int:
        """Whole contracts still resting."""
        return _whole(self.remaining_count, "remaining_count")


def parse_order(raw: Any, grid: PriceGrid = CENT_GRID) -> Order:
    """Map a wire order (current, transitional early-2026 or legacy shape)."""
    obj = require_object(raw, "order")
    ctx = f"order[{obj.get('order_id')}]"
    client_order_id = _str(obj, "client_order_id", ctx, required=False)
    return Order(
        order_id=_rstr(obj, "order_id", ctx),
        user_id=_str(obj, "user_id", ctx, required=False),
        client_order_id=client_order_id or "",
        ticker=_rstr(obj, "ticker", ctx),
        book_side=_book_side(obj, ctx),
        type=_renum(obj, "type", ctx, frozenset({"limit", "market"})),  # type: ignore[arg-type]
        status=_renum(obj, "status", ctx, _ORDER_STATUSES),  # type: ignore[arg-type]
        yes_price=_rprice(obj, "yes_price_dollars", ctx, "yes_price", grid),
        no_price=_rprice(obj, "no_price_dollars", ctx, "no_price", grid),
        fill_count=_rcount(obj, "fill_count_fp", ctx, "fill_count"),
        remaining_count=_rcount(obj, "remaining_count_fp", ctx, "remaining_count"),
        initial_count=_count(obj, "initial_count_fp", ctx, "initial_count", required=False),
        taker_fill_cost=_money(obj, "taker_fill_cost_dollars", ctx, "taker_fill_cost",
                               required=False),
        maker_fill_cost=_money(obj, "maker_fill_cost_dollars", ctx, "maker_fill_cost",
                               required=False),
        taker_fees=_money(obj, "taker_fees_dollars", ctx, "taker_fees", required=False),
        maker_fees=_money(obj, "maker_fees_dollars", ctx, "maker_fees", required=False),
        created_time=_dt(obj, "created_time", ctx, required=False),
        last_update_time=_dt(obj, "last_update_time", ctx, required=False),
        expiration_time=_dt(obj, "expiration_time", ctx, required=False),
        order_group_id=_str(obj, "order_group_id", ctx, required=False),
        self_trade_prevention_type=_enum(obj, "self_trade_prevention_type", ctx,
                                         frozenset({"taker_at_cross", "maker"}), required=False),
        subaccount_number=_int(obj, "subaccount_number", ctx, required=False),
    )


class ErrorResponse(_Frozen):
    """Kalshi's error body ``{code, message, details}`` (all optional)."""

    code: str | None
    message: str | None
    details: str | None


def parse_error(raw: Any) -> ErrorResponse:
    """Map an error body (``{"error": ...}`` on 429 becomes the message)."""
    obj = require_object(raw, "error")
    message = _str(obj, "message", "error", required=False)
    if message is None and isinstance(obj.get("error"), str):
        message = obj["error"]
    return ErrorResponse(code=_str(obj, "code", "error", required=False), message=message,
                         details=_str(obj, "details", "error", required=False))
