"""Typed models of Kalshi Trade API v2 payloads, read from both the current and the legacy shapes.

Invariant: a reader never guesses. Every response field we map is read from the current shape
(``*_dollars`` price strings, ``*_fp`` count strings) or from the legacy 2024-25 shape (integer
cents, integer counts); when both are present they must agree. Values are kept exactly: prices and
money as ``Decimal`` dollars, counts as ``Decimal`` contracts (Kalshi allows 0.01-contract
steps), with ``*_cents`` / ``*_contracts`` accessors that return integers or raise. A missing
required field, a wrong type, an unknown enum value, a negative count or a price off the market's
grid raises ``WireFormatError`` naming the field and the value.

Requests are written only in the current shape and forbid unknown fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from kalshi.errors import WireFormatError
from models.money import (
    Cents,
    MoneyError,
    SubpennyError,
    contracts_from_fp,
    decimal_from_wire,
)

__all__ = [
    "BookSide",
    "TimeInForce",
    "SelfTradePrevention",
    "SubpennyPriceError",
    "PriceRange",
    "PriceGrid",
    "CENT_GRID",
    "Market",
    "Event",
    "Series",
    "SettlementSource",
    "BookLevel",
    "Orderbook",
    "Trade",
    "Ohlc",
    "Candlestick",
    "Balance",
    "MarketPosition",
    "EventPosition",
    "Positions",
    "Fill",
    "Settlement",
    "Order",
    "ErrorResponse",
    "CreateOrderV2Request",
    "CreateOrderV2Response",
    "BatchCreateOrdersV2Request",
    "BatchCreateItem",
    "AmendOrderV2Request",
    "AmendOrderV2Response",
    "DecreaseOrderV2Request",
    "DecreaseOrderV2Response",
    "CancelOrderV2Response",
    "BatchCancelOrder",
    "BatchCancelOrdersV2Request",
    "BatchCancelItem",
    "CreateOrderGroupRequest",
    "UpdateOrderGroupLimitRequest",
    "OrderGroup",
    "ExchangeStatus",
    "ExchangeSchedule",
    "HistoricalCutoff",
    "Page",
    "parse_market",
    "parse_event",
    "parse_series",
    "parse_orderbook",
    "parse_trade",
    "parse_candlestick",
    "parse_balance",
    "parse_market_position",
    "parse_event_position",
    "parse_fill",
    "parse_settlement",
    "parse_order",
    "parse_error",
    "parse_create_order_response",
    "parse_batch_create_item",
    "parse_amend_response",
    "parse_decrease_response",
    "parse_cancel_response",
    "parse_batch_cancel_item",
    "parse_order_group",
    "parse_exchange_status",
    "parse_exchange_schedule",
    "parse_historical_cutoff",
    "parse_page",
    "require_object",
]

BookSide = Literal["bid", "ask"]
TimeInForce = Literal["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]
SelfTradePrevention = Literal["taker_at_cross", "maker"]

_MARKET_STATUSES = frozenset(
    {"initialized", "inactive", "active", "closed", "determined", "disputed", "amended",
     "finalized", "settled"}
)
_ORDER_STATUSES = frozenset({"resting", "canceled", "executed"})
_RESULTS = frozenset({"yes", "no", "scalar", ""})
_STRIKE_TYPES = frozenset(
    {"greater", "greater_or_equal", "less", "less_or_equal", "between", "functional", "custom",
     "structured"}
)
_FEE_TYPES = frozenset(
    {"quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees", "flat"}
)
_HUNDRED = Decimal(100)
_CENTI = Decimal("0.01")


class SubpennyPriceError(WireFormatError, SubpennyError):
    """A price with a fraction of a cent on a market whose ``price_ranges`` do not allow it."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        WireFormatError.__init__(self, message, field=field, value=value)
        self.field, self.value = field, value


# --------------------------------------------------------------------------------------------
# low-level readers: each names the field (with the object's ticker/id) and the offending value


def _fail(field: str, message: str, value: Any) -> WireFormatError:
    return WireFormatError(message, field=field, value=value)


def require_object(raw: Any, field: str) -> Mapping[str, Any]:
    """Return ``raw`` if it is a JSON object, else raise ``WireFormatError`` naming ``field``."""
    if not isinstance(raw, Mapping):
        raise _fail(field, "expected a JSON object", raw)
    return raw


def _get(raw: Mapping[str, Any], key: str, ctx: str, *, required: bool) -> Any:
    # one place for "missing": an absent key and a JSON null are the same to Kalshi's SDK
    value = raw.get(key)
    if value is None and required:
        raise _fail(f"{ctx}.{key}", "missing required field", None)
    return value


def _str(raw: Mapping[str, Any], key: str, ctx: str, *, required: bool = True) -> str | None:
    value = _get(raw, key, ctx, required=required)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{ctx}.{key}", "expected a string", value)
    return value


def _rstr(raw: Mapping[str, Any], key: str, ctx: str) -> str:
    value = _str(raw, key, ctx, required=True)
    assert value is not None
    return value


def _int(raw: Mapping[str, Any], key: str, ctx: str, *, required: bool = True) -> int | None:
    value = _get(raw, key, ctx, required=required)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _fail(f"{ctx}.{key}", "expected an integer", value)
    return value


def _bool(raw: Mapping[str, Any], key: str, ctx: str, *, required: bool = True) -> bool | None:
    value = _get(raw, key, ctx, required=required)
    if value is not None and not isinstance(value, bool):
        raise _fail(f"{ctx}.{key}", "expected a boolean", value)
    return value


def _enum(
    raw: Mapping[str, Any], key: str, ctx: str, allowed: frozenset[str], *, required: bool = True
) -> str | None:
    value = _str(raw, key, ctx, required=required)
    if value is not None and value not in allowed:
        raise _fail(f"{ctx}.{key}", f"unknown value, expected one of {sorted(allowed)}", value)
    return value


