"""Ledger declarations: time round-trips, status transitions, money column types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger

from models.ledger import (
    LEDGER_METADATA,
    ORDER_TRANSITIONS,
    LedgerError,
    NetPosition,
    check_transition,
    datetime_from_ms,
    ms_from_datetime,
    net_fill,
    settle_position,
)


def test_ms_from_datetime_known_instant():
    assert ms_from_datetime(datetime(2026, 11, 22, 0, 0, 0, 1_000, tzinfo=UTC)) == 1795305600001


def test_ms_from_datetime_offset_zone_converts_to_utc():
    est = datetime(2026, 11, 21, 19, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert ms_from_datetime(est) == 1795305600000


def test_ms_from_datetime_naive_raises_naming_ts():
    with pytest.raises(LedgerError, match="naive"):
        ms_from_datetime(datetime(2026, 11, 22))


def test_datetime_from_ms_returns_aware_utc():
    value = datetime_from_ms(1795305600001)
    assert value.tzinfo is UTC
    assert value == datetime(2026, 11, 22, 0, 0, 0, 1_000, tzinfo=UTC)


def test_datetime_from_ms_before_epoch_round_trips():
    assert ms_from_datetime(datetime_from_ms(-1)) == -1


@settings(deadline=None)  # wall-clock deadlines flake on a loaded CI box
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)))
def test_ms_round_trip_keeps_millisecond_instant(value):
    truncated = value.replace(microsecond=value.microsecond // 1000 * 1000)
    assert datetime_from_ms(ms_from_datetime(value)) == truncated


@pytest.mark.parametrize("terminal", ["canceled", "executed", "rejected"])
def test_check_transition_from_terminal_status_raises(terminal):
    with pytest.raises(LedgerError, match=terminal):
        check_transition(terminal, "resting")


def test_check_transition_life_cycle_path_is_allowed():
    path = ["intent", "sent", "unknown", "acknowledged", "resting", "resting", "executed"]
    for current, new in zip(path, path[1:], strict=False):
        check_transition(current, new)


def test_check_transition_unknown_status_raises_naming_it():
    with pytest.raises(LedgerError, match="'pending'"):
        check_transition("intent", "pending")


def test_order_transitions_cover_every_status():
    assert set(ORDER_TRANSITIONS) >= {s for targets in ORDER_TRANSITIONS.values() for s in targets}


def test_ledger_money_columns_are_big_integers():
    money = [c for t in LEDGER_METADATA.tables.values() for c in t.columns
             if c.name.endswith("_cents") or c.name.endswith("_ts_ms")]
    assert len(money) > 20
    assert all(isinstance(c.type, BigInteger) for c in money), [
        f"{c.table.name}.{c.name}" for c in money if not isinstance(c.type, BigInteger)]


def test_net_fill_opposite_side_closes_pairs_at_hundred():
    # 10 YES at 40c, then 4 NO at 55c: 4 pairs worth 100c cost 4 x (40 + 55)
    position = net_fill(net_fill(NetPosition(), "yes", 40, 10), "no", 55, 4)
    assert position == NetPosition(contracts=6, cost_cents=240, realized_pnl_cents=20)


def test_net_fill_crossing_through_zero_opens_the_other_side():
    position = net_fill(net_fill(NetPosition(), "yes", 40, 3), "no", 50, 5)
    # 3 pairs close (3 x (100 - 50) - 120 = 30c), 2 NO open at 50c
    assert position == NetPosition(contracts=-2, cost_cents=100, realized_pnl_cents=30)


def test_settle_position_winning_no_pays_hundred_each():
    flat, payout = settle_position(NetPosition(-5, 150, 0), "no")
    assert (flat, payout) == (NetPosition(0, 0, 350), 500)


def test_net_fill_bad_side_raises_naming_field():
    with pytest.raises(LedgerError, match="side"):
        net_fill(NetPosition(), "buy", 40, 1)


fills = st.lists(st.tuples(st.sampled_from(("yes", "no")), st.integers(1, 99),
                           st.integers(1, 50)), max_size=30)


@settings(deadline=None)
@given(fills, st.sampled_from(("yes", "no")))
def test_net_fill_and_settle_realized_equals_cash_flows(trades, result):
    # the ledger balance equals the sum of its entries: P&L = payouts - money paid
    position = NetPosition()
    paid = 0
    for side, price, count in trades:
        position = net_fill(position, side, price, count)
        paid += price * count
        assert position.cost_cents >= 0
    yes = sum(c for s, _, c in trades if s == "yes")
    no = sum(c for s, _, c in trades if s == "no")
    assert position.contracts == yes - no
    flat, payout = settle_position(position, result)
    pairs = min(yes, no)  # every YES+NO pair closed on the way paid 100c
    expected_payout = 100 * (yes - pairs if result == "yes" else no - pairs)
    assert payout == expected_payout
    assert flat.realized_pnl_cents == 100 * pairs + payout - paid
