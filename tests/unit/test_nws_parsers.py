"""Every real api.weather.gov fixture parses or is refused with a reason; edge cases refused."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.nws import (
    GridLayer,
    NwsParseError,
    StaleForecastError,
    c_to_f,
    climate_day_hourly_max_f,
    grid_max_temperature_f,
    hourly_values,
    parse_alerts,
    parse_forecast,
    parse_gridpoint,
    parse_iso_interval,
    parse_metar_temperatures,
    parse_observation,
    parse_observations,
    parse_points,
    parse_stations,
)

GRID_AS_OF = datetime(2022, 2, 4, 6, tzinfo=UTC)  # 2h45 after the bundle's updateTime
FCST_AS_OF = datetime(2019, 10, 15, tzinfo=UTC)
DAY = timedelta(days=1)


def _load(fixtures_dir, name):
    return json.loads((fixtures_dir / "nws" / name).read_text())


def _parse(name, doc):
    if name.startswith("alerts"):
        return parse_alerts(doc)
    if name == "points.json":
        return parse_points(doc)
    if name == "gridpoints_stations.json":
        return parse_stations(doc)
    if name == "detailed_forecast.json":
        return parse_gridpoint(doc, as_of=GRID_AS_OF, max_age=timedelta(hours=12))
    if name.startswith("gridpoints_forecast"):
        update = datetime.fromisoformat(doc["properties"]["updateTime"])
        return parse_forecast(doc, as_of=update + timedelta(hours=1), max_age=timedelta(hours=12))
    if name == "stations_observations_latest.json":
        return parse_observation(doc)
    return parse_observations(doc)


# None: parses; str: refused, and the reason contains the string
EXPECTED = {
    "alerts_active_zone.json": None,
    "alerts_active_zone_second.json": None,
    "detailed_forecast.json": None,
    "gridpoints_forecast_empty_us.json": "periods[0].startTime=None",
    "gridpoints_forecast_hourly_empty_us.json": "periods[0].startTime=None",
    "gridpoints_forecast_hourly_si.json": None,
    "gridpoints_forecast_hourly_us.json": None,
    "gridpoints_forecast_relative_icon_us.json": None,
    "gridpoints_forecast_si.json": None,
    "gridpoints_forecast_strings_us.json": "temperature='41' is not a number",
    "gridpoints_forecast_us.json": None,
    "gridpoints_stations.json": None,
    "points.json": None,
    "stations_observations.json": None,
    "stations_observations_alternate_units.json": None,
    "stations_observations_empty.json": "timestamp=None",
    "stations_observations_latest.json": None,
    "stations_observations_metar.json": None,
    "stations_observations_metar_noparse.json": "'A clearly wrong code' is not a METAR",
    "stations_observations_missing_value.json": "station=None",
    "stations_observations_multiple.json": None,
    "stations_observations_multiple_unsorted.json": None,
    "stations_observations_noprop.json": "no observations",
    "stations_observations_other_unitcode.json": None,
    "stations_observations_relative_icon.json": None,
    "stations_observations_strings.json": "value='10' is a str",
}


def test_nws_fixture_table_covers_every_copied_fixture(fixtures_dir):
    assert sorted(p.name for p in (fixtures_dir / "nws").glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nws_real_fixture_parses_or_refuses_with_reason(fixtures_dir, name):
    doc = _load(fixtures_dir, name)
    if EXPECTED[name] is None:
        assert _parse(name, doc)
    else:
        with pytest.raises(NwsParseError) as info:
            _parse(name, doc)
        assert EXPECTED[name] in info.value.reason


def test_points_tallahassee_maps_to_tae_58_65(fixtures_dir):
    point = parse_points(_load(fixtures_dir, "points.json"))
    assert (point.wfo, point.x, point.y) == ("TAE", 58, 65)
    assert point.grid_url.endswith("/gridpoints/TAE/58,65")


def test_iso_interval_three_hours_expands_to_three_hours():
    start, end = parse_iso_interval("2022-02-04T05:00:00+00:00/PT3H")
    layer = GridLayer("temperature", "degF", ((start, end, 50.0),), ())
    assert sorted(hourly_values(layer)) == [datetime(2022, 2, 4, h, tzinfo=UTC) for h in (5, 6, 7)]


def test_iso_interval_days_and_hours_and_explicit_end():
    assert parse_iso_interval("2022-02-03T21:00:00+00:00/P7DT14H")[1] == datetime(
        2022, 2, 11, 11, tzinfo=UTC)
    start, end = parse_iso_interval("2022-02-03T21:00:00-05:00/2022-02-04T05:00:00+00:00")
    assert start == datetime(2022, 2, 4, 2, tzinfo=UTC)
    assert end == datetime(2022, 2, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2022-02-04T05:00:00+00:00", "2022-02-04T05:00:00/PT3H",
                                  "2022-02-04T05:00:00+00:00/PT", "x/PT3H",
                                  "2022-02-04T05:00:00+00:00/PT0H"])
def test_iso_interval_malformed_is_refused(text):
    with pytest.raises(NwsParseError, match="validTime"):
        parse_iso_interval(text)


@given(st.integers(1, 200))
def test_iso_interval_expansion_counts_hours(hours):
    start, end = parse_iso_interval(f"2024-03-01T00:00:00+00:00/PT{hours}H")
    assert len(hourly_values(GridLayer("t", "degF", ((start, end, 1.0),), ()))) == hours


def test_gridpoint_converts_celsius_to_fahrenheit(fixtures_dir):
    doc = _load(fixtures_dir, "detailed_forecast.json")
    grid = parse_gridpoint(doc, as_of=GRID_AS_OF, max_age=timedelta(hours=12))
    raw_first = doc["properties"]["temperature"]["values"][0]["value"]  # 22.78 degC
    assert grid.layer("temperature").values[0][2] == pytest.approx(raw_first * 9 / 5 + 32)
    assert grid.layer("temperature").unit == "degF"


def test_gridpoint_climate_day_max_uses_expanded_hours(fixtures_dir):
    grid = parse_gridpoint(_load(fixtures_dir, "detailed_forecast.json"), as_of=GRID_AS_OF,
                           max_age=timedelta(hours=12))
    raw = grid.layer("temperature")
    hours = hourly_values(raw)
    start = datetime(2022, 2, 4, 5, tzinfo=UTC)
    expected = max(v for h, v in hours.items() if start <= h < start + DAY)
    assert climate_day_hourly_max_f(grid, date(2022, 2, 4), -5) == expected
    # NDFD daytime max starting 2022-02-04T12Z: 22.22 degC
    assert grid_max_temperature_f(grid, date(2022, 2, 4), -5) == pytest.approx(c_to_f(22.2222222))


def test_gridpoint_stale_update_time_is_refused(fixtures_dir):
    doc = _load(fixtures_dir, "detailed_forecast.json")
    with pytest.raises(StaleForecastError, match="updateTime"):
        parse_gridpoint(doc, as_of=GRID_AS_OF + DAY, max_age=timedelta(hours=12))


def test_gridpoint_missing_layer_is_refused(fixtures_dir):
    doc = _load(fixtures_dir, "detailed_forecast.json")
    del doc["properties"]["maxTemperature"]
    with pytest.raises(NwsParseError, match="maxTemperature"):
        parse_gridpoint(doc, as_of=GRID_AS_OF, max_age=timedelta(hours=12))


def test_gridpoint_impossible_sentinel_is_dropped_and_reported(fixtures_dir):
    doc = copy.deepcopy(_load(fixtures_dir, "detailed_forecast.json"))
    doc["properties"]["temperature"]["values"][1]["value"] = -73.33  # the -100 F sentinel
    grid = parse_gridpoint(doc, as_of=GRID_AS_OF, max_age=timedelta(hours=12))
    layer = grid.layer("temperature")
    assert len(layer.values) == len(doc["properties"]["temperature"]["values"]) - 1
    assert "impossible" in layer.dropped[0]


def test_gridpoint_string_value_is_refused(fixtures_dir):
    doc = _load(fixtures_dir, "detailed_forecast.json")
    doc["properties"]["temperature"]["values"][0]["value"] = "22.7"
    with pytest.raises(NwsParseError, match="'22.7' is a str"):
        parse_gridpoint(doc, as_of=GRID_AS_OF, max_age=timedelta(hours=12))


def test_forecast_si_units_convert_to_fahrenheit(fixtures_dir):
    si = parse_forecast(_load(fixtures_dir, "gridpoints_forecast_si.json"), as_of=FCST_AS_OF,
                        max_age=3 * DAY)
    us = parse_forecast(_load(fixtures_dir, "gridpoints_forecast_us.json"), as_of=FCST_AS_OF,
                        max_age=3 * DAY)
    assert si.periods[0].temp_f == pytest.approx(41.0) == us.periods[0].temp_f


def test_forecast_stale_bundle_is_refused(fixtures_dir):
    with pytest.raises(StaleForecastError):
        parse_forecast(_load(fixtures_dir, "gridpoints_forecast_us.json"), as_of=FCST_AS_OF,
                       max_age=timedelta(hours=12))


def test_observation_metar_t_group_preferred_over_json(fixtures_dir):
    obs = parse_observations(_load(fixtures_dir, "stations_observations.json")).observations[0]
    assert obs.temp_f == pytest.approx(c_to_f(25.6))  # T02560228
    assert obs.json_temp_f == pytest.approx(50.0)  # 10 degC in the edited JSON field


def test_observation_alternate_units_read_as_fahrenheit(fixtures_dir):
    obs = parse_observations(
        _load(fixtures_dir, "stations_observations_alternate_units.json")).observations[0]
    assert obs.json_temp_f == pytest.approx(10.0)


def test_observation_impossible_json_value_is_rejected_with_reason(fixtures_dir):
    result = parse_observations(_load(fixtures_dir, "stations_observations_multiple_unsorted.json"))
    assert len(result.observations) == 1
    assert "impossible" in result.rejected[0]


def test_observations_unsorted_come_back_sorted(fixtures_dir):
    doc = _load(fixtures_dir, "stations_observations_multiple.json")
    doc["features"].reverse()
    result = parse_observations(doc)
    times = [o.timestamp for o in result.observations]
    assert times == sorted(times)


def test_metar_six_hour_max_group_is_exact_fahrenheit(fixtures_dir):
    obs = parse_observation(_load(fixtures_dir, "stations_observations_latest.json"))
    assert obs.max6h_f == pytest.approx(c_to_f(24.4))  # remark 10244
    assert round(obs.max6h_f) == 76


@pytest.mark.parametrize(("metar", "temp_f"), [
    ("KNYC 041751Z 00000KT 10SM CLR M05/M10 A3020", c_to_f(-5)),
    ("KNYC 041751Z 00000KT 10SM CLR 05/M10 A3020 RMK AO2 T10561100 11083", c_to_f(-5.6)),
])
def test_metar_temperature_groups_parse(metar, temp_f):
    assert parse_metar_temperatures(metar)[0] == pytest.approx(temp_f)


def test_running_max_uses_six_hour_group_and_window(fixtures_dir):
    from models.nws import running_max_f

    obs = [parse_observation(_load(fixtures_dir, "stations_observations_latest.json"))]
    ts = obs[0].timestamp
    assert running_max_f(obs, ts, ts + timedelta(minutes=1)) == pytest.approx(c_to_f(24.4))
    assert running_max_f(obs, ts + timedelta(minutes=1), ts + DAY) is None