def _renum(raw: Mapping[str, Any], key: str, ctx: str, allowed: frozenset[str]) -> str:
    value = _enum(raw, key, ctx, allowed, required=True)
    assert value is not None
    return value


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _dt(raw: Mapping[str, Any], key: str, ctx: str, *, required: bool = True) -> datetime | None:
    value = _str(raw, key, ctx, required=required)
    if value is None or (value == "" and not required):
        return None
    if not _RFC3339.match(value):
        raise _fail(f"{ctx}.{key}", "expected an RFC3339 timestamp with a zone", value)
    text = value.replace("Z", "+00:00")
    head, _, frac_zone = text.partition(".")
    if frac_zone:  # Python < 3.11.? parses at most 6 fractional digits; Kalshi sends up to 6
        digits = re.match(r"\d+", frac_zone)
        assert digits is not None
        text = f"{head}.{digits.group()[:6]}{frac_zone[digits.end():]}"
    return datetime.fromisoformat(text).astimezone(UTC)


def _rdt(raw: Mapping[str, Any], key: str, ctx: str) -> datetime:
    value = _dt(raw, key, ctx, required=True)
    assert value is not None
    return value


def _rbool(raw: Mapping[str, Any], key: str, ctx: str) -> bool:
    value = _bool(raw, key, ctx, required=True)
    assert value is not None
    return value


def _rint(raw: Mapping[str, Any], key: str, ctx: str) -> int:
    value = _int(raw, key, ctx, required=True)
    assert value is not None
    return value


def _number(raw: Mapping[str, Any], key: str, ctx: str) -> Decimal | None:
    # strikes and multipliers are JSON numbers (int or float); read through str() to stay exact
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(f"{ctx}.{key}", "expected a number", value)
    try:
        return decimal_from_wire(str(value), field=f"{ctx}.{key}")
    except MoneyError as exc:
        raise _fail(f"{ctx}.{key}", "expected a number", value) from exc


def _decimal_str(value: Any, field: str) -> Decimal:
    if not isinstance(value, str):
        raise _fail(field, "expected a decimal string", value)
    try:
        return decimal_from_wire(value, field=field)
    except MoneyError as exc:
        raise _fail(field, "not a decimal number", value) from exc


def _money(
    raw: Mapping[str, Any], key: str, ctx: str, legacy: str | None = None, *, required: bool = True
) -> Decimal | None:
    """Read a dollar amount (not a price: may be negative or sub-penny) from ``key`` or legacy."""
    value = raw.get(key)
    if value == "":  # transitional 2026 payloads send "" for a not-yet-populated dollars field
        value = None
    current = None if value is None else _decimal_str(value, f"{ctx}.{key}")
    old = None
    if legacy is not None and raw.get(legacy) is not None:
        cents = _int(raw, legacy, ctx)
        assert cents is not None
        old = Decimal(cents) / _HUNDRED
    if current is not None and old is not None and current != old:
        raise _fail(f"{ctx}.{key}", f"disagrees with legacy {legacy}={old}", value)
    result = current if current is not None else old
    if result is None and required:
        raise _fail(f"{ctx}.{key}", "missing required field", None)
    return result


def _count(
    raw: Mapping[str, Any],
    key: str,
    ctx: str,
    legacy: str | None = None,
    *,
    required: bool = True,
    signed: bool = False,
) -> Decimal | None:
    """Read a contract count from ``key`` ("10.00") or ``legacy`` (10, or an FP string)."""
    found: list[tuple[str, Decimal]] = []
    for name in (key, legacy):
        if name is None or raw.get(name) is None:
            continue
        value = raw[name]
        field = f"{ctx}.{name}"
        if isinstance(value, bool):
            raise _fail(field, "expected a count", value)
        number = Decimal(value) if isinstance(value, int) else _decimal_str(value, field)
        if number < 0 and not signed:
            raise _fail(field, "negative count", value)
        if number != number.quantize(_CENTI):
            raise _fail(field, "count finer than 0.01 contracts", value)
        found.append((field, number))
    if len(found) == 2 and found[0][1] != found[1][1]:
        raise _fail(found[0][0], f"disagrees with {found[1][0]}={raw.get(legacy or '')!r}",
                    raw.get(key))
    if not found:
        if required:
            raise _fail(f"{ctx}.{key}", "missing required field", None)
        return None
    return found[0][1]


def _rcount(raw: Mapping[str, Any], key: str, ctx: str, legacy: str | None = None,
            *, signed: bool = False) -> Decimal:
    value = _count(raw, key, ctx, legacy, required=True, signed=signed)
    assert value is not None
    return value


def _rmoney(raw: Mapping[str, Any], key: str, ctx: str, legacy: str | None = None) -> Decimal:
    value = _money(raw, key, ctx, legacy, required=True)
    assert value is not None
    return value


# --------------------------------------------------------------------------------------------
# prices and the market's price grid


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class PriceRange(_Frozen):
    """One band of valid prices: ``start``..``end`` dollars in steps of ``step``."""

    start: Decimal
    end: Decimal
    step: Decimal


class PriceGrid(_Frozen):
    """The prices a market accepts (``Market.price_ranges``); legacy markets use whole cents."""

    ranges: tuple[PriceRange, ...]

    def allows(self, price: Decimal) -> bool:
        """Return whether ``price`` (dollars) lies on one of the grid's bands."""
        for band in self.ranges:
            if band.start <= price <= band.end and (price - band.start) % band.step == 0:
                return True
        return False

    @property
    def sub_penny(self) -> bool:
        """Whether some band steps finer than one cent."""
        return any(band.step % _CENTI != 0 for band in self.ranges)


CENT_GRID = PriceGrid(
    ranges=(PriceRange(start=Decimal(0), end=Decimal(1), step=_CENTI),)
)


