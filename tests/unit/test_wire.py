"""kalshi.wire: both shapes map to the same domain values; bad input names field and value."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from kalshi.client import order_request
from kalshi.errors import ProtocolError, WireFormatError
from kalshi.wire import (
    CENT_GRID,
    CreateOrderV2Request,
    DecreaseOrderV2Request,
    PriceGrid,
    PriceRange,
    SubpennyPriceError,
    parse_balance,
    parse_candlestick,
    parse_fill,
    parse_market,
    parse_market_position,
    parse_orderbook,
    parse_page,
    parse_settlement,
    parse_trade,
)
from models.money import FractionalCountError, SubpennyError
from tests.integration.fakevenue import make_market

DECI_GRID = PriceGrid(ranges=(PriceRange(start=Decimal(0), end=Decimal(1),
                                         step=Decimal("0.001")),))


def _legacy(current: dict) -> dict:
    # the same market in the 2024-25 integer-cent shape
    raw = {k: v for k, v in current.items()
           if not k.endswith(("_dollars", "_fp")) and k not in ("price_ranges",)}
    for key in ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "previous_yes_bid",
                "previous_yes_ask", "previous_price"):
        raw[key] = int(Decimal(current[f"{key}_dollars"]) * 100)
    for key in ("volume", "volume_24h", "open_interest"):
        raw[key] = int(Decimal(current[f"{key}_fp"]))
    raw["notional_value"] = 100
    return raw


def test_parse_market_legacy_and_current_shapes_give_same_prices():
    current = make_market("T-1", yes_bid="0.4100", yes_ask="0.4300", last="0.4200",
                          volume="120.00")
    a, b = parse_market(current), parse_market(_legacy(current))
    for key in ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "volume",
                "open_interest", "notional_value"):
        assert getattr(a, key) == getattr(b, key), key
    assert (a.yes_bid_cents, a.yes_ask_cents, a.no_bid_cents) == (41, 43, 57)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("status", "paused_forever", "unknown value"),
    ("market_type", "ternary", "unknown value"),
    ("result", "maybe", "unknown value"),
    ("volume_fp", "-1.00", "negative count"),
    ("volume_fp", 12.5, "expected a decimal string"),
    ("yes_bid_dollars", "abc", "not a decimal number"),
    ("yes_bid_dollars", "1.5000", "outside"),
    ("can_close_early", "yes", "expected a boolean"),
    ("open_time", "2026-06-01 14:00:00", "RFC3339"),
    ("settlement_timer_seconds", "3600", "expected an integer"),
    ("volume_fp", "1.005", "finer than 0.01"),
])
def test_parse_market_bad_field_raises_wire_format_error_naming_field(key, value, message):
    raw = make_market("T-BAD")
    raw[key] = value
    with pytest.raises(WireFormatError) as info:
        parse_market(raw)
    assert info.value.field == f"market[T-BAD].{key}"
    assert info.value.value == value
    assert message in str(info.value)
    assert key in str(info.value)


@pytest.mark.parametrize("key", ["ticker", "event_ticker", "yes_bid_dollars", "volume_fp",
                                 "close_time", "rules_primary", "result"])
def test_parse_market_missing_required_field_raises_naming_it(key):
    raw = make_market("T-MISS")
    del raw[key]
    with pytest.raises(WireFormatError, match=f"{key}: missing required field"):
        parse_market(raw)


def test_parse_market_legacy_and_current_disagree_raises():
    raw = make_market("T-2", yes_bid="0.4100")
    raw["yes_bid"] = 40
    with pytest.raises(WireFormatError, match="disagrees with legacy yes_bid"):
        parse_market(raw)


def test_parse_market_subpenny_price_on_cent_grid_raises_subpenny_error():
    raw = make_market("T-3", yes_bid="0.4150")
    with pytest.raises(SubpennyPriceError) as info:
        parse_market(raw)
    assert isinstance(info.value, SubpennyError)
    assert isinstance(info.value, WireFormatError)
    assert info.value.field == "market[T-3].yes_bid_dollars"
    assert info.value.value == "0.4150"


def test_parse_market_subpenny_price_allowed_by_price_ranges_kept_exact():
    raw = make_market("T-4", yes_bid="0.4150")
    raw["price_ranges"] = [{"start": "0.0000", "end": "1.0000", "step": "0.0010"}]
    market = parse_market(raw)
    assert market.yes_bid == Decimal("0.4150")
    assert market.price_grid.sub_penny
    with pytest.raises(SubpennyError):
        _ = market.yes_bid_cents  # integer cents cannot hold it: refuse, never round


def test_parse_market_price_off_tapered_grid_raises():
    raw = make_market("T-5", yes_bid="0.5000")
    raw["price_ranges"] = [{"start": "0.0000", "end": "0.1000", "step": "0.0010"},
                           {"start": "0.1000", "end": "0.9000", "step": "0.0200"},
                           {"start": "0.9000", "end": "1.0000", "step": "0.0010"}]
    raw["yes_ask_dollars"] = raw["no_bid_dollars"] = "0.5200"
    raw["no_ask_dollars"], raw["last_price_dollars"] = "0.5000", "0.5000"
    raw["yes_bid_dollars"] = "0.4900"  # whole cent, but not on the 2-cent band
    with pytest.raises(WireFormatError, match="off the market's price grid") as info:
        parse_market(raw)
    assert info.value.field == "market[T-5].yes_bid_dollars"


def test_parse_market_not_an_object_raises():
    with pytest.raises(WireFormatError, match="expected a JSON object"):
        parse_market(["not", "a", "market"])


def test_parse_orderbook_current_and_legacy_shapes_agree():
    current = {"orderbook_fp": {"yes_dollars": [["0.4000", "3.00"], ["0.4100", "5.00"]],
                                "no_dollars": [["0.5700", "7.00"]]}}
    legacy = {"orderbook": {"yes": [[40, 3], [41, 5]], "no": [[57, 7]]}}
    a, b = parse_orderbook(current), parse_orderbook(legacy)
    assert a == b
    assert a.best_yes_bid == Decimal("0.41")
    assert a.best_yes_ask == Decimal("0.43")


def test_parse_orderbook_legacy_null_side_is_empty():
    book = parse_orderbook({"orderbook": {"yes": None, "no": [[57, 7]]}})
    assert book.yes == ()
    assert book.best_yes_bid is None


@pytest.mark.parametrize(("raw", "field"), [
    ({"orderbook_fp": {"yes_dollars": [["0.4100", "5.00"], ["0.4000", "3.00"]],
                       "no_dollars": []}}, "orderbook_fp.yes_dollars[1]"),
    ({"orderbook_fp": {"yes_dollars": [["0.4100", "-5.00"]], "no_dollars": []}},
     "orderbook_fp.yes_dollars[0].count"),
    ({"orderbook_fp": {"yes_dollars": [["0.4100"]], "no_dollars": []}},
     "orderbook_fp.yes_dollars[0]"),
    ({"orderbook_fp": {"yes_dollars": [], "no_dollars": None}}, "orderbook_fp.no_dollars"),
    ({}, "orderbook_fp"),
])
def test_parse_orderbook_malformed_raises_naming_level(raw, field):
    with pytest.raises(WireFormatError) as info:
        parse_orderbook(raw)
    assert info.value.field == field


def test_parse_orderbook_subpenny_level_needs_grid():
    raw = {"orderbook_fp": {"yes_dollars": [["0.4150", "1.00"]], "no_dollars": []}}
    with pytest.raises(SubpennyPriceError):
        parse_orderbook(raw)
    assert parse_orderbook(raw, DECI_GRID).best_yes_bid == Decimal("0.415")


def test_parse_trade_legacy_and_current_same_domain_values():
    current = {"trade_id": "t1", "ticker": "T", "count_fp": "4.00", "yes_price_dollars": "0.3000",
               "no_price_dollars": "0.7000", "taker_outcome_side": "no", "taker_book_side": "ask",
               "created_time": "2025-01-01T00:00:00Z", "is_block_trade": False}
    legacy = {"trade_id": "t1", "ticker": "T", "count": 4, "yes_price": 30, "no_price": 70,
              "taker_side": "no", "created_time": "2025-01-01T00:00:00Z"}
    a, b = parse_trade(current), parse_trade(legacy)
    assert (a.count, a.yes_price, a.taker_book_side) == (b.count, b.yes_price, b.taker_book_side)
    assert b.is_block_trade is None  # not in the legacy shape: unknown, not guessed False


def test_parse_fill_legacy_sell_yes_is_ask_and_matches_current():
    legacy = {"trade_id": "f1", "order_id": "o1", "ticker": "T", "side": "yes", "action": "sell",
              "count": 2, "yes_price": 60, "no_price": 40, "is_taker": True,
              "created_time": "2025-01-01T00:00:00Z"}
    current = {"fill_id": "f1", "trade_id": "f1", "order_id": "o1", "ticker": "T",
               "market_ticker": "T", "outcome_side": "no", "book_side": "ask", "count_fp": "2.00",
               "yes_price_dollars": "0.6000", "no_price_dollars": "0.4000", "is_taker": True,
               "fee_cost": "0.0200", "exchange_index": 0}
    a, b = parse_fill(legacy), parse_fill(current)
    assert a.book_side == b.book_side == "ask"
    assert (a.count_contracts, a.yes_price, a.fill_id) == (b.count_contracts, b.yes_price, "f1")


def test_parse_fill_book_side_contradicting_legacy_side_raises():
    raw = {"trade_id": "f1", "order_id": "o1", "ticker": "T", "side": "yes", "action": "buy",
           "book_side": "ask", "count_fp": "1.00", "yes_price_dollars": "0.6000",
           "no_price_dollars": "0.4000", "is_taker": False}
    with pytest.raises(WireFormatError, match="book_side"):
        parse_fill(raw)


def test_parse_market_position_legacy_and_current_agree():
    legacy = {"ticker": "T", "position": -3, "market_exposure": 159, "realized_pnl": 0,
              "total_traded": 159, "fees_paid": 6}
    current = {"ticker": "T", "position_fp": "-3.00", "market_exposure_dollars": "1.5900",
               "realized_pnl_dollars": "0.0000", "total_traded_dollars": "1.5900",
               "fees_paid_dollars": "0.0600", "exchange_index": 0,
               "last_updated_ts": "2026-01-01T00:00:00Z"}
    a, b = parse_market_position(legacy), parse_market_position(current)
    assert (a.position_contracts, a.market_exposure, a.fees_paid) == (
        b.position_contracts, b.market_exposure, b.fees_paid) == (-3, Decimal("1.59"),
                                                                  Decimal("0.06"))


def test_parse_market_position_fractional_contracts_refused_by_accessor():
    raw = {"ticker": "T", "position_fp": "1.50", "market_exposure_dollars": "0.7500",
           "realized_pnl_dollars": "0", "total_traded_dollars": "0.75", "fees_paid_dollars": "0"}
    position = parse_market_position(raw)
    assert position.position == Decimal("1.50")
    with pytest.raises(FractionalCountError):
        _ = position.position_contracts


def test_parse_balance_dollars_must_agree_with_cents():
    assert parse_balance({"balance": 1050, "balance_dollars": "10.5000",
                          "portfolio_value": 0, "updated_ts": 1}).balance_cents == 1050
    with pytest.raises(WireFormatError, match="balance_dollars"):
        parse_balance({"balance": 1050, "balance_dollars": "10.6000"})
    with pytest.raises(WireFormatError, match="balance.balance: expected an integer"):
        parse_balance({"balance": "1050"})


def test_parse_settlement_current_shape():
    raw = {"ticker": "T", "event_ticker": "E", "market_result": "yes", "yes_count_fp": "3.00",
           "yes_total_cost_dollars": "1.2000", "no_count_fp": "0.00",
           "no_total_cost_dollars": "0.0000", "revenue": 300, "settled_time":
           "2026-01-02T15:00:00Z", "fee_cost": "0.0300", "exchange_index": 0, "value": 100}
    s = parse_settlement(raw)
    assert (s.yes_count, s.revenue_cents, s.value_cents) == (Decimal(3), 300, 100)
    raw["market_result"] = "push"
    with pytest.raises(WireFormatError, match="market_result"):
        parse_settlement(raw)


def test_parse_candlestick_current_and_legacy():
    current = {"end_period_ts": 10, "volume_fp": "5.00", "open_interest_fp": "9.00",
               "yes_bid": {"open_dollars": "0.4000", "low_dollars": "0.3900",
                           "high_dollars": "0.4200", "close_dollars": "0.4100"},
               "yes_ask": {"open_dollars": "0.4300", "low_dollars": "0.4200",
                           "high_dollars": "0.4500", "close_dollars": "0.4400"},
               "price": {"open_dollars": None}}
    legacy = {"end_period_ts": 10, "volume": 5, "open_interest": 9,
              "yes_bid": {"open": 40, "low": 39, "high": 42, "close": 41},
              "yes_ask": {"open": 43, "low": 42, "high": 45, "close": 44}}
    a, b = parse_candlestick(current), parse_candlestick(legacy)
    assert (a.yes_bid, a.yes_ask, a.volume) == (b.yes_bid, b.yes_ask, b.volume)
    assert a.price is not None
    assert a.price.open is None
    assert b.price is None


def test_parse_page_cursor_missing_or_wrong_type_is_protocol_error():
    with pytest.raises(ProtocolError, match="markets.cursor"):
        parse_page({"markets": []}, "markets")
    with pytest.raises(WireFormatError, match="markets: missing required list"):
        parse_page({"cursor": ""}, "markets")
    assert parse_page({"markets": [1]}, "markets", cursor_required=False).cursor == ""


def test_create_order_request_forbids_unknown_fields():
    with pytest.raises(ValidationError, match="yes_price"):
        CreateOrderV2Request(ticker="T", side="bid", count="1", price="0.50",
                             time_in_force="good_till_canceled",
                             self_trade_prevention_type="maker", yes_price=50)


@pytest.mark.parametrize(("field", "value"), [
    ("price", "0.5"), ("price", "1.0000"), ("price", "0.00"), ("price", "0.12345"),
    ("count", "0"), ("count", "-1"), ("count", "1.001"), ("side", "buy"),
    ("time_in_force", "day"),
])
def test_create_order_request_bad_value_rejected_naming_field(field, value):
    fields = {"ticker": "T", "side": "bid", "count": "1", "price": "0.50",
              "time_in_force": "good_till_canceled", "self_trade_prevention_type": "maker"}
    fields[field] = value
    with pytest.raises(ValidationError, match=field):
        CreateOrderV2Request(**fields)


def test_create_order_request_reduce_only_requires_ioc():
    with pytest.raises(ValidationError, match="reduce_only"):
        order_request("T", "ask", 1, 50, client_order_id="c", reduce_only=True)
    ok = order_request("T", "ask", 1, 50, client_order_id="c", reduce_only=True,
                       time_in_force="immediate_or_cancel")
    assert ok.to_wire() == {"ticker": "T", "side": "ask", "count": "1.00", "price": "0.5000",
                            "time_in_force": "immediate_or_cancel",
                            "self_trade_prevention_type": "taker_at_cross",
                            "client_order_id": "c", "reduce_only": True}


def test_decrease_request_needs_exactly_one_of_reduce_by_reduce_to():
    assert DecreaseOrderV2Request(reduce_by="5").to_wire() == {"reduce_by": "5"}
    with pytest.raises(ValidationError, match="exactly one"):
        DecreaseOrderV2Request(reduce_by="5", reduce_to="1")
    with pytest.raises(ValidationError, match="exactly one"):
        DecreaseOrderV2Request()


@given(cents=st.integers(min_value=1, max_value=99), contracts=st.integers(1, 10_000))
def test_order_request_price_and_count_round_trip_through_wire(cents, contracts):
    wire = order_request("T", "bid", contracts, cents, client_order_id="c").to_wire()
    assert Decimal(wire["price"]) * 100 == cents
    assert Decimal(wire["count"]) == contracts


@given(cents=st.integers(min_value=0, max_value=100))
def test_parse_market_any_cent_price_round_trips_both_shapes(cents):
    raw = make_market("T-H")
    raw["last_price_dollars"] = f"{Decimal(cents) / 100:.4f}"
    legacy = _legacy(raw)
    assert parse_market(raw).last_price_cents == parse_market(legacy).last_price_cents == cents
    assert CENT_GRID.allows(Decimal(cents) / 100)


def test_parse_market_does_not_mutate_input():
    raw = make_market("T-6")
    before = copy.deepcopy(raw)
    parse_market(raw)
    assert raw == before


@pytest.mark.parametrize(("book_side", "outcome_side"), [("bid", "no"), ("ask", "yes")])
def test_parse_fill_outcome_side_contradicting_book_side_raises(book_side, outcome_side):
    raw = {"fill_id": "f1", "trade_id": "f1", "order_id": "o1", "ticker": "T",
           "book_side": book_side, "outcome_side": outcome_side, "count_fp": "1.00",
           "yes_price_dollars": "0.6000", "no_price_dollars": "0.4000", "is_taker": False}
    with pytest.raises(WireFormatError) as info:
        parse_fill(raw)
    assert info.value.field == "fill[f1].outcome_side"


def test_parse_trade_unknown_taker_outcome_side_raises():
    raw = {"trade_id": "t1", "ticker": "T", "count_fp": "1.00", "yes_price_dollars": "0.3000",
           "no_price_dollars": "0.7000", "taker_outcome_side": "maybe",
           "taker_book_side": "ask", "created_time": "2025-01-01T00:00:00Z"}
    with pytest.raises(WireFormatError, match="taker_outcome_side: unknown value"):
        parse_trade(raw)
