"""Every recorded real Kalshi payload parses without loss.

"Without loss": every raw field is either checked against the parsed value (cents == raw int,
dollar and fixed-point strings round-trip) or listed in an explicit set of fields we do not map.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from kalshi.wire import (
    CENT_GRID,
    parse_event,
    parse_market,
    parse_order,
    parse_series,
    parse_trade,
)
from models.money import price_dollars

# raw fields read but not mapped to a domain field, each for a stated reason
UNMAPPED_MARKET = {
    "category",  # legacy, always "" in the data; the series carries the category
    "risk_limit_cents",  # legacy, always 0; removed from the API
    "response_price_units",  # legacy label "usd_cent"; the shape itself tells us the units
    "tick_size",  # legacy; asserted == 1 cent below, which is CENT_GRID
    "fractional_trading_enabled",  # removed 2026-07-09
    "occurrence_datetime",  # not used for settlement (rules + climate day are)
    "early_close_condition",  # free text; rules_secondary carries the same
}


def _same_time(parsed: datetime | None, raw: str | None) -> bool:
    if raw is None:
        return parsed is None
    expected = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed == expected and parsed.tzinfo is not None


def _check_legacy_market(raw: dict, m) -> None:
    assert set(raw) - UNMAPPED_MARKET <= _LEGACY_MARKET_KEYS, set(raw) - _LEGACY_MARKET_KEYS
    assert raw["tick_size"] == 1
    assert m.price_grid == CENT_GRID
    for key in ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price"):
        assert getattr(m, f"{key}_cents") == raw[key], key
    for key in ("previous_yes_bid", "previous_yes_ask", "previous_price"):
        assert getattr(m, key) * 100 == raw[key], key
    for key in ("volume", "volume_24h", "open_interest"):
        assert getattr(m, key) == raw[key], key
    assert m.notional_value * 100 == raw["notional_value"]
    assert m.liquidity * 100 == raw["liquidity"]
    if "settlement_value" in raw:
        assert m.settlement_value * 100 == raw["settlement_value"]
    else:
        assert m.settlement_value is None
    _check_common_market(raw, m)


def _check_common_market(raw: dict, m) -> None:
    for key in ("ticker", "event_ticker", "market_type", "title", "subtitle", "yes_sub_title",
                "no_sub_title", "status", "result", "can_close_early", "expiration_value",
                "rules_primary", "rules_secondary", "settlement_timer_seconds"):
        assert getattr(m, key) == raw[key], key
    assert m.strike_type == raw.get("strike_type")
    for key in ("floor_strike", "cap_strike"):
        assert getattr(m, key) == (Decimal(str(raw[key])) if key in raw else None), key
    for key in ("open_time", "close_time", "expected_expiration_time", "expiration_time",
                "latest_expiration_time", "created_time", "updated_time"):
        assert _same_time(getattr(m, key), raw.get(key)), key


_LEGACY_MARKET_KEYS = {
    "ticker", "event_ticker", "market_type", "title", "subtitle", "yes_sub_title", "no_sub_title",
    "open_time", "close_time", "expected_expiration_time", "expiration_time",
    "latest_expiration_time", "settlement_timer_seconds", "status", "notional_value", "yes_bid",
    "yes_ask", "no_bid", "no_ask", "last_price", "previous_yes_bid", "previous_yes_ask",
    "previous_price", "volume", "volume_24h", "liquidity", "open_interest", "result",
    "can_close_early", "expiration_value", "rules_primary", "rules_secondary", "strike_type",
    "cap_strike", "floor_strike", "settlement_value",
}


def _check_event(line: dict) -> int:
    raw_event, raw_markets = line["event"], line["markets"]
    event = parse_event(raw_event, raw_markets)
    for key in ("event_ticker", "series_ticker", "title", "sub_title", "collateral_return_type",
                "mutually_exclusive", "category"):
        assert getattr(event, key) == raw_event[key], key
    assert _same_time(event.strike_date, raw_event.get("strike_date"))
    assert len(event.markets) == len(raw_markets)
    for raw, market in zip(raw_markets, event.markets, strict=True):
        _check_legacy_market(raw, market)
    return len(event.markets)


def test_parse_event_legacy_fixture_lines_map_every_field(fixtures_dir: Path):
    lines = (fixtures_dir / "kalshi" / "legacy_weather_events_sample.jsonl").read_text()
    parsed = [_check_event(json.loads(line)) for line in lines.splitlines()]
    assert parsed == [6, 6, 6, 6]


@pytest.mark.shared_data
def test_parse_event_all_recorded_legacy_events_without_loss(shared_data: Path):
    files = sorted((shared_data / "kalshi" / "weather-events-2024-25").glob("*_events.jsonl.gz"))
    assert len(files) == 5
    events = markets = 0
    tickers = set()
    for path in files:
        with gzip.open(path, "rt") as handle:
            for line in handle:
                data = json.loads(line)
                markets += _check_event(data)
                events += 1
                tickers.add(data["event"]["event_ticker"])
    # PROVENANCE.md says 1,230 event-days; the files hold 1,234 distinct events (266*4 + 170)
    assert events == len(tickers) == 1234
    assert markets == 7404


@pytest.mark.shared_data
def test_parse_market_current_2026_shape_without_loss(shared_data: Path):
    raw_doc = json.loads((shared_data / "kalshi" / "api-2026" /
                          "kxhighny_26jun02_markets_raw.json").read_text())
    assert len(raw_doc["markets"]) == 4
    for raw in raw_doc["markets"]:
        m = parse_market(raw)
        unmapped = set(raw) - UNMAPPED_MARKET - {"liquidity_dollars"}
        assert unmapped <= _CURRENT_MARKET_KEYS, unmapped - _CURRENT_MARKET_KEYS
        for key in ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price"):
            assert price_dollars(getattr(m, f"{key}_cents")) == raw[f"{key}_dollars"], key
        for key in ("previous_yes_bid", "previous_yes_ask", "previous_price", "notional_value"):
            assert f"{getattr(m, key):.4f}" == raw[f"{key}_dollars"], key
        for key in ("volume", "volume_24h", "open_interest", "yes_bid_size", "yes_ask_size"):
            assert str(getattr(m, key)) == raw[f"{key}_fp"], key  # "3041.51" stays exact
        assert str(m.liquidity) == raw["liquidity_dollars"]
        assert [(str(r.start), str(r.end), str(r.step)) for r in m.price_grid.ranges] == [
            (r["start"], r["end"], r["step"]) for r in raw["price_ranges"]]
        assert m.price_level_structure == raw["price_level_structure"]
        _check_common_market(raw, m)


_CURRENT_MARKET_KEYS = {
    "ticker", "event_ticker", "market_type", "title", "subtitle", "yes_sub_title", "no_sub_title",
    "open_time", "close_time", "expected_expiration_time", "expiration_time",
    "latest_expiration_time", "created_time", "updated_time", "settlement_timer_seconds",
    "status", "yes_bid_dollars", "yes_ask_dollars", "no_bid_dollars", "no_ask_dollars",
    "last_price_dollars", "previous_yes_bid_dollars", "previous_yes_ask_dollars",
    "previous_price_dollars", "yes_bid_size_fp", "yes_ask_size_fp", "volume_fp", "volume_24h_fp",
    "open_interest_fp", "notional_value_dollars", "result", "can_close_early",
    "expiration_value", "rules_primary", "rules_secondary", "strike_type", "floor_strike",
    "cap_strike", "price_level_structure", "price_ranges",
}


@pytest.mark.shared_data
def test_parse_series_current_2026_keeps_settlement_source(shared_data: Path):
    raw = json.loads((shared_data / "kalshi" / "api-2026" /
                      "kxhiglax-series-current.json").read_text())["series"]
    series = parse_series(raw)
    assert series.ticker == raw["ticker"] == "KXHIGHLAX"
    assert [(s.name, s.url) for s in series.settlement_sources] == [
        (s["name"], s["url"]) for s in raw["settlement_sources"]]
    assert series.settlement_sources[0].name == "The Weather Company"
    assert (series.fee_type, series.fee_multiplier) == (raw["fee_type"], Decimal(1))
    assert series.tags == tuple(raw["tags"])
    assert (series.contract_url, series.contract_terms_url) == (
        raw["contract_url"], raw["contract_terms_url"])


@pytest.mark.shared_data
def test_parse_order_transitional_2026_snapshot_without_loss(shared_data: Path):
    snapshot = json.loads((shared_data / "kalshi" / "api-2026" /
                           "snapshot_2026-01-05_115639.json").read_text())
    raws = snapshot["open_orders_snapshot"]
    assert len(raws) == 100
    for raw in raws:
        order = parse_order(raw)
        assert order.yes_price_cents == raw["yes_price"]
        assert price_dollars(order.yes_price_cents) == raw["yes_price_dollars"]
        assert order.no_price * 100 == raw["no_price"]
        assert f"{order.no_price:.4f}" == raw["no_price_dollars"]
        for key in ("fill_count", "remaining_count", "initial_count"):
            assert getattr(order, key) == raw[key], key
        for key in ("taker_fees", "maker_fees", "taker_fill_cost", "maker_fill_cost"):
            assert getattr(order, key) * 100 == raw[key], key
            if raw.get(f"{key}_dollars"):
                assert f"{getattr(order, key):.4f}" == raw[f"{key}_dollars"], key
        # buy yes -> bid, buy no -> ask (the V2 YES-book direction)
        assert order.book_side == ("bid" if raw["side"] == "yes" else "ask")
        for key in ("order_id", "client_order_id", "ticker", "status", "type", "user_id"):
            assert getattr(order, key) == raw[key], key
        assert _same_time(order.created_time, raw["created_time"])
        assert order.expiration_time is None
        assert order.order_group_id is None
    # the snapshot's balance/positions are the bot's own float summary, not Kalshi payloads
    assert isinstance(snapshot["balance"], float)


@pytest.mark.shared_data
def test_parse_trade_recorded_legacy_trades_without_loss(shared_data: Path):
    import pyarrow.parquet as pq

    path = shared_data / "kalshi" / "weather-events-2024-25" / "KXHIGHDEN_trades.parquet"
    rows = pq.ParquetFile(path).read_row_group(0).slice(0, 2000).to_pylist()
    for row in rows:
        # the legacy GET /markets/trades item, as the source repository downloaded it
        raw = dict(row, created_time=row["created_time"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        trade = parse_trade(raw)
        assert (trade.trade_id, trade.ticker) == (raw["trade_id"], raw["ticker"])
        assert trade.count == raw["count"]
        assert (trade.yes_price * 100, trade.no_price * 100) == (raw["yes_price"],
                                                                 raw["no_price"])
        assert trade.taker_book_side == ("bid" if raw["taker_side"] == "yes" else "ask")
        assert trade.created_time == row["created_time"]
        assert trade.is_block_trade is None