def _price(
    raw: Mapping[str, Any],
    key: str,
    ctx: str,
    legacy: str | None,
    grid: PriceGrid,
    *,
    required: bool = True,
) -> Decimal | None:
    """Read a contract price in dollars from ``key`` ("0.5600") or ``legacy`` (56 cents)."""
    value = raw.get(key)
    if value == "":
        value = None
    current = None
    if value is not None:
        current = _decimal_str(value, f"{ctx}.{key}")
        _check_price(current, f"{ctx}.{key}", value, grid)
    old = None
    if legacy is not None and raw.get(legacy) is not None:
        cents = _int(raw, legacy, ctx)
        assert cents is not None
        if not 0 <= cents <= 100:
            raise _fail(f"{ctx}.{legacy}", "price outside 0..100 cents", cents)
        old = Decimal(cents) / _HUNDRED
    if current is not None and old is not None and current != old:
        raise _fail(f"{ctx}.{key}", f"disagrees with legacy {legacy}={old}", value)
    result = current if current is not None else old
    if result is None and required:
        raise _fail(f"{ctx}.{key}", "missing required field", None)
    return result


def _check_price(price: Decimal, field: str, shown: Any, grid: PriceGrid) -> None:
    if not Decimal(0) <= price <= Decimal(1):
        raise _fail(field, "price outside $0..$1", shown)
    if grid.allows(price):
        return
    if price % _CENTI != 0:
        raise SubpennyPriceError("sub-penny price not allowed by the market's price_ranges",
                                 field=field, value=shown)
    raise _fail(field, "price off the market's price grid", shown)


def _rprice(raw: Mapping[str, Any], key: str, ctx: str, legacy: str | None,
            grid: PriceGrid) -> Decimal:
    value = _price(raw, key, ctx, legacy, grid, required=True)
    assert value is not None
    return value


def _cents(price: Decimal, field: str) -> Cents:
    # exact dollars -> integer cents, refusing (never rounding) a sub-penny value
    value = price * _HUNDRED
    if value != value.to_integral_value():
        raise SubpennyError("not a whole number of cents", field=field, value=str(price))
    return Cents(int(value))


def _whole(count: Decimal, field: str) -> int:
    # exact contracts -> whole contracts, refusing a fractional count
    return contracts_from_fp(str(count), field=field, allow_negative=True)


def _grid(raw: Mapping[str, Any], ctx: str) -> PriceGrid:
    ranges = raw.get("price_ranges")
    if ranges is None:
        return CENT_GRID
    if not isinstance(ranges, list) or not ranges:
        raise _fail(f"{ctx}.price_ranges", "expected a non-empty list", ranges)
    bands = []
    for i, band in enumerate(ranges):
        where = f"{ctx}.price_ranges[{i}]"
        band = require_object(band, where)
        start = _decimal_str(_get(band, "start", where, required=True), f"{where}.start")
        end = _decimal_str(_get(band, "end", where, required=True), f"{where}.end")
        step = _decimal_str(_get(band, "step", where, required=True), f"{where}.step")
        if step <= 0 or start > end or start < 0 or end > 1:
            raise _fail(where, "invalid price band", dict(band))
        bands.append(PriceRange(start=start, end=end, step=step))
    return PriceGrid(ranges=tuple(bands))


# --------------------------------------------------------------------------------------------
# markets, events, series


class Market(_Frozen):
    """A market, from either shape. Prices in dollars (exact), counts in contracts (exact)."""

    ticker: str
    event_ticker: str
    market_type: Literal["binary", "scalar"]
    title: str | None
    subtitle: str | None
    yes_sub_title: str
    no_sub_title: str
    status: str
    open_time: datetime
    close_time: datetime
    created_time: datetime | None
    updated_time: datetime | None
    expected_expiration_time: datetime | None
    expiration_time: datetime | None
    latest_expiration_time: datetime
    settlement_timer_seconds: int
    yes_bid: Decimal
    yes_ask: Decimal
    no_bid: Decimal
    no_ask: Decimal
    last_price: Decimal
    previous_yes_bid: Decimal
    previous_yes_ask: Decimal
    previous_price: Decimal
    yes_bid_size: Decimal | None
    yes_ask_size: Decimal | None
    volume: Decimal
    volume_24h: Decimal
    open_interest: Decimal
    notional_value: Decimal
    liquidity: Decimal | None
    result: str
    can_close_early: bool
    expiration_value: str
    settlement_value: Decimal | None
    strike_type: str | None
    floor_strike: Decimal | None
    cap_strike: Decimal | None
    rules_primary: str
    rules_secondary: str
    price_level_structure: str | None
    price_grid: PriceGrid

    @property
    def yes_bid_cents(self) -> Cents:
        """Best YES bid in cents (raises SubpennyError on a sub-penny market's odd price)."""
        return _cents(self.yes_bid, "yes_bid")

    @property
    def yes_ask_cents(self) -> Cents:
        """Best YES ask in cents."""
        return _cents(self.yes_ask, "yes_ask")

    @property
    def no_bid_cents(self) -> Cents:
        """Best NO bid in cents."""
        return _cents(self.no_bid, "no_bid")

    @property
    def no_ask_cents(self) -> Cents:
        """Best NO ask in cents."""
        return _cents(self.no_ask, "no_ask")

    @property
    def last_price_cents(self) -> Cents:
        """Last traded YES price in cents."""
        return _cents(self.last_price, "last_price")


