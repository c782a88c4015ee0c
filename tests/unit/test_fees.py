from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.fees import FeeAccumulator, FeeSchedule, fee_cents, maker_fee_cents, taker_fee_cents
from models.money import MoneyError


@pytest.mark.parametrize(
    ("contracts", "price_cents", "expected_cents"),
    [(1, 50, 2), (100, 50, 175), (100, 10, 63), (1, 1, 1), (10, 99, 1), (0, 50, 0)],
)
def test_taker_fee_published_table_holds(contracts, price_cents, expected_cents):
    assert taker_fee_cents(contracts, price_cents) == expected_cents


def test_taker_fee_half_multiplier_halves_before_rounding():
    # 100 @ 0.50 at M=0.5: 0.875 dollars -> 88 cents
    assert taker_fee_cents(100, 50, Decimal("0.5")) == 88


@given(st.integers(0, 5000), st.integers(0, 100))
def test_taker_fee_is_symmetric_and_never_below_exact(contracts, price_cents):
    fee = taker_fee_cents(contracts, price_cents)
    assert fee == taker_fee_cents(contracts, 100 - price_cents)
    exact = Fraction(7, 100) * contracts * price_cents * (100 - price_cents) / 100
    assert exact <= fee < exact + 1


def test_weather_series_has_no_maker_fee_but_maker_series_do():
    quadratic = FeeSchedule("quadratic", Decimal(1))
    makers = FeeSchedule("quadratic_with_maker_fees", Decimal(1))
    assert fee_cents(100, 50, quadratic, is_taker=False) == 0
    assert fee_cents(100, 50, makers, is_taker=False) == maker_fee_cents(100, 50) == 44


def test_fee_refuses_bad_inputs_with_the_field_named():
    with pytest.raises(MoneyError, match="price_cents"):
        taker_fee_cents(1, 101)
    with pytest.raises(MoneyError, match="contracts"):
        taker_fee_cents(-1, 50)
    with pytest.raises(MoneyError, match="fee_type"):
        FeeSchedule("percent", Decimal(1))


@given(st.lists(st.integers(1, 20), min_size=1, max_size=30), st.integers(1, 99))
def test_fee_accumulator_split_fills_stay_within_a_cent_of_one_fill(sizes, price_cents):
    acc = FeeAccumulator(FeeSchedule())
    charged = [acc.charge(n, price_cents, is_taker=True) for n in sizes]
    single = taker_fee_cents(sum(sizes), price_cents)
    assert all(c >= 0 for c in charged)
    assert single <= sum(charged) <= single + 1
