"""Reconciliation, pure: every difference classified; partial views never produce actions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.reconcile import (
    ExchangeFill,
    ExchangeOrder,
    ExchangeSettlement,
    ExchangeView,
    FillFlow,
    LedgerOrder,
    LedgerView,
    SettlementFlow,
    check_balance,
    compare,
    explained_cash_cents,
    unexplained,
)

NOW_MS = 1_795_000_000_000


def _xorder(status: str = "resting", filled: int = 0, remaining: int = 10, oid: str = "o1",
            cid: str = "ed-1") -> ExchangeOrder:
    return ExchangeOrder(oid, cid, "M", "yes", 40, status, filled, remaining)


def _lorder(status: str = "resting", cid: str = "ed-1", oid: str | None = "o1",
            expiration_ts_ms: int | None = None) -> LedgerOrder:
    return LedgerOrder(cid, oid, "M", "yes", 10, 0, status, expiration_ts_ms)


def _view(orders=(), fills=(), positions=None, settlements=(), problems=()) -> ExchangeView:
    return ExchangeView(tuple(orders), tuple(fills), positions or {}, tuple(settlements), 0,
                        tuple(problems))


def _ledger(orders=(), fill_ids=(), positions=None, settled=()) -> LedgerView:
    return LedgerView(tuple(orders), frozenset(fill_ids), positions or {}, frozenset(settled))


def _fill(fid: str = "f1", count: int = 10, oid: str = "o1") -> ExchangeFill:
    return ExchangeFill(fid, oid, "M", "yes", 40, count, 0, NOW_MS)


def test_compare_incomplete_view_returns_only_unverified_without_actions() -> None:
    view = _view(fills=[_fill()], problems=["fills: ServerError: 503"])
    diffs = compare(view, _ledger(), now_ms=NOW_MS)
    assert [(d.kind, d.action, d.explained) for d in diffs] == [("unverified", "none", False)]
    assert "503" in diffs[0].detail


def test_compare_identical_views_has_no_differences() -> None:
    view = _view([_xorder("executed", 10, 0)], [_fill()], {"M": 10})
    ledger = _ledger([_lorder("executed")], ["f1"], {"M": 10})
    assert compare(view, ledger, now_ms=NOW_MS) == ()


def test_compare_missed_fill_is_importable_and_explains_the_position() -> None:
    view = _view([_xorder("executed", 10, 0)], [_fill()], {"M": 10})
    diffs = compare(view, _ledger([_lorder("resting")]), now_ms=NOW_MS)
    assert sorted((d.kind, d.action) for d in diffs) == [
        ("missing_fill", "import_fill"), ("status_mismatch", "mark_executed")]
    assert unexplained(diffs) == ()


def test_compare_unknown_order_is_unexplained() -> None:
    diffs = compare(_view([_xorder(cid="manual")]), _ledger(), now_ms=NOW_MS)
    assert [(d.kind, d.explained) for d in diffs] == [("unknown_order", False)]
    assert "manual" in diffs[0].detail


@pytest.mark.parametrize(("expiration_ts_ms", "kind"), [
    (None, "cancelled_outside"),
    (NOW_MS + 1, "cancelled_outside"),
    (NOW_MS, "status_mismatch"),  # expired at its TTL
])
def test_compare_cancel_at_exchange_outside_bot_or_by_expiry(expiration_ts_ms: int | None,
                                                             kind: str) -> None:
    view = _view([_xorder("canceled", 0, 0)])
    diffs = compare(view, _ledger([_lorder(expiration_ts_ms=expiration_ts_ms)]), now_ms=NOW_MS)
    assert [(d.kind, d.action, d.explained) for d in diffs] == [(kind, "mark_canceled", True)]


def test_compare_live_order_the_ledger_closed_is_unexplained() -> None:
    diffs = compare(_view([_xorder("resting")]), _ledger([_lorder("canceled")]), now_ms=NOW_MS)
    assert [(d.kind, d.explained) for d in diffs] == [("status_mismatch", False)]


@pytest.mark.parametrize(("status", "explained"), [("resting", False), ("intent", True),
                                                   ("unknown", True)])
def test_compare_ledger_order_absent_at_exchange(status: str, explained: bool) -> None:
    diffs = compare(_view(), _ledger([_lorder(status)]), now_ms=NOW_MS)
    assert [(d.kind, d.explained) for d in diffs] == [("status_mismatch", explained)]


def test_compare_order_fill_count_disagreeing_with_fills_is_unverified() -> None:
    view = _view([_xorder("executed", 10, 0)], [_fill(count=6)], {"M": 6})
    diffs = compare(view, _ledger([_lorder("executed")], ["f1"], {"M": 6}), now_ms=NOW_MS)
    assert [(d.kind, d.explained) for d in diffs] == [("unverified", False)]


def test_compare_position_mismatch_is_unexplained() -> None:
    diffs = compare(_view(positions={"M": 7}), _ledger(positions={"M": 5}), now_ms=NOW_MS)
    assert [(d.kind, d.subject, d.explained) for d in diffs] == [("position_mismatch", "M",
                                                                  False)]


@pytest.mark.parametrize(("result", "explained", "action"), [
    ("yes", True, "import_settlement"), ("void", False, "none")])
def test_compare_missing_settlement(result: str, explained: bool, action: str) -> None:
    view = _view(settlements=[ExchangeSettlement("M", result, 10, 1000, NOW_MS)])
    diffs = compare(view, _ledger(positions={"M": 10}), now_ms=NOW_MS)
    assert [(d.kind, d.explained, d.action) for d in diffs] == [("missing_settlement",
                                                                 explained, action)]


def test_explained_cash_buy_then_settle() -> None:
    fills = [FillFlow("M", "yes", 40, 10, 2, 1)]
    settlements = [SettlementFlow("M", 10, 1000, 2)]
    assert explained_cash_cents(fills, settlements, {"M": 0}) == -402 + 1000


def test_explained_cash_buying_the_other_side_closes_pairs_for_100c_each() -> None:
    # held 10 YES before the window; buying 4 NO at 70c closes 4 pairs (+400)
    fills = [FillFlow("M", "no", 70, 4, 1, 1)]
    assert explained_cash_cents(fills, [], {"M": 6}) == 400 - 280 - 1


@given(start=st.integers(-50, 50),
       trades=st.lists(st.tuples(st.sampled_from(["yes", "no"]), st.integers(1, 99),
                                 st.integers(1, 30), st.integers(0, 5)), max_size=12))
def test_explained_cash_equals_forward_simulation(start: int,
                                                  trades: list[tuple[str, int, int, int]]) -> None:
    position, cash = start, 0
    fills = []
    for i, (side, price, count, fee) in enumerate(trades):
        delta = count if side == "yes" else -count
        if position * delta < 0:
            cash += 100 * min(abs(delta), abs(position))
        cash -= price * count + fee
        position += delta
        fills.append(FillFlow("M", side, price, count, fee, i))
    assert explained_cash_cents(fills, [], {"M": position}) == cash


def test_check_balance_drift_beyond_tolerance_is_unexplained() -> None:
    assert check_balance(None, 1000, 0) is None  # first run: baseline only
    assert check_balance(1000, 598, -402) is None
    assert check_balance(1000, 597, -402, tolerance_cents=1) is None
    drift = check_balance(1000, 5598, -402)
    assert drift is not None
    assert drift.kind == "balance_drift"
    assert not drift.explained
    assert "+5000c unexplained" in drift.detail
    unread = check_balance(1000, None, 0)
    assert unread is not None
    assert unread.kind == "unverified"