def parse_market(raw: Any) -> Market:
    """Map one wire market (current or legacy shape) to ``Market``."""
    obj = require_object(raw, "market")
    ticker = _str(obj, "ticker", "market")
    ctx = f"market[{ticker}]"
    grid = _grid(obj, ctx)
    status = _renum(obj, "status", ctx, _MARKET_STATUSES)
    market_type = _renum(obj, "market_type", ctx, frozenset({"binary", "scalar"}))
    return Market(
        ticker=_rstr(obj, "ticker", ctx),
        event_ticker=_rstr(obj, "event_ticker", ctx),
        market_type=market_type,  # type: ignore[arg-type]
        title=_str(obj, "title", ctx, required=False),
        subtitle=_str(obj, "subtitle", ctx, required=False),
        yes_sub_title=_rstr(obj, "yes_sub_title", ctx),
        no_sub_title=_rstr(obj, "no_sub_title", ctx),
        status=status,
        open_time=_rdt(obj, "open_time", ctx),
        close_time=_rdt(obj, "close_time", ctx),
        created_time=_dt(obj, "created_time", ctx, required=False),
        updated_time=_dt(obj, "updated_time", ctx, required=False),
        expected_expiration_time=_dt(obj, "expected_expiration_time", ctx, required=False),
        expiration_time=_dt(obj, "expiration_time", ctx, required=False),
        latest_expiration_time=_rdt(obj, "latest_expiration_time", ctx),
        settlement_timer_seconds=_rint(obj, "settlement_timer_seconds", ctx),
        yes_bid=_rprice(obj, "yes_bid_dollars", ctx, "yes_bid", grid),
        yes_ask=_rprice(obj, "yes_ask_dollars", ctx, "yes_ask", grid),
        no_bid=_rprice(obj, "no_bid_dollars", ctx, "no_bid", grid),
        no_ask=_rprice(obj, "no_ask_dollars", ctx, "no_ask", grid),
        last_price=_rprice(obj, "last_price_dollars", ctx, "last_price", grid),
        previous_yes_bid=_rprice(obj, "previous_yes_bid_dollars", ctx, "previous_yes_bid", grid),
        previous_yes_ask=_rprice(obj, "previous_yes_ask_dollars", ctx, "previous_yes_ask", grid),
        previous_price=_rprice(obj, "previous_price_dollars", ctx, "previous_price", grid),
        yes_bid_size=_count(obj, "yes_bid_size_fp", ctx, required=False),
        yes_ask_size=_count(obj, "yes_ask_size_fp", ctx, required=False),
        volume=_rcount(obj, "volume_fp", ctx, "volume"),
        volume_24h=_rcount(obj, "volume_24h_fp", ctx, "volume_24h"),
        open_interest=_rcount(obj, "open_interest_fp", ctx, "open_interest"),
        notional_value=_rmoney(obj, "notional_value_dollars", ctx, "notional_value"),
        liquidity=_money(obj, "liquidity_dollars", ctx, "liquidity", required=False),
        result=_renum(obj, "result", ctx, _RESULTS),
        can_close_early=_rbool(obj, "can_close_early", ctx),
        expiration_value=_rstr(obj, "expiration_value", ctx),
        settlement_value=_money(
            obj, "settlement_value_dollars", ctx, "settlement_value", required=False
        ),
        strike_type=_enum(obj, "strike_type", ctx, _STRIKE_TYPES, required=False),
        floor_strike=_number(obj, "floor_strike", ctx),
        cap_strike=_number(obj, "cap_strike", ctx),
        rules_primary=_rstr(obj, "rules_primary", ctx),
        rules_secondary=_rstr(obj, "rules_secondary", ctx),
        price_level_structure=_str(obj, "price_level_structure", ctx, required=False),
        price_grid=grid,
    )


class SettlementSource(_Frozen):
    """Where a series settles (name and URL)."""

    name: str
    url: str | None


def _sources(raw: Mapping[str, Any], ctx: str) -> tuple[SettlementSource, ...] | None:
    value = raw.get("settlement_sources")
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(f"{ctx}.settlement_sources", "expected a list", value)
    out = []
    for i, item in enumerate(value):
        where = f"{ctx}.settlement_sources[{i}]"
        item = require_object(item, where)
        out.append(SettlementSource(name=_rstr(item, "name", where),
                                    url=_str(item, "url", where, required=False)))
    return tuple(out)


class Event(_Frozen):
    """An event (one climate day, say) and, when requested, its markets."""

    event_ticker: str
    series_ticker: str
    title: str
    sub_title: str
    collateral_return_type: str
    mutually_exclusive: bool
    category: str | None
    strike_date: datetime | None
    settlement_sources: tuple[SettlementSource, ...] | None
    markets: tuple[Market, ...]


def parse_event(raw: Any, markets: Any = None) -> Event:
    """Map a wire event (``EventData``) and its markets (nested or given separately)."""
    obj = require_object(raw, "event")
    ticker = _str(obj, "event_ticker", "event")
    ctx = f"event[{ticker}]"
    nested = obj.get("markets") if markets is None else markets
    if nested is not None and not isinstance(nested, list):
        raise _fail(f"{ctx}.markets", "expected a list", nested)
    return Event(
        event_ticker=_rstr(obj, "event_ticker", ctx),
        series_ticker=_rstr(obj, "series_ticker", ctx),
        title=_rstr(obj, "title", ctx),
        sub_title=_rstr(obj, "sub_title", ctx),
        collateral_return_type=_renum(
            obj, "collateral_return_type", ctx, frozenset({"MECNET", "DIRECNET", ""})
        ),
        mutually_exclusive=_rbool(obj, "mutually_exclusive", ctx),
        category=_str(obj, "category", ctx, required=False),
        strike_date=_dt(obj, "strike_date", ctx, required=False),
        settlement_sources=_sources(obj, ctx),
        markets=tuple(parse_market(m) for m in (nested or [])),
    )


class Series(_Frozen):
    """A series (KXHIGHNY...): fee schedule and settlement sources."""

    ticker: str
    frequency: str
    title: str
    category: str
    tags: tuple[str, ...] | None
    settlement_sources: tuple[SettlementSource, ...] | None
    contract_url: str
    contract_terms_url: str | None
    fee_type: str
    fee_multiplier: Decimal


