"""deployments/nws_sim.py: simulated forecasts consistent with the synthetic markets, labelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from deployments.nws_sim import build_app, gridpoint_payload, main
from kalshi.paper.server import serve_in_thread
from models.climate import STATIONS, climate_day_of
from models.nws import (
    climate_day_hourly_max_f,
    grid_max_temperature_f,
    parse_gridpoint,
    parse_points,
)
from models.synthetic import forecast_at, seeded_event, series_info

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)


def test_nws_sim_gridpoint_daily_max_equals_synthetic_forecast() -> None:
    station = STATIONS["KXHIGHCHI"]
    payload = gridpoint_payload(station, NOW, seed=3)
    grid = parse_gridpoint(payload, as_of=NOW, max_age=timedelta(hours=12))
    info = series_info("KXHIGHCHI")
    today = climate_day_of(NOW, info.standard_offset_hours)
    for day in (today, today + timedelta(days=1)):
        expected = forecast_at(seeded_event(3, info, day, open_not_after=NOW), NOW).mean_f
        high = grid_max_temperature_f(grid, day, station.standard_offset_hours)
        assert high == pytest.approx(expected, abs=0.01)
        hourly = climate_day_hourly_max_f(grid, day, station.standard_offset_hours)
        assert hourly == pytest.approx(expected, abs=0.01)
    assert payload["simulated"] is True
    assert payload["properties"]["simulated"] is True
    assert "SIMULATED" in payload["label"]


def test_nws_sim_other_seed_gives_other_weather() -> None:
    station = STATIONS["KXHIGHNY"]
    a = gridpoint_payload(station, NOW, seed=0)["properties"]["maxTemperature"]["values"]
    b = gridpoint_payload(station, NOW, seed=1)["properties"]["maxTemperature"]["values"]
    assert a != b


def test_nws_sim_http_points_then_gridpoint_labelled_simulated() -> None:
    station = STATIONS["KXHIGHMIA"]
    with serve_in_thread(build_app(seed=0)) as url, httpx.Client(base_url=url) as client:
        index = client.get("/")
        points = client.get(f"/points/{station.lat:.4f},{station.lon:.4f}")
        point = parse_points(points.json())
        grid = client.get(f"/gridpoints/{point.wfo}/{point.x},{point.y}")
        forecast = client.get(f"/gridpoints/{point.wfo}/{point.x},{point.y}/forecast")
        unknown = client.get("/points/0.0000,0.0000")
    assert index.json()["simulated"] is True
    for response in (points, grid, forecast, unknown):
        assert response.headers["x-eventdesk-simulated"] == "true"
        assert response.json()["simulated"] is True
    assert point.wfo == station.wfo
    assert grid.status_code == 200
    assert "SIMULATED" in forecast.json()["properties"]["periods"][0]["shortForecast"]
    assert unknown.status_code == 404


def test_nws_sim_main_without_simulated_flag_refuses() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--port", "0"])
    assert exc.value.code == 2
