"""The engine's integer OrderFees must charge exactly what models.fees.FeeAccumulator charges."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from models._book import OrderFees, fee_terms
from models.fees import FeeAccumulator, FeeSchedule

schedules = st.builds(
    FeeSchedule,
    st.sampled_from(("quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees")),
    st.sampled_from((Decimal(1), Decimal("0.5"), Decimal("1.25"), Decimal(0), Decimal("2"))))
fills = st.lists(st.tuples(st.integers(1, 500), st.integers(1, 99), st.booleans()),
                 min_size=1, max_size=30)


@settings(max_examples=100, deadline=None)
@given(schedule=schedules, stream=fills)
def test_order_fees_same_charges_as_fee_accumulator(schedule, stream):
    reference = FeeAccumulator(schedule)
    fast = OrderFees(schedule, fee_terms(schedule))
    for contracts, price, is_taker in stream:
        expected = reference.charge(contracts, price, is_taker=is_taker)
        assert fast.charge(contracts, price, is_taker=is_taker) == expected
        assert fast.exact_centicents == reference.exact_centicents
        assert fast.charged_cents == reference.charged_cents


def test_order_fees_known_values_match_published_table():
    # Kalshi's table: 1 @ $0.50 -> $0.02, 100 @ $0.50 -> $1.75, 100 @ $0.10 -> $0.63
    for contracts, price, cents in ((1, 50, 2), (100, 50, 175), (100, 10, 63)):
        fees = OrderFees(FeeSchedule(), fee_terms(FeeSchedule()))
        assert fees.charge(contracts, price, is_taker=True) == cents