def parse_series(raw: Any) -> Series:
    """Map a wire series to ``Series``."""
    obj = require_object(raw, "series")
    ctx = f"series[{obj.get('ticker')}]"
    tags = obj.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise _fail(f"{ctx}.tags", "expected a list of strings", tags)
    multiplier = _number(obj, "fee_multiplier", ctx)
    if multiplier is None:
        raise _fail(f"{ctx}.fee_multiplier", "missing required field", None)
    return Series(
        ticker=_rstr(obj, "ticker", ctx),
        frequency=_rstr(obj, "frequency", ctx),
        title=_rstr(obj, "title", ctx),
        category=_rstr(obj, "category", ctx),
        tags=tuple(tags) if tags is not None else None,
        settlement_sources=_sources(obj, ctx),
        contract_url=_rstr(obj, "contract_url", ctx),
        contract_terms_url=_str(obj, "contract_terms_url", ctx, required=False),
        fee_type=_renum(obj, "fee_type", ctx, _FEE_TYPES),
        fee_multiplier=multiplier,
    )


# --------------------------------------------------------------------------------------------
# order book, trades, candlesticks


class BookLevel(_Frozen):
    """One price level of bids: price in dollars, size in contracts."""

    price: Decimal
    count: Decimal


class Orderbook(_Frozen):
    """Bids on both outcomes, ascending by price (best bid last); NO prices are NO-leg prices."""

    yes: tuple[BookLevel, ...]
    no: tuple[BookLevel, ...]

    @property
    def best_yes_bid(self) -> Decimal | None:
        """Highest YES bid in dollars, or None if the side is empty."""
        return self.yes[-1].price if self.yes else None

    @property
    def best_yes_ask(self) -> Decimal | None:
        """Implied lowest YES ask: 1 - best NO bid."""
        return Decimal(1) - self.no[-1].price if self.no else None


def _levels(value: Any, field: str, grid: PriceGrid, *, legacy: bool) -> tuple[BookLevel, ...]:
    if value is None and legacy:  # the legacy book sent null for an empty side
        return ()
    if not isinstance(value, list):
        raise _fail(field, "expected a list of [price, count] levels", value)
    out: list[BookLevel] = []
    for i, level in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(level, list) or len(level) != 2:
            raise _fail(where, "expected a [price, count] pair", level)
        pair = {"price": level[0], "count": level[1]}
        if legacy:
            price = _rprice(pair, "", where, "price", grid)
            count = _rcount(pair, "", where, "count")
        else:
            price = _rprice(pair, "price", where, None, grid)
            count = _rcount(pair, "count", where)
        if count <= 0:
            raise _fail(f"{where}.count", "a book level must hold a positive count", level[1])
        if out and price <= out[-1].price:
            raise _fail(where, "levels must be strictly ascending by price", level)
        out.append(BookLevel(price=price, count=count))
    return tuple(out)


def parse_orderbook(raw: Any, grid: PriceGrid = CENT_GRID) -> Orderbook:
    """Map ``{orderbook_fp:{yes_dollars,no_dollars}}`` or legacy ``{orderbook:{yes,no}}``."""
    obj = require_object(raw, "orderbook response")
    if obj.get("orderbook_fp") is not None:
        book = require_object(obj["orderbook_fp"], "orderbook_fp")
        return Orderbook(
            yes=_levels(book.get("yes_dollars"), "orderbook_fp.yes_dollars", grid, legacy=False),
            no=_levels(book.get("no_dollars"), "orderbook_fp.no_dollars", grid, legacy=False),
        )
    if obj.get("orderbook") is not None:
        book = require_object(obj["orderbook"], "orderbook")
        return Orderbook(
            yes=_levels(book.get("yes"), "orderbook.yes", grid, legacy=True),
            no=_levels(book.get("no"), "orderbook.no", grid, legacy=True),
        )
    raise _fail("orderbook_fp", "missing required field", None)


def _book_side_from_legacy(side: str | None, action: str | None) -> BookSide | None:
    # buy yes / sell no -> YES bid; buy no / sell yes -> YES ask (docs order_direction.md)
    if side is None:
        return None
    if action in (None, "buy"):
        return "bid" if side == "yes" else "ask"
    return "ask" if side == "yes" else "bid"


def _book_side(obj: Mapping[str, Any], ctx: str, *, side_key: str = "book_side",
               outcome_key: str = "outcome_side", legacy_side: str = "side",
               legacy_action: str | None = "action") -> BookSide:
    current = _enum(obj, side_key, ctx, frozenset({"bid", "ask"}), required=False)
    outcome = _enum(obj, outcome_key, ctx, frozenset({"yes", "no"}), required=False)
    if outcome is not None:  # the V2 direction model: bid == yes, ask == no, always
        implied = "bid" if outcome == "yes" else "ask"
        if current is not None and current != implied:
            raise _fail(f"{ctx}.{outcome_key}", f"contradicts {side_key}={current}", outcome)
        current = implied
    old_side = _enum(obj, legacy_side, ctx, frozenset({"yes", "no"}), required=False)
    old_action = (
        _enum(obj, legacy_action, ctx, frozenset({"buy", "sell"}), required=False)
        if legacy_action else None
    )
    old = _book_side_from_legacy(old_side, old_action)
    if current is not None and old is not None and current != old:
        raise _fail(f"{ctx}.{side_key}", f"disagrees with legacy {legacy_side}/{legacy_action}",
                    current)
    result = current or old
    if result is None:
        raise _fail(f"{ctx}.{side_key}", "missing required field", None)
    return result  # type: ignore[return-value]


