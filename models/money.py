"""Exact money and contract counts.

Invariant: no float ever carries money. Prices and balances are integer cents (``Cents``); the
wire's dollar strings ("0.5600", "10.00") and fixed-point counts are converted exactly or refused.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import NewType

__all__ = [
    "Cents",
    "MoneyError",
    "SubpennyError",
    "FractionalCountError",
    "cents_from_dollars",
    "dollars_from_cents",
    "price_cents_from_dollars",
    "price_dollars",
    "decimal_from_wire",
    "contracts_from_fp",
    "fp_from_contracts",
    "cents_from_probability",
    "format_cents",
]

Cents = NewType("Cents", int)

_HUNDRED = Decimal(100)


class MoneyError(ValueError):
    """A money or count value that cannot be represented exactly. Names the field and value."""

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        self.field = field
        self.value = value
        prefix = f"{field}: " if field else ""
        super().__init__(f"{prefix}{message} (got {value!r})")


class SubpennyError(MoneyError):
    """A dollar amount with a fraction of a cent where whole cents are required."""


class FractionalCountError(MoneyError):
    """A contract count with a fractional part where whole contracts are required."""


def decimal_from_wire(text: object, *, field: str | None = None) -> Decimal:
    """Parse a wire fixed-point string ("0.5600", "10.00") into a finite Decimal, or raise."""
    if isinstance(text, bool) or not isinstance(text, str | int | Decimal):
        # floats are refused on purpose: 0.07 * 3 is not exact
        raise MoneyError("expected a decimal string", field=field, value=text)
    try:
        value = Decimal(text) if not isinstance(text, Decimal) else text
    except InvalidOperation as exc:
        raise MoneyError("not a decimal number", field=field, value=text) from exc
    if not value.is_finite():
        raise MoneyError("not a finite number", field=field, value=text)
    return value


def cents_from_dollars(text: object, *, field: str | None = None) -> Cents:
    """Convert a dollar string ("10.00", "-0.5200") to integer cents, refusing sub-penny values."""
    value = decimal_from_wire(text, field=field) * _HUNDRED
    if value != value.to_integral_value():
        raise SubpennyError("sub-penny dollar amount", field=field, value=text)
    return Cents(int(value))


def dollars_from_cents(cents: int, *, places: int = 2) -> str:
    """Format integer cents as the wire's dollar string: 1050 -> "10.50" (places=4: "10.5000")."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise MoneyError("cents must be an int", field="cents", value=cents)
    if places < 2:
        raise ValueError("places must be >= 2 to represent cents")
    return f"{Decimal(cents) / _HUNDRED:.{places}f}"


def price_cents_from_dollars(text: object, *, field: str = "price") -> Cents:
    """Convert a binary-contract price ("0.5600") to cents in 0..100, refusing sub-penny prices."""
    cents = cents_from_dollars(text, field=field)
    if not 0 <= cents <= 100:
        raise MoneyError("price outside $0.00..$1.00", field=field, value=text)
    return cents


def price_dollars(price_cents: int) -> str:
    """Format a price in cents as the wire's 4-place dollar string: 56 -> "0.5600"."""
    if not 0 <= price_cents <= 100:
        raise MoneyError("price outside 0..100 cents", field="price_cents", value=price_cents)
    return dollars_from_cents(price_cents, places=4)


def contracts_from_fp(text: object, *, field: str = "count", allow_negative: bool = False) -> int:
    """Convert a fixed-point count ("10.00") to whole contracts; refuse fractions, negatives."""
    value = decimal_from_wire(text, field=field)
    if value != value.to_integral_value():
        raise FractionalCountError(
            "fractional contracts are not supported", field=field, value=text
        )
    if value < 0 and not allow_negative:
        raise MoneyError("negative count", field=field, value=text)
    return int(value)


def fp_from_contracts(contracts: int) -> str:
    """Format whole contracts as the wire's fixed-point count string: 10 -> "10.00"."""
    if isinstance(contracts, bool) or not isinstance(contracts, int):
        raise MoneyError("contracts must be an int", field="contracts", value=contracts)
    return f"{contracts}.00" if contracts >= 0 else f"-{-contracts}.00"


def cents_from_probability(prob: float) -> Cents:
    """Turn a model probability (0..1) into a fair price in whole cents, rounding half away."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"probability outside [0, 1]: {prob!r}")
    return Cents(int((Decimal(repr(prob)) * _HUNDRED).to_integral_value(rounding="ROUND_HALF_UP")))


def format_cents(cents: int) -> str:
    """Human form of cents: -1234 -> "-$12.34"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"
