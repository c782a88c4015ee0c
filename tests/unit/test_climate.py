"""Climate days at fixed standard offsets and settlement-source checks against the registry."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from models.climate import (
    STATIONS,
    StationError,
    check_market_rules,
    check_series,
    climate_day_bounds_utc,
    climate_day_of,
    station_for,
)


def test_climate_day_bounds_new_york_summer_is_05z_to_05z():
    start, end = climate_day_bounds_utc(date(2025, 7, 4), -5)
    assert start == datetime(2025, 7, 4, 5, tzinfo=UTC)
    assert end == datetime(2025, 7, 5, 5, tzinfo=UTC)


def test_climate_day_of_half_past_midnight_edt_belongs_to_previous_day():
    edt = timezone(timedelta(hours=-4))
    ts = datetime(2025, 7, 5, 0, 30, tzinfo=edt)  # 23:30 EST on July 4
    assert climate_day_of(ts, -5) == date(2025, 7, 4)
    assert climate_day_of(ts + timedelta(hours=1), -5) == date(2025, 7, 5)


def test_climate_day_of_naive_time_is_refused():
    with pytest.raises(StationError, match="naive"):
        climate_day_of(datetime(2025, 7, 5, 0, 30), -5)


def test_station_registry_uses_midway_and_bergstrom():
    assert station_for("KXHIGHCHI").icao == "KMDW"
    assert station_for("KXHIGHCHI").cli_id == "MDW"
    assert station_for("kxhighaus").icao == "KAUS"
    assert set(STATIONS) == {"KXHIGHNY", "KXHIGHCHI", "KXHIGHMIA", "KXHIGHAUS", "KXHIGHLAX",
                             "KXHIGHDEN", "KXHIGHPHIL", "KXRAINNYC"}
    with pytest.raises(StationError, match="KXHIGHHOU"):
        station_for("KXHIGHHOU")


def test_check_series_lax_weather_company_raises_alarm(shared_data):
    doc = json.loads((shared_data / "kalshi/api-2026/kxhiglax-series-current.json").read_text())
    alarm = check_series(doc)
    assert alarm is not None
    assert alarm.series == "KXHIGHLAX"
    assert "The Weather Company" in alarm.found
    assert "stopped" in alarm.reason


def test_check_series_nws_source_with_right_cli_passes():
    doc = {"ticker": "KXHIGHCHI", "settlement_sources": [
        {"name": "National Weather Service",
         "url": "https://forecast.weather.gov/product.php?site=LOT&product=CLI&issuedby=MDW"}]}
    assert check_series(doc) is None


def test_check_series_ohare_product_raises_alarm():
    doc = {"ticker": "KXHIGHCHI", "settlement_sources": [
        {"name": "National Weather Service",
         "url": "https://forecast.weather.gov/product.php?site=LOT&product=CLI&issuedby=ORD"}]}
    alarm = check_series(doc)
    assert alarm is not None
    assert "MDW" in alarm.expected


def test_check_series_without_sources_raises_alarm():
    assert check_series({"ticker": "KXHIGHNY", "settlement_sources": []}) is not None


@pytest.mark.shared_data
def test_check_market_rules_all_real_markets_match_registry(shared_data):
    checked = 0
    for series in ("KXHIGHNY", "KXHIGHCHI", "KXHIGHMIA", "KXHIGHAUS", "KXHIGHDEN"):
        path = shared_data / "kalshi/weather-events-2024-25" / f"{series}_events.jsonl.gz"
        with gzip.open(path, "rt") as fh:
            for line in fh:
                for m in json.loads(line)["markets"]:
                    assert check_market_rules(series, m["ticker"], m["rules_primary"]) is None
                    checked += 1
    assert checked == 7404


def test_check_market_rules_ohare_rule_raises_alarm():
    rule = ("If the highest temperature recorded at Chicago O'Hare, IL for May 1, 2025 as reported "
            "by the National Weather Service's Daily Climate Report, is between 60-61°, ...")
    alarm = check_market_rules("KXHIGHCHI", "KXHIGHCHI-25MAY01-B60.5", rule)
    assert alarm is not None
    assert alarm.field.endswith("rules_primary")


def test_check_market_rules_current_2026_wording_passes(shared_data):
    path = shared_data / "kalshi/api-2026/kxhighny_26jun02_markets_raw.json"
    doc = json.loads(path.read_text())
    for m in doc["markets"]:
        assert check_market_rules("KXHIGHNY", m["ticker"], m["rules_primary"]) is None