class Trade(_Frozen):
    """One public trade."""

    trade_id: str
    ticker: str
    count: Decimal
    yes_price: Decimal
    no_price: Decimal
    taker_book_side: BookSide
    created_time: datetime
    is_block_trade: bool | None


def parse_trade(raw: Any, grid: PriceGrid = CENT_GRID) -> Trade:
    """Map a wire trade (``count_fp``/``*_dollars`` or legacy ``count``/cents)."""
    obj = require_object(raw, "trade")
    ctx = f"trade[{obj.get('trade_id')}]"
    return Trade(
        trade_id=_rstr(obj, "trade_id", ctx),
        ticker=_rstr(obj, "ticker", ctx),
        count=_rcount(obj, "count_fp", ctx, "count"),
        yes_price=_rprice(obj, "yes_price_dollars", ctx, "yes_price", grid),
        no_price=_rprice(obj, "no_price_dollars", ctx, "no_price", grid),
        taker_book_side=_book_side(obj, ctx, side_key="taker_book_side",
                                   outcome_key="taker_outcome_side", legacy_side="taker_side",
                                   legacy_action=None),
        created_time=_rdt(obj, "created_time", ctx),
        is_block_trade=_bool(obj, "is_block_trade", ctx, required=False),
    )


class Ohlc(_Frozen):
    """Open/high/low/close in dollars (None where the period had no data)."""

    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None


def _ohlc(raw: Any, field: str, grid: PriceGrid, *, required: bool) -> Ohlc | None:
    if raw is None and not required:
        return None
    obj = require_object(raw, field)
    parts = {}
    for name in ("open", "high", "low", "close"):
        parts[name] = _price(obj, f"{name}_dollars", field, name, grid, required=required)
    return Ohlc(**parts)


class Candlestick(_Frozen):
    """One candlestick period of a market."""

    end_period_ts: int
    yes_bid: Ohlc
    yes_ask: Ohlc
    price: Ohlc | None
    volume: Decimal
    open_interest: Decimal


def parse_candlestick(raw: Any, grid: PriceGrid = CENT_GRID) -> Candlestick:
    """Map a wire candlestick (current, historical or legacy shape)."""
    obj = require_object(raw, "candlestick")
    ctx = f"candlestick[{obj.get('end_period_ts')}]"
    end = _int(obj, "end_period_ts", ctx)
    assert end is not None
    yes_bid = _ohlc(obj.get("yes_bid"), f"{ctx}.yes_bid", grid, required=True)
    yes_ask = _ohlc(obj.get("yes_ask"), f"{ctx}.yes_ask", grid, required=True)
    assert yes_bid is not None
    assert yes_ask is not None
    return Candlestick(
        end_period_ts=end,
        yes_bid=yes_bid,
        yes_ask=yes_ask,
        price=_ohlc(obj.get("price"), f"{ctx}.price", grid, required=False),
        volume=_rcount(obj, "volume_fp", ctx, "volume"),
        open_interest=_rcount(obj, "open_interest_fp", ctx, "open_interest"),
    )


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


# --------------------------------------------------------------------------------------------
# requests: the current (V2) shape only, unknown fields forbidden

_PRICE_TEXT = re.compile(r"^(0\.\d{2,4}|1\.0{2,4})$")
_COUNT_TEXT = re.compile(r"^\d+(\.\d{1,2})?$")


def _check_price_text(value: str, field: str) -> str:
    if not _PRICE_TEXT.match(value) or not Decimal(0) < Decimal(value) < Decimal(1):
        raise ValueError(f"{field}: expected a dollar price string like '0.56' in (0, 1), "
                         f"got {value!r}")
    return value


