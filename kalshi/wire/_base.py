"""Low-level readers, price grids and the shared constants of the wire models.

Invariant: every reader names the field (with the object's ticker/id) and the offending value;
nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

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
