"""Kalshi trading fees, exactly, in integers.

Taker fee per execution: ceil(M * 0.07 * C * P * (1 - P)) dollars to the cent, with P the price in
dollars, C contracts and M the series' ``fee_multiplier``. Maker fees apply only to series whose
``fee_type`` charges them (``quadratic_with_maker_fees``), at 0.0175 instead of 0.07. The 2026
precision rules round each trade's fee up to $0.0001 and keep a per-order accumulator so that
many small fills cost what one fill would: ``FeeAccumulator`` implements that once, for the paper
exchange, the backtester and pricing alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from models.money import Cents, MoneyError

__all__ = [
    "FeeSchedule",
    "FeeAccumulator",
    "FEE_TYPES",
    "TAKER_RATE",
    "MAKER_RATE",
    "taker_fee_cents",
    "maker_fee_cents",
    "fee_cents",
    "fee_per_contract_ceiling_cents",
]

TAKER_RATE = Fraction(7, 100)
MAKER_RATE = Fraction(175, 10_000)
FEE_TYPES = ("quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees", "flat")
FeeType = Literal[
    "quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees", "flat"
]


def _check(contracts: int, price_cents: int) -> None:
    if isinstance(contracts, bool) or not isinstance(contracts, int) or contracts < 0:
        raise MoneyError("contracts must be a non-negative int", field="contracts", value=contracts)
    if isinstance(price_cents, bool) or not isinstance(price_cents, int):
        raise MoneyError("price_cents must be an int", field="price_cents", value=price_cents)
    if not 0 <= price_cents <= 100:
        raise MoneyError("price outside 0..100 cents", field="price_cents", value=price_cents)


def _exact_fee_cents(
    rate: Fraction, multiplier: Fraction, contracts: int, price_cents: int
) -> Fraction:
    # rate * C * (p/100) * (1 - p/100) dollars = rate * C * p * (100 - p) / 100 cents
    return rate * multiplier * contracts * price_cents * (100 - price_cents) / 100


def _ceil(value: Fraction) -> int:
    return -((-value.numerator) // value.denominator)


def _multiplier(value: Decimal | int | str | Fraction) -> Fraction:
    if isinstance(value, float):
        raise MoneyError("fee multiplier must not be a float", field="fee_multiplier", value=value)
    frac = Fraction(str(value)) if not isinstance(value, Fraction) else value
    if frac < 0:
        raise MoneyError("negative fee multiplier", field="fee_multiplier", value=value)
    return frac


def taker_fee_cents(
    contracts: int, price_cents: int, multiplier: Decimal | int | str | Fraction = 1
) -> Cents:
    """Return ceil(M * 0.07 * C * P * (1 - P)) in cents for one execution of C contracts at P."""
    _check(contracts, price_cents)
    return Cents(
        _ceil(_exact_fee_cents(TAKER_RATE, _multiplier(multiplier), contracts, price_cents))
    )


def maker_fee_cents(
    contracts: int, price_cents: int, multiplier: Decimal | int | str | Fraction = 1
) -> Cents:
    """Return ceil(M * 0.0175 * C * P * (1 - P)) in cents (only for series that charge makers)."""
    _check(contracts, price_cents)
    return Cents(
        _ceil(_exact_fee_cents(MAKER_RATE, _multiplier(multiplier), contracts, price_cents))
    )


@dataclass(frozen=True)
class FeeSchedule:
    """A series' fee terms: ``fee_type`` and ``fee_multiplier`` as published on the series."""

    fee_type: str = "quadratic"
    fee_multiplier: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if self.fee_type not in FEE_TYPES:
            raise MoneyError("unknown fee_type", field="fee_type", value=self.fee_type)
        _multiplier(self.fee_multiplier)

    @property
    def charges_makers(self) -> bool:
        """Whether resting (maker) executions pay a fee on this series."""
        return self.fee_type in ("quadratic_with_maker_fees", "quadratic_with_combo_maker_fees")

    def exact_fee_cents(self, contracts: int, price_cents: int, *, is_taker: bool) -> Fraction:
        """Return the unrounded fee in cents as an exact fraction."""
        _check(contracts, price_cents)
        if self.fee_type == "flat":
            # Kalshi does not document the flat schedule; refuse rather than guess.
            raise MoneyError(
                "flat fee_type is not documented; refusing to guess",
                field="fee_type",
                value=self.fee_type,
            )
        if not is_taker and not self.charges_makers:
            return Fraction(0)
        rate = TAKER_RATE if is_taker else MAKER_RATE
        return _exact_fee_cents(rate, _multiplier(self.fee_multiplier), contracts, price_cents)


def fee_cents(contracts: int, price_cents: int, schedule: FeeSchedule, *, is_taker: bool) -> Cents:
    """Return the fee of one execution under ``schedule``, rounded up to the cent."""
    return Cents(_ceil(schedule.exact_fee_cents(contracts, price_cents, is_taker=is_taker)))


def fee_per_contract_ceiling_cents(
    contracts: int, price_cents: int, schedule: FeeSchedule
) -> Cents:
    """Return the taker fee per contract, rounded up: what EV calculations subtract per contract."""
    if contracts <= 0:
        raise MoneyError("contracts must be positive", field="contracts", value=contracts)
    total = fee_cents(contracts, price_cents, schedule, is_taker=True)
    return Cents(-(-total // contracts))


@dataclass
class FeeAccumulator:
    """The per-order fee accumulator of Kalshi's 2026 precision rules.

    Each fill's fee is rounded up to $0.0001 (a hundredth of a cent); the order is charged whole
    cents so that the total charged always equals the cumulative exact fee rounded up to the cent.
    Many small fills therefore cost what one fill of the same size would (within a cent).
    """

    schedule: FeeSchedule = field(default_factory=FeeSchedule)
    exact_centicents: int = 0  # sum of per-fill fees rounded up to $0.0001 (1/100 cent)
    charged_cents: int = 0

    def charge(self, contracts: int, price_cents: int, *, is_taker: bool) -> Cents:
        """Record one fill and return the cents to charge for it now (never negative)."""
        exact = self.schedule.exact_fee_cents(contracts, price_cents, is_taker=is_taker)
        self.exact_centicents += _ceil(exact * 100)
        target = -(-self.exact_centicents // 100)
        due = target - self.charged_cents
        self.charged_cents = target
        return Cents(due)
