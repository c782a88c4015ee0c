"""Synthetic KXHIGH markets: brackets partition the integers, settle from truth, look real."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.brackets import parse_bracket, partition_problem, settle
from models.climate import check_market_rules, check_series, climate_day_bounds_utc, climate_day_of
from models.synthetic import (
    SERIES,
    bracket_markets,
    bracket_probability,
    draw_event,
    event_payload,
    event_ticker_for,
    forecast_at,
    series_dict,
    series_info,
    settle_event,
    synthetic_events,
)

AS_OF = datetime(2026, 11, 22, 2, 15, tzinfo=UTC)


@given(centre=st.integers(-40, 130), value=st.integers(-100, 200))
def test_bracket_markets_any_integer_value_in_exactly_one_bracket(centre, value):
    markets = bracket_markets("KXHIGHNY-26NOV22", centre)

    winners = [m.ticker for m in markets if m.contains(value)]

    assert len(winners) == 1


def test_bracket_markets_centre_57_matches_kalshi_layout():
    markets = bracket_markets("KXHIGHCHI-25MAY08", 59)

    shape = [(m.ticker.rsplit("-", 1)[1], m.strike_type, m.floor_strike, m.cap_strike,
              m.yes_sub_title) for m in markets]

    # the same layout as the recorded KXHIGHCHI-25MAY08 event (T55, B55.5..B61.5, T62)
    assert shape == [
        ("T55", "less", None, 55, "54° or below"),
        ("B55.5", "between", 55, 56, "55° to 56°"),
        ("B57.5", "between", 57, 58, "57° to 58°"),
        ("B59.5", "between", 59, 60, "59° to 60°"),
        ("B61.5", "between", 61, 62, "61° to 62°"),
        ("T62", "greater", 62, None, "63° or above"),
    ]


@given(seed=st.integers(0, 2**32 - 1), day_offset=st.integers(0, 730))
def test_settle_event_any_draw_exactly_one_yes_containing_truth(seed, day_offset):
    day = date(2026, 1, 1) + timedelta(days=day_offset)
    event = draw_event(SERIES[seed % len(SERIES)], day, random.Random(seed))

    results = settle_event(event)

    yes = [t for t, r in results.items() if r == "yes"]
    assert len(yes) == 1
    winner = next(m for m in event.markets if m.ticker == yes[0])
    if winner.low_f is not None:
        assert event.true_high_f >= winner.low_f
    if winner.high_f is not None:
        assert event.true_high_f <= winner.high_f


def test_synthetic_events_as_of_gives_today_and_tomorrow_for_seven_series():
    events = synthetic_events(AS_OF, random.Random(7))

    tickers = [e.event_ticker for e in events]

    # 02:15 UTC is still Nov 21 in every US standard-time zone
    assert len(events) == 14
    assert {e.series.series_ticker for e in events} == {
        "KXHIGHNY", "KXHIGHCHI", "KXHIGHMIA", "KXHIGHAUS", "KXHIGHLAX", "KXHIGHDEN", "KXHIGHPHIL"}
    assert "KXHIGHNY-26NOV21" in tickers
    assert "KXHIGHNY-26NOV22" in tickers
    assert all(e.open_time_utc <= AS_OF < e.close_time_utc for e in events)


def test_synthetic_events_same_seed_reproduces_truth_and_other_seed_differs():
    first = [e.true_high_f for e in synthetic_events(AS_OF, random.Random(3))]
    again = [e.true_high_f for e in synthetic_events(AS_OF, random.Random(3))]
    other = [e.true_high_f for e in synthetic_events(AS_OF, random.Random(4))]

    assert first == again
    assert first != other


def test_synthetic_events_naive_as_of_rejected_naming_field():
    with pytest.raises(ValueError, match="as_of"):
        synthetic_events(datetime(2026, 11, 22, 2, 15), random.Random(1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("series", "expected_start", "expected_close"),
    [
        ("KXHIGHNY", "2026-07-04T05:00:00+00:00", "2026-07-05T04:59:00+00:00"),
        ("KXHIGHCHI", "2026-07-04T06:00:00+00:00", "2026-07-05T05:59:00+00:00"),
        ("KXHIGHDEN", "2026-07-04T07:00:00+00:00", "2026-07-05T06:59:00+00:00"),
        ("KXHIGHLAX", "2026-07-04T08:00:00+00:00", "2026-07-05T07:59:00+00:00"),
    ],
)
def test_draw_event_summer_day_climate_day_in_standard_time(series, expected_start,
                                                            expected_close):
    # July is daylight time: the climate day still runs midnight-midnight STANDARD time
    event = draw_event(series_info(series), date(2026, 7, 4), random.Random(0))

    assert event.climate_start_utc.isoformat() == expected_start
    assert event.close_time_utc.isoformat() == expected_close


def test_climate_date_just_before_standard_midnight_is_previous_day():
    start, end = climate_day_bounds_utc(date(2026, 7, 4), -5)

    assert climate_day_of(end - timedelta(seconds=1), -5) == date(2026, 7, 4)
    assert climate_day_of(end, -5) == date(2026, 7, 5)
    assert end - start == timedelta(days=1)


def test_event_ticker_for_date_kalshi_format():
    assert event_ticker_for("KXHIGHPHIL", date(2026, 3, 6)) == "KXHIGHPHIL-26MAR06"


@pytest.mark.parametrize(
    ("series", "station", "cli"),
    [
        ("KXHIGHNY", "Central Park, New York", "CLINYC"),
        ("KXHIGHCHI", "Chicago Midway, IL", "CLIMDW"),
        ("KXHIGHAUS", "Austin Bergstrom", "CLIAUS"),
        ("KXHIGHMIA", "Miami International Airport", "CLIMIA"),
        ("KXHIGHLAX", "Los Angeles Airport", "CLILAX"),
        ("KXHIGHDEN", "Denver International Airport", "CLIDEN"),
        ("KXHIGHPHIL", "Philadelphia International Airport", "CLIPHL"),
    ],
)
def test_event_payload_rules_name_station_and_cli_report(series, station, cli):
    event = draw_event(series_info(series), date(2026, 11, 22), random.Random(5),
                       open_not_after=AS_OF)

    payload = event_payload(event, AS_OF)

    for market in payload["markets"]:
        assert station in market["rules_primary"]
        assert cli in market["rules_primary"]
        assert "Climatological Report (Daily)" in market["rules_primary"]
    sources = series_dict(event.series)["settlement_sources"]
    assert f"issuedby={cli[3:]}" in sources[0]["url"]


def test_event_payload_rules_agree_with_strikes():
    event = draw_event(series_info("KXHIGHNY"), date(2026, 11, 22), random.Random(5),
                       open_not_after=AS_OF)

    for market in event_payload(event, AS_OF)["markets"]:
        rule = market["rules_primary"]
        if market["strike_type"] == "less":
            assert f"less than {market['cap_strike']}°" in rule
            assert "floor_strike" not in market
        elif market["strike_type"] == "greater":
            assert f"greater than {market['floor_strike']}°" in rule
            assert "cap_strike" not in market
        else:
            assert f"between {market['floor_strike']}-{market['cap_strike']}°" in rule


def test_event_payload_current_shape_strings_and_status():
    event = draw_event(series_info("KXHIGHMIA"), date(2026, 11, 22), random.Random(5),
                       open_not_after=AS_OF)

    payload = event_payload(event, AS_OF)

    assert payload["event"]["mutually_exclusive"] is True
    for market in payload["markets"]:
        assert market["status"] == "active"
        for key in ("yes_bid_dollars", "no_ask_dollars", "last_price_dollars"):
            assert re.fullmatch(r"\d\.\d{4}", market[key])
        assert re.fullmatch(r"\d+\.\d{2}", market["volume_fp"])
        assert market["close_time"].endswith("Z")
        assert market["price_ranges"] == [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]


def test_forecast_at_lead_shrinks_and_converges_on_truth():
    event = draw_event(series_info("KXHIGHDEN"), date(2026, 11, 22), random.Random(11))

    early = forecast_at(event, event.climate_start_utc - timedelta(hours=24))
    late = forecast_at(event, event.climate_end_utc + timedelta(hours=1))

    assert early.sd_f > late.sd_f
    assert abs(late.mean_f - event.true_high_f) <= abs(early.mean_f - event.true_high_f)
    assert abs(late.mean_f - event.true_high_f) < 0.6 * 4  # within 4 sd at the floor
    assert "SIMULATED" in late.label


def test_bracket_probability_event_sums_to_one():
    event = draw_event(series_info("KXHIGHAUS"), date(2026, 11, 22), random.Random(2))
    forecast = forecast_at(event, event.climate_start_utc)

    total = sum(bracket_probability(m, forecast) for m in event.markets)

    assert total == pytest.approx(1.0, abs=1e-9)


def test_synthetic_truth_many_days_centred_on_climatology():
    # the truth is drawn around the bracket centre: over a year the tails are not dominant
    info = series_info("KXHIGHNY")
    rng = random.Random(99)
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    events = [draw_event(info, d, rng) for d in days]

    mean_anomaly = sum(e.true_high_f - e.centre_f for e in events) / len(events)

    assert abs(mean_anomaly) < 1.5


@pytest.mark.parametrize("info", SERIES, ids=lambda i: i.series_ticker)
def test_event_payload_passes_settlement_source_checks(info):
    event = draw_event(info, date(2026, 11, 22), random.Random(1), open_not_after=AS_OF)

    payload = event_payload(event, AS_OF)

    assert check_series(series_dict(info)) is None
    for market in payload["markets"]:
        assert check_market_rules(info.series_ticker, market["ticker"],
                                  market["rules_primary"]) is None


@given(seed=st.integers(0, 2**32 - 1))
def test_event_payload_bracket_parser_sees_partition_and_same_winner(seed):
    # the project's own bracket parser (strikes + yes_sub_title) agrees with our settlement
    event = draw_event(SERIES[seed % len(SERIES)], date(2026, 11, 22), random.Random(seed),
                       open_not_after=AS_OF)
    brackets = [parse_bracket(m) for m in event_payload(event, AS_OF)["markets"]]

    assert partition_problem(brackets) is None
    assert {b.ticker: settle(b, event.true_high_f) for b in brackets} == settle_event(event)


def test_simulated_forecast_as_dict_labelled_and_json_ready():
    event = draw_event(series_info("KXHIGHPHIL"), date(2026, 11, 22), random.Random(8))

    payload = forecast_at(event, AS_OF).as_dict()

    assert payload["simulated"] is True
    assert "SIMULATED" in payload["label"]
    assert payload["station_id"] == "KPHL"
    assert payload["issued_at"] == "2026-11-22T02:15:00Z"
    assert isinstance(payload["high_f"], int)
    assert json.loads(json.dumps(payload)) == payload
