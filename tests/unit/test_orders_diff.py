from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.orders import (
    Amend,
    BookOrder,
    Cancel,
    Decrease,
    Keep,
    Place,
    RestingOrder,
    diff_orders,
)


def _resting(order_id, ticker="T", side="bid", price=40, remaining=10, filled=0):
    return RestingOrder(order_id, f"c-{order_id}", ticker, side, price, remaining, filled)


def test_diff_nothing_resting_places_desired():
    want = BookOrder("T", "bid", 40, 10)
    assert diff_orders([want], []) == [Place(want)]


def test_diff_same_order_resting_keeps_it():
    rest = _resting("o1")
    assert diff_orders([BookOrder("T", "bid", 40, 10)], [rest]) == [Keep(rest)]


def test_diff_smaller_size_same_price_decreases_keeping_priority():
    rest = _resting("o1", remaining=10)
    assert diff_orders([BookOrder("T", "bid", 40, 4)], [rest]) == [Decrease(rest, 4)]


def test_diff_new_price_amends_with_total_count_including_fills():
    rest = _resting("o1", remaining=6, filled=4)
    want = BookOrder("T", "bid", 42, 10)
    [action] = diff_orders([want], [rest])
    assert action == Amend(rest, want)
    assert action.new_total_count == 14


def test_diff_no_desired_order_cancels_what_rests():
    rests = [_resting("o1"), _resting("o2", ticker="U", side="ask", price=70)]
    assert diff_orders([], rests) == [
        Cancel(rests[0], "no longer desired"),
        Cancel(rests[1], "no longer desired"),
    ]


def test_diff_duplicates_keep_the_one_at_the_desired_price():
    a, b = _resting("o1", price=41), _resting("o2", price=40)
    actions = diff_orders([BookOrder("T", "bid", 40, 10)], [a, b])
    assert actions == [Cancel(a, "duplicate resting order"), Keep(b)]


def test_diff_two_desired_for_one_key_is_refused():
    with pytest.raises(ValueError, match="two desired orders"):
        diff_orders([BookOrder("T", "bid", 40, 1), BookOrder("T", "bid", 41, 1)], [])


def test_desired_order_refuses_bad_values():
    with pytest.raises(ValueError, match="price_cents"):
        BookOrder("T", "bid", 100, 1)
    with pytest.raises(ValueError, match="count"):
        BookOrder("T", "bid", 50, 0)


_keys = st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(["bid", "ask"]))


@given(
    st.dictionaries(_keys, st.tuples(st.integers(1, 99), st.integers(1, 20)), max_size=6),
    st.lists(
        st.tuples(_keys, st.integers(1, 99), st.integers(0, 20), st.integers(0, 5)), max_size=8
    ),
)
def test_diff_applied_leaves_exactly_the_desired_book(desired_map, resting_specs):
    desired = [BookOrder(t, s, p, c) for (t, s), (p, c) in desired_map.items()]
    resting = [
        RestingOrder(f"o{i}", f"c{i}", t, s, p, r, f)
        for i, ((t, s), p, r, f) in enumerate(resting_specs)
    ]
    book = {o.order_id: o for o in resting if o.remaining_count > 0}
    for action in diff_orders(desired, resting):
        if isinstance(action, Cancel):
            del book[action.resting.order_id]
        elif isinstance(action, Decrease):
            r = action.resting
            book[r.order_id] = RestingOrder(
                r.order_id,
                r.client_order_id,
                r.ticker,
                r.side,
                r.price_cents,
                action.reduce_to,
                r.fill_count,
            )
        elif isinstance(action, Amend):
            r, d = action.resting, action.desired
            book[r.order_id] = RestingOrder(
                r.order_id,
                r.client_order_id,
                r.ticker,
                r.side,
                d.price_cents,
                d.count,
                r.fill_count,
            )
        elif isinstance(action, Place):
            d = action.desired
            book[f"new-{d.ticker}-{d.side}"] = RestingOrder(
                "n", "n", d.ticker, d.side, d.price_cents, d.count
            )
    result = sorted((o.ticker, o.side, o.price_cents, o.remaining_count) for o in book.values())
    assert result == sorted((d.ticker, d.side, d.price_cents, d.count) for d in desired)
