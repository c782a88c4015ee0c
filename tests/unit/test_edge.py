"""Decisions: fee-aware edge, Kelly size and the desired orders of one market."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from models.edge import (
    EdgeParams,
    MarketPlan,
    Quote,
    edge_cents,
    fair_cents,
    kelly_contracts,
    plan_market,
)
from models.fees import FeeSchedule
from models.ledger import ms_from_datetime

AS_OF = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
BOOK = Quote("KXHIGHNY-26NOV22-B50", yes_bid_cents=40, yes_ask_cents=45)
PARAMS = EdgeParams()


def plan(prob, quote=BOOK, params=PARAMS, *, bankroll=100_000, cap=1_000, held=0) -> MarketPlan:
    return plan_market(prob, quote, params, as_of=AS_OF, bankroll_cents=bankroll,
                       max_contracts=cap, held_contracts=held)


def test_edge_cents_buy_yes_at_ask_subtracts_taker_fee():
    # fair 55c, ask 45c, fee of 1 at 45c = ceil(0.07*45*55/100) = ceil(1.7325) = 2c
    assert edge_cents(0.55, "yes", 45, 1, FeeSchedule(), is_taker=True) == 8


def test_edge_cents_buy_no_uses_hundred_minus_bid():
    # P(YES)=0.30 -> NO fair 70c; NO costs 100-40 = 60c; fee at 60c for 1 = ceil(1.68) = 2c
    assert edge_cents(0.30, "no", 60, 1, FeeSchedule(), is_taker=True) == 8


def test_edge_cents_large_order_pays_fee_rounded_once():
    # 100 contracts at 45c: fee ceil(173.25) = 174c total -> ceil(1.74) = 2c per contract
    assert edge_cents(0.55, "yes", 45, 100, FeeSchedule(), is_taker=True) == 8


def test_edge_cents_maker_without_maker_fees_pays_nothing():
    assert edge_cents(0.48, "yes", 41, 1, FeeSchedule(), is_taker=False) == 7


def test_edge_cents_maker_on_maker_fee_series_pays_maker_fee():
    schedule = FeeSchedule(fee_type="quadratic_with_maker_fees")
    # 0.0175*41*59/100 = 0.423 -> 1c
    assert edge_cents(0.48, "yes", 41, 1, schedule, is_taker=False) == 6


def test_fair_cents_no_side_is_complement():
    assert fair_cents(0.123, "yes") == 12
    assert fair_cents(0.123, "no") == 88


def test_kelly_contracts_hand_worked_example():
    # cost 47c, fair 55c: full Kelly 8/53 of the bankroll; a quarter of it of $1,000 = 3773.58c
    assert kelly_contracts(55, 47, 100_000, Decimal("0.25")) == 80


@pytest.mark.parametrize(("fair", "cost"), [(47, 47), (40, 47), (99, 100), (50, 0)])
def test_kelly_contracts_no_edge_or_bad_cost_gives_zero(fair, cost):
    assert kelly_contracts(fair, cost, 100_000, Decimal("0.25")) == 0


def test_plan_market_taker_edge_clears_minimum_takes_yes_at_ask():
    result = plan(0.55)
    assert result.action == "take"
    (order,) = result.orders
    assert (order.side, order.price_cents, order.count, order.edge_cents) == ("yes", 45, 80, 8)
    assert order.time_in_force == "immediate_or_cancel"
    assert order.expiration_ts_ms is None
    assert (order.book_side, order.yes_price_cents) == ("bid", 45)


def test_plan_market_low_prob_takes_no_at_hundred_minus_bid():
    (order,) = plan(0.30).orders
    assert (order.side, order.price_cents, order.book_side, order.yes_price_cents) == (
        "no", 60, "ask", 40)


def test_plan_market_only_spread_edge_rests_inside_spread_with_expiry():
    # taker edges: YES 48-45-2 = 1c, NO 52-60-2 < 0; resting YES at 41c: 48-41 = 7c
    result = plan(0.48)
    assert result.action == "rest"
    (order,) = result.orders
    assert (order.side, order.price_cents, order.count) == ("yes", 41, 72)
    assert order.time_in_force == "good_till_canceled"
    assert order.expiration_ts_ms == ms_from_datetime(AS_OF + timedelta(seconds=900))


def test_plan_market_no_edge_wants_no_order_with_reason():
    result = plan(0.43)
    assert result.orders == ()
    assert result.action == "none"
    assert result.reason == "best edge 2c below minimum 5c"
    assert result.edge_cents == 2


def test_plan_market_min_edge_from_settings_is_applied():
    params = EdgeParams.from_settings(SimpleNamespace(min_edge_cents=10,
                                                      kelly_fraction=Decimal("0.25"),
                                                      order_ttl_s=600))
    result = plan(0.55, params=params)  # take edge 8c < 10c; rest YES at 41c: 14c
    assert result.action == "rest"
    assert result.orders[0].price_cents == 41


def test_plan_market_cap_zero_wants_no_order_and_says_why():
    result = plan(0.55, cap=0)
    assert result.orders == ()
    assert "size is 0" in result.reason


def test_plan_market_cap_limits_count():
    assert plan(0.55, cap=7).orders[0].count == 7


def test_plan_market_held_position_tops_up_to_kelly_target():
    assert plan(0.55, held=50).orders[0].count == 30
    # at the taker target (80) a cheaper resting bid still has room: Kelly at 41c is 144
    (rest,) = plan(0.55, held=80).orders
    assert (rest.price_cents, rest.count, rest.is_taker) == (41, 64, False)
    assert plan(0.55, held=144).orders == ()
    assert plan(0.55, held=-80).orders[0].count == 80  # NO held: buying YES nets it down


@pytest.mark.parametrize(
    ("quote", "reason"),
    [
        (Quote("T", None, None), "empty book"),
        (Quote("T", 50, 50), "crossed book"),
        (Quote("T", 55, 50), "crossed book"),
        (Quote("T", 40, 101), "yes_ask_cents"),
    ],
)
def test_plan_market_bad_book_skips_with_reason(quote, reason):
    result = plan(0.9, quote)
    assert result.orders == ()
    assert reason in result.reason


@pytest.mark.parametrize("prob", [None, float("nan"), -0.1, 1.5])
def test_plan_market_missing_or_invalid_probability_skips_with_reason(prob):
    result = plan(prob)
    assert result.orders == ()
    assert "probab" in result.reason


def test_plan_market_one_sided_book_can_still_take():
    (order,) = plan(0.9, Quote("T", None, 70)).orders
    assert (order.side, order.price_cents) == ("yes", 70)


def test_plan_market_naive_time_raises():
    with pytest.raises(ValueError, match="as_of"):
        plan_market(0.5, BOOK, PARAMS, as_of=datetime(2026, 11, 22), bankroll_cents=1,
                    max_contracts=1)


def test_edge_params_zero_min_edge_raises_naming_field():
    with pytest.raises(ValueError, match="min_edge_cents"):
        EdgeParams(min_edge_cents=0)


# --- properties ---------------------------------------------------------------------------------

probs = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(probs, probs, st.integers(1, 99), st.integers(1, 500), st.booleans())
def test_edge_cents_monotone_in_probability(p1, p2, price, count, is_taker):
    lo, hi = sorted((p1, p2))
    schedule = FeeSchedule()
    assert edge_cents(lo, "yes", price, count, schedule, is_taker=is_taker) <= edge_cents(
        hi, "yes", price, count, schedule, is_taker=is_taker)
    assert edge_cents(lo, "no", price, count, schedule, is_taker=is_taker) >= edge_cents(
        hi, "no", price, count, schedule, is_taker=is_taker)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 100), st.integers(0, 100), st.integers(1, 99),
       st.integers(0, 10_000_000), st.decimals("0.01", "1", places=2))
def test_kelly_contracts_monotone_in_edge(f1, f2, cost, bankroll, fraction):
    lo, hi = sorted((f1, f2))
    assert 0 <= kelly_contracts(lo, cost, bankroll, fraction) <= kelly_contracts(
        hi, cost, bankroll, fraction)


@settings(max_examples=300, deadline=None)
@given(probs, probs, st.integers(1, 98), st.integers(1, 10), st.integers(0, 5_000),
       st.integers(0, 1_000_000))
def test_plan_market_size_monotone_in_edge_and_within_cap(p1, p2, bid, spread, cap, bankroll):
    ask = min(bid + spread, 99)
    assume(ask > bid)
    quote = Quote("T", bid, ask)
    lo, hi = sorted((p1, p2))
    low, high = plan(lo, quote, bankroll=bankroll, cap=cap), plan(hi, quote, bankroll=bankroll,
                                                                  cap=cap)
    for result, p in ((low, lo), (high, hi)):
        for order in result.orders:
            assert 1 <= order.count <= cap
            assert order.edge_cents >= PARAMS.min_edge_cents
            assert order.edge_cents == edge_cents(p, order.side, order.price_cents, order.count,
                                                  FeeSchedule(), is_taker=order.is_taker)
            assert (order.expiration_ts_ms is None) == order.is_taker

    def yes_take(result: MarketPlan) -> int:
        return sum(o.count for o in result.orders if o.side == "yes" and o.is_taker)

    # buying YES at the ask: a higher probability never buys fewer contracts
    if yes_take(low):
        assert yes_take(high) >= yes_take(low)


def test_edge_params_from_default_settings_use_five_cent_minimum():
    from tasks.settings import Settings

    params = EdgeParams.from_settings(Settings(_env_file=None))
    assert (params.min_edge_cents, params.kelly_fraction) == (5, Decimal("0.25"))
