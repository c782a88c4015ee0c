"""Client order ids: deterministic, distinct, Kalshi-safe."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.orderkey import (
    CLIENT_ORDER_ID_PATTERN,
    MAX_CLIENT_ORDER_ID_LENGTH,
    OrderKeyError,
    client_order_id,
    decision_slot,
    trading_day_slot,
)

KEY = ("weather-v1", "KXHIGHNY-26NOV22-B50", "yes", "day:2026-11-22")


def test_client_order_id_known_inputs_gives_pinned_value():
    # pinned: a change of the hash input would orphan every open order's key after a deploy
    assert client_order_id(*KEY) == "ed-8022c7e690074cbd94076b530baf467f"


def test_client_order_id_each_field_changes_the_id():
    base = client_order_id(*KEY)
    variants = [
        client_order_id("weather-v2", *KEY[1:]),
        client_order_id(KEY[0], "KXHIGHNY-26NOV22-B52", *KEY[2:]),
        client_order_id(KEY[0], KEY[1], "no", KEY[3]),
        client_order_id(*KEY[:3], "day:2026-11-23"),
        client_order_id(*KEY, revision=1),
    ]
    assert len({base, *variants}) == 6


def test_client_order_id_field_boundary_shift_gives_distinct_ids():
    # "a|b" + "c" must not collide with "a" + "b|c": the encoding is unambiguous
    assert client_order_id("s", "A-B", "yes", "C") != client_order_id("s", "A", "yes", "B-C")
    assert client_order_id('s", "x', "T", "yes", "d") != client_order_id("s", 'x", "T', "yes", "d")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "T", "yes", "d"), "strategy"),
        (("s", " T", "yes", "d"), "ticker"),
        (("s", "T", "buy", "d"), "side"),
        (("s", "T", "yes", ""), "slot"),
    ],
)
def test_client_order_id_bad_field_raises_naming_it(args, field):
    with pytest.raises(OrderKeyError, match=field):
        client_order_id(*args)


def test_client_order_id_negative_revision_raises():
    with pytest.raises(OrderKeyError, match="revision"):
        client_order_id(*KEY, revision=-1)


def test_decision_slot_same_interval_same_slot_next_interval_differs():
    t0 = datetime(2026, 11, 22, 14, 0, 0, tzinfo=UTC)
    assert decision_slot(t0, 900) == "2026-11-22T14:00:00Z/900s"
    assert decision_slot(t0 + timedelta(seconds=899), 900) == decision_slot(t0, 900)
    assert decision_slot(t0 + timedelta(seconds=900), 900) == "2026-11-22T14:15:00Z/900s"


def test_decision_slot_other_timezone_same_instant_same_slot():
    local = datetime(2026, 11, 22, 9, 7, tzinfo=timezone(timedelta(hours=-5)))
    assert decision_slot(local, 900) == "2026-11-22T14:00:00Z/900s"


def test_decision_slot_naive_datetime_raises():
    with pytest.raises(OrderKeyError, match="as_of"):
        decision_slot(datetime(2026, 11, 22, 14, 0), 900)


def test_trading_day_slot_date_gives_day_name():
    assert trading_day_slot(date(2026, 11, 22)) == "day:2026-11-22"


text = st.text(min_size=1, max_size=40).filter(lambda s: s == s.strip())
fields = st.tuples(text, text, st.sampled_from(("yes", "no")), text, st.integers(0, 50))


@settings(max_examples=300, deadline=None)
@given(fields, fields)
def test_client_order_id_stable_safe_and_distinct(a, b):
    id_a = client_order_id(*a[:4], revision=a[4])
    assert id_a == client_order_id(*a[:4], revision=a[4])
    assert len(id_a) <= MAX_CLIENT_ORDER_ID_LENGTH
    assert CLIENT_ORDER_ID_PATTERN.fullmatch(id_a)
    if a != b:
        assert id_a != client_order_id(*b[:4], revision=b[4])