def _check_count_text(value: str, field: str, *, positive: bool = True) -> str:
    if not _COUNT_TEXT.match(value) or (positive and Decimal(value) <= 0):
        raise ValueError(f"{field}: expected a positive count string like '10' or '10.00', "
                         f"got {value!r}")
    return value


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON body (unset optional fields dropped, as the official SDK does)."""
        return self.model_dump(exclude_none=True)


class CreateOrderV2Request(_Request):
    """``POST /portfolio/events/orders``: a limit order on the YES book (bid buys YES)."""

    ticker: str
    side: BookSide
    count: str
    price: str
    time_in_force: TimeInForce
    self_trade_prevention_type: SelfTradePrevention
    client_order_id: str | None = None
    expiration_time: int | None = None
    post_only: bool | None = None
    reduce_only: bool | None = None
    cancel_order_on_pause: bool | None = None
    subaccount: int | None = None
    order_group_id: str | None = None
    exchange_index: int | None = None

    @field_validator("price")
    @classmethod
    def _price_ok(cls, value: str) -> str:
        return _check_price_text(value, "price")

    @field_validator("count")
    @classmethod
    def _count_ok(cls, value: str) -> str:
        return _check_count_text(value, "count")

    @model_validator(mode="after")
    def _combination_ok(self) -> CreateOrderV2Request:
        if self.reduce_only and self.time_in_force != "immediate_or_cancel":
            raise ValueError("reduce_only requires time_in_force=immediate_or_cancel")
        if self.expiration_time is not None and self.time_in_force != "good_till_canceled":
            raise ValueError("expiration_time requires time_in_force=good_till_canceled")
        if self.subaccount is not None and not 0 <= self.subaccount <= 63:
            raise ValueError(f"subaccount: expected 0..63, got {self.subaccount}")
        return self


class BatchCreateOrdersV2Request(_Request):
    """``POST /portfolio/events/orders/batched``."""

    orders: tuple[CreateOrderV2Request, ...]


class AmendOrderV2Request(_Request):
    """``POST /portfolio/events/orders/{id}/amend``: new price and new *total* count."""

    ticker: str
    side: BookSide
    price: str
    count: str
    client_order_id: str | None = None
    updated_client_order_id: str | None = None
    expiration_time: int | None = None
    exchange_index: int | None = None

    @field_validator("price")
    @classmethod
    def _price_ok(cls, value: str) -> str:
        return _check_price_text(value, "price")

    @field_validator("count")
    @classmethod
    def _count_ok(cls, value: str) -> str:
        return _check_count_text(value, "count")


class DecreaseOrderV2Request(_Request):
    """``POST /portfolio/events/orders/{id}/decrease``: exactly one of reduce_by / reduce_to."""

    reduce_by: str | None = None
    reduce_to: str | None = None
    exchange_index: int | None = None
    market_ticker: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DecreaseOrderV2Request:
        if (self.reduce_by is None) == (self.reduce_to is None):
            raise ValueError("give exactly one of reduce_by or reduce_to")
        if self.reduce_by is not None:
            _check_count_text(self.reduce_by, "reduce_by")
        if self.reduce_to is not None:
            _check_count_text(self.reduce_to, "reduce_to", positive=False)
        return self


class BatchCancelOrder(_Request):
    """One item of a batch cancel."""

    order_id: str
    subaccount: int | None = None
    exchange_index: int | None = None
    market_ticker: str | None = None


class BatchCancelOrdersV2Request(_Request):
    """``DELETE /portfolio/events/orders/batched`` (a DELETE with a JSON body)."""

    orders: tuple[BatchCancelOrder, ...]


class CreateOrderGroupRequest(_Request):
    """``POST /portfolio/order_groups/create``."""

    contracts_limit: int | None = None
    contracts_limit_fp: str | None = None
    subaccount: int | None = None
    exchange_index: int | None = None

    @model_validator(mode="after")
    def _limit_ok(self) -> CreateOrderGroupRequest:
        if (self.contracts_limit is None) == (self.contracts_limit_fp is None):
            raise ValueError("give exactly one of contracts_limit or contracts_limit_fp")
        if self.contracts_limit is not None and not 1 <= self.contracts_limit <= 1_000_000:
            raise ValueError(f"contracts_limit: expected 1..1000000, got {self.contracts_limit}")
        return self


class UpdateOrderGroupLimitRequest(_Request):
    """``PUT /portfolio/order_groups/{id}/limit``."""

    contracts_limit: int | None = None
    contracts_limit_fp: str | None = None


# --------------------------------------------------------------------------------------------
# write responses


class CreateOrderV2Response(_Frozen):
    """The acknowledgement of a create (or, with ``resolved_by_lookup``, the order found)."""

    order_id: str
    client_order_id: str | None
    fill_count: Decimal
    remaining_count: Decimal
    average_fill_price: Decimal | None
    average_fee_paid: Decimal | None
    ts_ms: int | None
    resolved_by_lookup: bool = False


def parse_create_order_response(raw: Any) -> CreateOrderV2Response:
    """Map ``CreateOrderV2Response``."""
    obj = require_object(raw, "create order response")
    ctx = f"create_order[{obj.get('order_id')}]"
    ts_ms = _int(obj, "ts_ms", ctx)
    return CreateOrderV2Response(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        fill_count=_rcount(obj, "fill_count", ctx),
        remaining_count=_rcount(obj, "remaining_count", ctx),
        average_fill_price=_money(obj, "average_fill_price", ctx, required=False),
        average_fee_paid=_money(obj, "average_fee_paid", ctx, required=False),
        ts_ms=ts_ms,
    )


class BatchCreateItem(_Frozen):
    """One result of a batch create: an acknowledgement or an error, in request order."""

    order_id: str | None
    client_order_id: str | None
    fill_count: Decimal | None
    remaining_count: Decimal | None
    ts_ms: int | None
    error: ErrorResponse | None


def parse_batch_create_item(raw: Any) -> BatchCreateItem:
    """Map one ``BatchCreateOrdersV2ResponseOrdersInner``."""
    obj = require_object(raw, "batch create item")
    ctx = f"batch_create[{obj.get('client_order_id')}]"
    error = obj.get("error")
    item = BatchCreateItem(
        order_id=_str(obj, "order_id", ctx, required=False),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        fill_count=_count(obj, "fill_count", ctx, required=False),
        remaining_count=_count(obj, "remaining_count", ctx, required=False),
        ts_ms=_int(obj, "ts_ms", ctx, required=False),
        error=parse_error(error) if error is not None else None,
    )
    if item.error is None and item.order_id is None:
        raise _fail(f"{ctx}.order_id", "an item must carry order_id or error", None)
    return item


class AmendOrderV2Response(_Frozen):
    """The acknowledgement of an amend."""

    order_id: str
    client_order_id: str | None
    remaining_count: Decimal | None
    fill_count: Decimal | None
    ts_ms: int


def parse_amend_response(raw: Any) -> AmendOrderV2Response:
    """Map ``AmendOrderV2Response``."""
    obj = require_object(raw, "amend response")
    ctx = f"amend[{obj.get('order_id')}]"
    ts_ms = _int(obj, "ts_ms", ctx)
    assert ts_ms is not None
    return AmendOrderV2Response(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        remaining_count=_count(obj, "remaining_count", ctx, required=False),
        fill_count=_count(obj, "fill_count", ctx, required=False),
        ts_ms=ts_ms,
    )


class DecreaseOrderV2Response(_Frozen):
    """The acknowledgement of a decrease."""

    order_id: str
    client_order_id: str | None
    remaining_count: Decimal
    ts_ms: int | None


def parse_decrease_response(raw: Any) -> DecreaseOrderV2Response:
    """Map ``DecreaseOrderV2Response``."""
    obj = require_object(raw, "decrease response")
    ctx = f"decrease[{obj.get('order_id')}]"
    return DecreaseOrderV2Response(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        remaining_count=_rcount(obj, "remaining_count", ctx),
        ts_ms=_int(obj, "ts_ms", ctx, required=False),
    )


class CancelOrderV2Response(_Frozen):
    """The acknowledgement of a cancel: how many contracts it removed."""

    order_id: str
    client_order_id: str | None
    reduced_by: Decimal
    ts_ms: int


def parse_cancel_response(raw: Any) -> CancelOrderV2Response:
    """Map ``CancelOrderV2Response``."""
    obj = require_object(raw, "cancel response")
    ctx = f"cancel[{obj.get('order_id')}]"
    ts_ms = _int(obj, "ts_ms", ctx)
    assert ts_ms is not None
    return CancelOrderV2Response(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        reduced_by=_rcount(obj, "reduced_by", ctx),
        ts_ms=ts_ms,
    )


class BatchCancelItem(_Frozen):
    """One result of a batch cancel."""

    order_id: str
    client_order_id: str | None
    reduced_by: Decimal | None
    ts_ms: int | None
    error: ErrorResponse | None


def parse_batch_cancel_item(raw: Any) -> BatchCancelItem:
    """Map one ``BatchCancelOrdersV2ResponseOrdersInner``."""
    obj = require_object(raw, "batch cancel item")
    ctx = f"batch_cancel[{obj.get('order_id')}]"
    error = obj.get("error")
    return BatchCancelItem(
        order_id=_rstr(obj, "order_id", ctx),
        client_order_id=_str(obj, "client_order_id", ctx, required=False),
        reduced_by=_count(obj, "reduced_by", ctx, required=error is None),
        ts_ms=_int(obj, "ts_ms", ctx, required=False),
        error=parse_error(error) if error is not None else None,
    )


class OrderGroup(_Frozen):
    """An order group (rolling 15 s contracts limit)."""

    id: str
    is_auto_cancel_enabled: bool
    contracts_limit: Decimal | None
    orders: tuple[str, ...] | None


def parse_order_group(raw: Any, group_id: str | None = None) -> OrderGroup:
    """Map ``OrderGroup`` (list item) or ``GetOrderGroupResponse`` (id given by the caller)."""
    obj = require_object(raw, "order_group")
    ctx = f"order_group[{obj.get('id') or group_id}]"
    orders = obj.get("orders")
    if orders is not None and not (
        isinstance(orders, list) and all(isinstance(o, str) for o in orders)
    ):
        raise _fail(f"{ctx}.orders", "expected a list of order ids", orders)
    gid = group_id if group_id is not None else _rstr(obj, "id", ctx)
    return OrderGroup(
        id=gid,
        is_auto_cancel_enabled=_rbool(obj, "is_auto_cancel_enabled", ctx),
        contracts_limit=_count(obj, "contracts_limit_fp", ctx, "contracts_limit", required=False),
        orders=tuple(orders) if orders is not None else None,
    )


# --------------------------------------------------------------------------------------------
# exchange


class ExchangeStatus(_Frozen):
    """Whether the exchange and trading are active."""

    exchange_active: bool
    trading_active: bool
    exchange_estimated_resume_time: datetime | None


def parse_exchange_status(raw: Any) -> ExchangeStatus:
    """Map ``ExchangeStatus``."""
    obj = require_object(raw, "exchange status")
    ctx = "exchange_status"
    return ExchangeStatus(
        exchange_active=_rbool(obj, "exchange_active", ctx),
        trading_active=_rbool(obj, "trading_active", ctx),
        exchange_estimated_resume_time=_dt(obj, "exchange_estimated_resume_time", ctx,
                                           required=False),
    )


class ExchangeSchedule(_Frozen):
    """The trading schedule, kept as the wire's lists of objects."""

    standard_hours: tuple[dict[str, Any], ...]
    maintenance_windows: tuple[dict[str, Any], ...]


