from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.money import (
    FractionalCountError,
    MoneyError,
    SubpennyError,
    cents_from_dollars,
    cents_from_probability,
    contracts_from_fp,
    dollars_from_cents,
    fp_from_contracts,
    price_cents_from_dollars,
    price_dollars,
)


@pytest.mark.parametrize(
    ("text", "cents"), [("0.5600", 56), ("10.00", 1000), ("-0.52", -52), ("0", 0), ("1.0000", 100)]
)
def test_cents_from_dollars_exact(text, cents):
    assert cents_from_dollars(text) == cents


def test_subpenny_is_refused_not_rounded():
    with pytest.raises(SubpennyError, match="yes_bid_dollars.*0.055"):
        cents_from_dollars("0.055", field="yes_bid_dollars")


@pytest.mark.parametrize("bad", [0.56, "abc", "NaN", "Infinity", None, True])
def test_non_decimal_values_are_refused(bad):
    with pytest.raises(MoneyError):
        cents_from_dollars(bad, field="price")


def test_price_out_of_range_is_refused():
    with pytest.raises(MoneyError, match="price"):
        price_cents_from_dollars("1.01")


def test_counts_refuse_fractions_and_negatives():
    assert contracts_from_fp("10.00") == 10
    with pytest.raises(FractionalCountError, match="count"):
        contracts_from_fp("10.50")
    with pytest.raises(MoneyError, match="negative"):
        contracts_from_fp("-1.00")
    assert contracts_from_fp("-3.00", field="position_fp", allow_negative=True) == -3


@given(st.integers(-(10**9), 10**9))
def test_dollars_round_trip(cents):
    assert cents_from_dollars(dollars_from_cents(cents)) == cents
    assert cents_from_dollars(dollars_from_cents(cents, places=4)) == cents


@given(st.integers(0, 100))
def test_price_round_trip(price):
    assert price_cents_from_dollars(price_dollars(price)) == price


@given(st.integers(-(10**6), 10**6))
def test_fp_round_trip(n):
    assert contracts_from_fp(fp_from_contracts(n), allow_negative=True) == n


def test_probability_to_cents_is_named_and_bounded():
    assert cents_from_probability(0.555) == 56
    assert cents_from_probability(0.0) == 0
    with pytest.raises(ValueError, match="probability"):
        cents_from_probability(1.2)
