"""Hand-worked tax lots: every expected number below was computed by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from models.tax import (
    Disposal,
    NoActivityError,
    OpenLot,
    TaxFill,
    TaxInputError,
    TaxSettlement,
    build_lots,
    cash_flow_cents,
    check_references,
    fill_from_book_side,
    report_for_year,
    series_from_ticker,
    split_by_contracts,
    summarize,
)
from models.tax_reconcile import (
    LedgerMarket,
    market_cash_flows,
    reconcile,
    settlement_positions,
)

T1 = "KXHIGHNY-26JAN05-B40"
T2 = "KXHIGHCHI-26JAN05-T30"


def at(day: int, hour: int, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def fill(fill_id, side, count, price, fee, ts, *, ticker=T1, action="buy", series=None):
    series = series or ticker.split("-")[0]
    return TaxFill(fill_id, ticker, series, side, action, count, price, fee, ts)


# Example 1: buy 10 YES @40 (fee 17); buy 4 NO @45 = sell 4 YES @55 (fee 7); buy 5 YES @50
# (fee 9); settles YES.
#  F2 closes 4 of lot F1: cost 4*40=160, opening fee share round(17*4/10=6.8)=7, proceeds 4*55=220,
#     closing fee 7 -> gain 220-160-7-7 = 46. Lot F1 keeps 6 contracts and 10c of fee.
#  settlement: F1 6 YES: cost 240, fee 10, proceeds 600 -> 350; F3 5 YES: cost 250, fee 9,
#     proceeds 500 -> 241. Total 637.
#  cash: -400-17 | +4*55-7 | -250-9 | +11*100 = -417+213-259+1100 = 637.
EXAMPLE1_FILLS = [
    fill("F1", "yes", 10, 40, 17, at(5, 10)),
    fill("F2", "no", 4, 45, 7, at(5, 11)),
    fill("F3", "yes", 5, 50, 9, at(5, 12)),
]
EXAMPLE1_SETTLE = [TaxSettlement(T1, "yes", at(6, 15))]


def test_build_lots_buy_partial_sell_buy_more_settle_yes_matches_hand_worked_lots():
    book = build_lots(EXAMPLE1_FILLS, EXAMPLE1_SETTLE)

    assert book.disposals == (
        Disposal("F1", T1, "KXHIGHNY", "yes", 4, at(5, 10), at(5, 11), 160, 7, 220, 7, "close",
                 "F2"),
        Disposal("F1", T1, "KXHIGHNY", "yes", 6, at(5, 10), at(6, 15), 240, 10, 600, 0,
                 "settlement", f"settlement:{T1}"),
        Disposal("F3", T1, "KXHIGHNY", "yes", 5, at(5, 12), at(6, 15), 250, 9, 500, 0,
                 "settlement", f"settlement:{T1}"),
    )
    assert [d.gain_cents for d in book.disposals] == [46, 350, 241]
    assert book.realized_cents == 637
    assert book.open_lots == ()
    assert cash_flow_cents(EXAMPLE1_FILLS, EXAMPLE1_SETTLE) == 637


def test_build_lots_before_settlement_lists_open_lots_not_disposed():
    book = build_lots(EXAMPLE1_FILLS, EXAMPLE1_SETTLE, end=at(6, 0))

    assert [d.gain_cents for d in book.disposals] == [46]
    assert book.open_lots == (
        OpenLot("F1", T1, "KXHIGHNY", "yes", 6, at(5, 10), 240, 10),
        OpenLot("F3", T1, "KXHIGHNY", "yes", 5, at(5, 12), 250, 9),
    )
    # realized = cash + basis still open: (-417+213-259) + (250+259) = 46
    assert book.realized_cents == cash_flow_cents(EXAMPLE1_FILLS, [], end=at(6, 0)) + 509


# Example 2 (NO side, a fill that crosses zero, settles NO):
#  G1 buy 3 NO @30, fee 5 -> lot G1 (NO) cost 90 fee 5.
#  G2 buy 5 YES @72, fee 6: closes the 3 NO at 100-72=28 each (proceeds 84) and opens 2 YES @72.
#     fee 6 split 3:2 -> exact 3.6 / 2.4 -> floors 3 / 2, leftover 1 to the larger remainder:
#     4 / 2.
#     G1 disposal: 84 - 90 - 5 - 4 = -15.  New lot G2: 2 YES, cost 144, fee 2.
#  settlement NO: G2 YES pays 0 -> 0 - 144 - 2 = -146.  Total -161.
#  cash: G1 buying NO at 30 = -90-5; G2: pays 5*72=360, the 3 netted pairs return 300, fee 6 -> -66;
#  settlement pays the 2 YES nothing: -95-66+0 = -161.
EXAMPLE2_FILLS = [
    fill("G1", "no", 3, 30, 5, at(5, 9), ticker=T2),
    fill("G2", "yes", 5, 72, 6, at(5, 10), ticker=T2),
]
EXAMPLE2_SETTLE = [TaxSettlement(T2, "no", at(6, 14))]


def test_build_lots_no_side_crossing_zero_settles_no_matches_hand_worked_lots():
    book = build_lots(EXAMPLE2_FILLS, EXAMPLE2_SETTLE)

    assert book.disposals == (
        Disposal("G1", T2, "KXHIGHCHI", "no", 3, at(5, 9), at(5, 10), 90, 5, 84, 4, "close", "G2"),
        Disposal("G2", T2, "KXHIGHCHI", "yes", 2, at(5, 10), at(6, 14), 144, 2, 0, 0,
                 "settlement", f"settlement:{T2}"),
    )
    assert [d.gain_cents for d in book.disposals] == [-15, -146]
    assert cash_flow_cents(EXAMPLE2_FILLS, EXAMPLE2_SETTLE) == -161 == book.realized_cents


def test_build_lots_sell_yes_from_flat_opens_a_no_lot_at_the_no_price():
    # selling 2 YES at 35 with nothing held is buying 2 NO at 65; settling NO pays 100 each.
    fills = [fill("S1", "yes", 2, 35, 1, at(5, 9), action="sell")]
    book = build_lots(fills, [TaxSettlement(T1, "no", at(6, 9))])

    assert book.disposals == (
        Disposal("S1", T1, "KXHIGHNY", "no", 2, at(5, 9), at(6, 9), 130, 1, 200, 0, "settlement",
                 f"settlement:{T1}"),
    )
    assert book.realized_cents == 69 == cash_flow_cents(fills, [TaxSettlement(T1, "no", at(6, 9))])


def test_build_lots_specific_selection_disposes_the_chosen_lot_not_the_first():
    # L1 5 YES @30, L2 5 YES @60, then sell 4 YES at 50 (buy 4 NO @50).
    fills = [
        fill("L1", "yes", 5, 30, 0, at(5, 9)),
        fill("L2", "yes", 5, 60, 0, at(5, 10)),
        fill("C1", "no", 4, 50, 0, at(5, 11)),
    ]
    fifo = build_lots(fills, [])
    specific = build_lots(fills, [], method="specific", selection={"C1": [("L2", 4)]})

    # FIFO: 4 of L1: 200 - 120 = 80.  Specific: 4 of L2: 200 - 240 = -40.
    assert [(d.lot_id, d.contracts, d.gain_cents) for d in fifo.disposals] == [("L1", 4, 80)]
    assert [(d.lot_id, d.contracts, d.gain_cents) for d in specific.disposals] == [("L2", 4, -40)]
    assert [(o.lot_id, o.contracts) for o in specific.open_lots] == [("L1", 5), ("L2", 1)]


def test_build_lots_specific_split_selection_keeps_its_order_and_fee_split():
    fills = [
        fill("L1", "yes", 5, 30, 0, at(5, 9)),
        fill("L2", "yes", 5, 60, 0, at(5, 10)),
        fill("C1", "no", 6, 50, 5, at(5, 11)),
    ]
    book = build_lots(fills, [], method="specific", selection={"C1": [("L2", 5), ("L1", 1)]})

    # fee 5 split 5:1 -> 4.1666 / 0.8333 -> floors 4 / 0, leftover 1 to the larger remainder (L1)
    assert [(d.lot_id, d.contracts, d.close_fee_cents) for d in book.disposals] == [
        ("L2", 5, 4), ("L1", 1, 1)]


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (None, "needs a lot selection"),
        ({"C1": [("L9", 4)]}, "not open"),
        ({"C1": [("L1", 6)]}, "holds 5 contracts"),
        ({"C1": [("L1", 3)]}, "cover exactly the 4"),
        ({"C1": [("L1", 2), ("L1", 2)]}, "selected twice"),
        ({"C1": [("L1", 4)], "L2": [("L1", 1)]}, "close nothing"),
        ({"C1": [("L1", 4)], "NOPE": [("L1", 1)]}, "close nothing"),
    ],
)
def test_build_lots_bad_specific_selection_raises_naming_it(selection, message):
    fills = [
        fill("L1", "yes", 5, 30, 0, at(5, 9)),
        fill("L2", "yes", 5, 60, 0, at(5, 10)),
        fill("C1", "no", 4, 50, 0, at(5, 11)),
    ]
    with pytest.raises(TaxInputError, match=message) as info:
        build_lots(fills, [], method="specific", selection=selection)
    assert "selection" in info.value.field


def test_build_lots_fifo_with_selection_is_refused():
    with pytest.raises(TaxInputError, match="needs method 'specific'"):
        build_lots(EXAMPLE1_FILLS, [], selection={"F2": [("F1", 4)]})


def test_build_lots_partial_disposals_share_the_opening_fee_exactly():
    # 3 YES @50 with fee 2, sold one at a time: fee shares round(2*1/3)=1, round(1*1/2)=1 (half up),
    # then the remaining 0 -> 1 + 1 + 0 = 2.
    fills = [fill("B", "yes", 3, 50, 2, at(5, 9))] + [
        fill(f"S{i}", "no", 1, 50, 0, at(5, 10 + i)) for i in range(3)]
    book = build_lots(fills, [])
    assert [d.open_fee_cents for d in book.disposals] == [1, 1, 0]


def test_build_lots_settlement_fee_is_split_across_lots():
    fills = [fill("A", "yes", 1, 50, 0, at(5, 9)), fill("B", "yes", 2, 50, 0, at(5, 10))]
    book = build_lots(fills, [TaxSettlement(T1, "yes", at(6, 9), fee_cents=2)])
    # 2 split 1:2 -> 0.667 / 1.333 -> floors 0 / 1, leftover to the larger remainder (A)
    assert [d.close_fee_cents for d in book.disposals] == [1, 1]


def test_build_lots_scalar_settlement_pays_value_and_complement():
    fills = [fill("Y", "yes", 2, 50, 0, at(5, 9), ticker=T1),
             fill("N", "no", 3, 50, 0, at(5, 9), ticker=T2)]
    settles = [TaxSettlement(T1, "scalar", at(6, 9), value_cents=30),
               TaxSettlement(T2, "scalar", at(6, 9), value_cents=30)]
    book = build_lots(fills, settles)
    assert [d.proceeds_cents for d in book.disposals] == [60, 210]
    assert book.realized_cents == cash_flow_cents(fills, settles) == (60 - 100) + (210 - 150)


def test_fill_from_book_side_bid_buys_yes_and_ask_buys_no():
    bid = fill_from_book_side("x", T1, "KXHIGHNY", "bid", 56, 3, 1, at(5, 9))
    ask = fill_from_book_side("y", T1, "KXHIGHNY", "ask", 56, 3, 1, at(5, 9))
    assert (bid.side, bid.action, bid.price_cents, bid.yes_delta) == ("yes", "buy", 56, 3)
    assert (ask.side, ask.action, ask.price_cents, ask.yes_delta) == ("no", "buy", 44, -3)
    with pytest.raises(TaxInputError, match="book_side"):
        fill_from_book_side("z", T1, "KXHIGHNY", "sell", 56, 3, 1, at(5, 9))


@pytest.mark.parametrize(
    ("amount", "weights", "expected"),
    [(7, [1, 1, 1], [3, 2, 2]), (6, [3, 2], [4, 2]), (0, [2, 5], [0, 0]),
     (10, [1, 0, 1], [5, 0, 5]), (1, [1, 1], [1, 0])],
)
def test_split_by_contracts_examples_sum_to_the_amount(amount, weights, expected):
    assert split_by_contracts(amount, weights) == expected


def test_split_by_contracts_zero_weights_raises():
    with pytest.raises(TaxInputError, match="cannot split"):
        split_by_contracts(3, [0, 0])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"side": "maybe"}, "side"),
        ({"action": "hold"}, "action"),
        ({"count": 0}, "count"),
        ({"count": 2.0}, "count"),
        ({"price_cents": 0}, "price_cents"),
        ({"price_cents": 100}, "price_cents"),
        ({"fee_cents": -1}, "fee_cents"),
        ({"ts": datetime(2026, 1, 5, 9)}, "ts"),  # naive
        ({"ticker": ""}, "ticker"),
    ],
)
def test_tax_fill_bad_field_raises_naming_it(kwargs, field):
    base = {"fill_id": "f", "ticker": T1, "series": "KXHIGHNY", "side": "yes", "action": "buy",
            "count": 1, "price_cents": 50, "fee_cents": 0, "ts": at(5, 9)}
    with pytest.raises(TaxInputError) as info:
        TaxFill(**{**base, **kwargs})
    assert info.value.field == field


def test_tax_fill_other_offset_is_converted_to_utc():
    f = fill("f", "yes", 1, 50, 0, datetime(2026, 1, 5, 20, tzinfo=timezone(timedelta(hours=-6))))
    assert f.ts == at(6, 2)
    assert f.ts.tzinfo is UTC


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"result": "maybe"}, "result"), ({"result": "scalar"}, "value_cents"),
     ({"result": "yes", "value_cents": 5}, "value_cents"), ({"fee_cents": -2}, "fee_cents")],
)
def test_tax_settlement_bad_field_raises_naming_it(kwargs, field):
    with pytest.raises(TaxInputError) as info:
        TaxSettlement(**{"ticker": T1, "result": "yes", "ts": at(6, 9), **kwargs})
    assert info.value.field == field


def test_build_lots_fill_after_settlement_raises():
    fills = [*EXAMPLE1_FILLS, fill("late", "yes", 1, 50, 0, at(7, 9))]
    with pytest.raises(TaxInputError, match="settled") as info:
        build_lots(fills, EXAMPLE1_SETTLE)
    assert info.value.value == "late"


def test_check_references_settlement_for_unknown_market_raises():
    with pytest.raises(TaxInputError, match="unknown market") as info:
        check_references(EXAMPLE1_FILLS, [TaxSettlement("KXHIGHAUS-26JAN05-B80", "yes", at(6, 1))])
    assert info.value.value == ["KXHIGHAUS-26JAN05-B80"]


def test_check_references_fill_without_order_raises_listing_it():
    fills = [TaxFill("F1", T1, "KXHIGHNY", "yes", "buy", 1, 50, 0, at(5, 9), order_id="o1"),
             TaxFill("F2", T1, "KXHIGHNY", "yes", "buy", 1, 50, 0, at(5, 9), order_id=None)]
    check_references(fills[:1], [], order_ids=["o1"])
    with pytest.raises(TaxInputError, match="without a matching order") as info:
        check_references(fills, [], order_ids=["o1"])
    assert info.value.value == ["F2"]


def test_check_references_duplicates_raise():
    with pytest.raises(TaxInputError, match="duplicate fill"):
        check_references([EXAMPLE1_FILLS[0], EXAMPLE1_FILLS[0]], [])
    with pytest.raises(TaxInputError, match="settled twice"):
        check_references(EXAMPLE1_FILLS, EXAMPLE1_SETTLE * 2)


def test_report_for_year_across_new_year_carries_the_lot_and_ties_out_both_years():
    # bought 2025-12-31 23:00 UTC, half sold 2026-01-01 01:00, rest settles 2026-01-02.
    fills = [fill("A", "yes", 4, 30, 2, datetime(2025, 12, 31, 23, tzinfo=UTC)),
             fill("B", "no", 2, 40, 1, datetime(2026, 1, 1, 1, tzinfo=UTC))]
    settles = [TaxSettlement(T1, "yes", datetime(2026, 1, 2, 5, tzinfo=UTC))]
    y25 = report_for_year(fills, settles, 2025)
    y26 = report_for_year(fills, settles, 2026)

    assert y25.disposals == ()
    assert y25.realized_cents == 0
    assert y25.open_lots == (OpenLot("A", T1, "KXHIGHNY", "yes", 4,
                                     datetime(2025, 12, 31, 23, tzinfo=UTC), 120, 2),)
    # 2026: 2 sold at 60: 120 - 60 - 1 - 1 = 58; 2 settle at 100: 200 - 60 - 1 = 139
    assert [d.gain_cents for d in y26.disposals] == [58, 139]
    assert [str(d.acquired_date) for d in y26.disposals] == ["2025-12-31", "2025-12-31"]
    # cash 2025: -120 - 2; 2026: sold 2 at 60 less fee 1, then 2 YES paid 100 each: 119 + 200
    assert y25.cash_change_cents == -122
    assert y26.cash_change_cents == 319
    # 197 = 319 + 0 (open at end) - 122 (open at start)
    assert y25.cash_ties_out
    assert y26.cash_ties_out
    assert y26.open_basis_start_cents == 122
    assert y26.open_basis_end_cents == 0


def test_report_for_year_without_activity_raises_no_activity():
    with pytest.raises(NoActivityError, match="no fills or settlements in 2024") as info:
        report_for_year(EXAMPLE1_FILLS, EXAMPLE1_SETTLE, 2024)
    assert info.value.field == "year"


def test_summarize_groups_by_series_with_a_total_line():
    book = build_lots([*EXAMPLE1_FILLS, *EXAMPLE2_FILLS], [*EXAMPLE1_SETTLE, *EXAMPLE2_SETTLE])
    summary = summarize(2026, book.disposals)

    assert [(s.series, s.rows, s.contracts, s.net_cents) for s in summary] == [
        ("KXHIGHCHI", 2, 5, -161), ("KXHIGHNY", 3, 15, 637), ("ALL", 5, 20, 476)]
    # KXHIGHNY: proceeds 220+600+500, cost 160+240+250, fees 7+7+10+9
    assert (summary[1].proceeds_cents, summary[1].basis_cents, summary[1].fees_cents) == (
        1320, 650, 33)


def test_disposal_long_term_after_more_than_a_year():
    d = Disposal("A", T1, "S", "yes", 1, at(5, 9), at(5, 9, year=2027), 1, 0, 1, 0, "close", "B")
    d2 = Disposal("A", T1, "S", "yes", 1, at(5, 9), at(6, 9, year=2027), 1, 0, 1, 0, "close", "B")
    assert not d.long_term
    assert d2.long_term


def test_build_lots_settlement_fee_on_flat_position_raises():
    fills = [fill("A", "yes", 1, 50, 0, at(5, 9)), fill("B", "no", 1, 50, 0, at(5, 10))]
    with pytest.raises(TaxInputError, match="flat position") as info:
        build_lots(fills, [TaxSettlement(T1, "yes", at(6, 9), fee_cents=1)])
    assert info.value.field == "fee_cents"


@pytest.mark.parametrize(("ticker", "series"), [(T1, "KXHIGHNY"), ("KXHIGHCHI-26JAN05-T30",
                                                                    "KXHIGHCHI")])
def test_series_from_ticker_takes_the_prefix(ticker, series):
    assert series_from_ticker(ticker) == series


@pytest.mark.parametrize("ticker", ["KXHIGHNY", "-26JAN05", "KXHIGHNY-"])
def test_series_from_ticker_without_parts_raises(ticker):
    with pytest.raises(TaxInputError, match="ticker"):
        series_from_ticker(ticker)


def test_reconcile_ledger_markets_closed_in_year_tie_out():
    report = report_for_year([*EXAMPLE1_FILLS, *EXAMPLE2_FILLS],
                             [*EXAMPLE1_SETTLE, *EXAMPLE2_SETTLE], 2026)
    ledger = [LedgerMarket(T1, 0, 637 + 40, 40, at(6, 15)),   # realized before fees, fees 40
              LedgerMarket(T2, 0, -161 + 11, 11, at(6, 14))]
    rec = reconcile(report, ledger)

    assert (rec.net_gain_cents, rec.ledger_realized_cents, rec.unmatched) == (476, 476, ())
    assert rec.ties_out


def test_reconcile_open_or_other_year_ledger_market_is_listed_unmatched():
    report = report_for_year([*EXAMPLE1_FILLS, *EXAMPLE2_FILLS],
                             [*EXAMPLE1_SETTLE, *EXAMPLE2_SETTLE], 2026)
    ledger = [LedgerMarket(T1, 0, 677, 40, at(6, 15)),
              LedgerMarket(T2, 0, -150, 11, at(6, 14, year=2027)),  # closed in another year
              LedgerMarket("KXHIGHMIA-26JAN05-B70", 3, 500, 0, None)]  # still open: ignored
    rec = reconcile(report, ledger)

    assert rec.unmatched == ((T2, -161, 0),)
    assert rec.ledger_realized_cents == 637
    assert rec.cash_ties_out
    assert not rec.ledger_ties_out
    assert not rec.ties_out


def test_settlement_positions_adds_up_fills_before_each_settlement():
    positions = settlement_positions([*EXAMPLE1_FILLS, *EXAMPLE2_FILLS],
                                     [*EXAMPLE1_SETTLE, *EXAMPLE2_SETTLE])
    assert positions == {T1: 10 - 4 + 5, T2: -3 + 5}


def test_reconcile_ledger_settled_position_differs_from_fills_is_flagged():
    fills, settles = [*EXAMPLE1_FILLS, *EXAMPLE2_FILLS], [*EXAMPLE1_SETTLE, *EXAMPLE2_SETTLE]
    report = report_for_year(fills, settles, 2026)
    ledger = [LedgerMarket(T1, 0, 677, 40, at(6, 15), settled_contracts=10),  # fills say 11
              LedgerMarket(T2, 0, -150, 11, at(6, 14), settled_contracts=2)]
    rec = reconcile(report, ledger, fill_positions=settlement_positions(fills, settles))

    assert rec.position_mismatches == ((T1, 10, 11),)
    assert rec.net_gain_cents == rec.ledger_realized_cents
    assert not rec.ledger_ties_out


# Year straddle: 10 YES @40 (fee 3) on 2025-12-30; 4 NO @50 (fee 2) on 2025-12-31 closes 4;
# settles YES on 2026-01-02.
#  2025 (FIFO): 4*50 - 160 - round(3*4/10)=1 - 2 = 37; 6 YES open at year end (basis 240 + 2).
#  2026: settlement 6*100 - 240 - 2 = 358.  Lifetime 37 + 358 = 395.
#  Ledger (average cost, fees apart): realized 4*50 - 160 = 40 in December, + 600 - 240 = 360 at
#  settlement = 400 before fees, fees 5: 395 after fees, the same lifetime total.
#  Cash: -403 | +198 | +600 = 395; the ledger's books: 400 - 0 held - 5 = 395.
STRADDLE = "KXHIGHNY-26JAN01-B40"
STRADDLE_FILLS = [fill("S1", "yes", 10, 40, 3, at(30, 10, month=12, year=2025), ticker=STRADDLE),
                  fill("S2", "no", 4, 50, 2, at(31, 10, month=12, year=2025), ticker=STRADDLE)]
STRADDLE_SETTLE = [TaxSettlement(STRADDLE, "yes", at(2, 15))]


def _straddle(year: int, ledger: LedgerMarket):
    report = report_for_year(STRADDLE_FILLS, STRADDLE_SETTLE, year)
    return reconcile(report, [ledger], fill_cash=market_cash_flows(STRADDLE_FILLS,
                                                                   STRADDLE_SETTLE))


def test_reconcile_partial_close_open_at_year_end_lists_it_and_checks_cash_identity():
    # the ledger as of now: flat, settled in 2026, lifetime realized 400, fees 5, nothing held
    books = LedgerMarket(STRADDLE, 0, 400, 5, at(2, 15), settled_contracts=6, cost_cents=0)

    rec2025 = _straddle(2025, books)
    rec2026 = _straddle(2026, books)

    assert (rec2025.net_gain_cents, rec2025.ledger_realized_cents,
            rec2025.continuing_gains_cents) == (37, 0, 37)
    assert rec2025.continuing_markets == ((STRADDLE, 37, 400),)
    assert rec2025.ties_out
    # 2026: the ledger's lifetime 395 less the 37 the 2025 export reported
    assert (rec2026.net_gain_cents, rec2026.ledger_realized_cents) == (358, 358)
    assert rec2026.unmatched == ()
    assert rec2026.ties_out


def test_reconcile_ledger_books_off_by_a_cent_is_a_book_mismatch():
    books = LedgerMarket(STRADDLE, 0, 400, 6, at(2, 15), settled_contracts=6, cost_cents=0)

    rec2025 = _straddle(2025, books)
    rec2026 = _straddle(2026, books)

    assert rec2025.book_mismatches == ((STRADDLE, 394, 395),)
    assert not rec2025.ties_out
    assert rec2026.unmatched == ((STRADDLE, 395, 394),)
    assert not rec2026.ties_out


def test_market_cash_flows_sum_to_the_total_cash_flow():
    fills = [*EXAMPLE1_FILLS, *EXAMPLE2_FILLS, *STRADDLE_FILLS]
    settles = [*EXAMPLE1_SETTLE, *EXAMPLE2_SETTLE, *STRADDLE_SETTLE]

    flows = market_cash_flows(fills, settles)

    assert flows[T1] == 637
    assert flows[STRADDLE] == 395
    assert sum(flows.values()) == cash_flow_cents(fills, settles)