def parse_exchange_schedule(raw: Any) -> ExchangeSchedule:
    """Map ``GetExchangeScheduleResponse``."""
    obj = require_object(raw, "schedule response")
    schedule = require_object(obj.get("schedule"), "schedule")
    parts: dict[str, tuple[dict[str, Any], ...]] = {}
    for key in ("standard_hours", "maintenance_windows"):
        value = schedule.get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise _fail(f"schedule.{key}", "expected a list of objects", value)
        parts[key] = tuple(value)
    return ExchangeSchedule(**parts)


class HistoricalCutoff(_Frozen):
    """Data older than these times is served by the ``/historical`` endpoints only."""

    market_settled_ts: datetime
    trades_created_ts: datetime
    orders_updated_ts: datetime


def parse_historical_cutoff(raw: Any) -> HistoricalCutoff:
    """Map ``GetHistoricalCutoffResponse``."""
    obj = require_object(raw, "historical cutoff")
    ctx = "historical_cutoff"
    return HistoricalCutoff(
        market_settled_ts=_rdt(obj, "market_settled_ts", ctx),
        trades_created_ts=_rdt(obj, "trades_created_ts", ctx),
        orders_updated_ts=_rdt(obj, "orders_updated_ts", ctx),
    )


# --------------------------------------------------------------------------------------------
# pages


class Page(_Frozen):
    """The raw items of one page and the cursor of the next ("" = last page)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True,
                              arbitrary_types_allowed=True)

    items: tuple[Any, ...]
    cursor: str


def parse_page(raw: Any, key: str, *, cursor_required: bool = True) -> Page:
    """Split a list response into its ``key`` items and its cursor; both must be present."""
    obj = require_object(raw, f"{key} response")
    items = obj.get(key)
    if not isinstance(items, list):
        raise _fail(key, "missing required list" if items is None else "expected a list", items)
    cursor = obj.get("cursor")
    if cursor is None and not cursor_required:
        cursor = ""
    if not isinstance(cursor, str):
        raise _fail(f"{key}.cursor", "expected a string cursor", cursor)
    return Page(items=tuple(items), cursor=cursor)
