"""The NWS client against a real loopback stand-in serving the recorded pynws fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.cli_report import parse_cli
from models.nws import climate_day_hourly_max_f, parse_gridpoint
from tasks.nws import (
    NwsClient,
    NwsForbiddenError,
    NwsGridExpiredError,
    NwsHttpError,
    NwsTransientError,
)
from tasks.nws_standin import StandinState, serve_standin
from tasks.settings import Settings

UA = "eventdesk-tests/0.1 (tests@example.invalid)"
GRID = "/gridpoints/TAE/58,65"


@pytest.fixture
def standin(fixtures_dir):
    state = StandinState(fixtures=fixtures_dir)
    with serve_standin(state) as base_url:
        yield state, base_url


@pytest.fixture
def client(standin, tmp_path):
    _state, base_url = standin
    sleeps: list[float] = []
    c = NwsClient(base_url, UA, tmp_path / "cache", retries=3, backoff_s=0.001,
                  sleep=sleeps.append)
    c.sleeps = sleeps
    yield c
    c.close()


def test_nws_client_points_resolve_and_are_cached(standin, client):
    state, _ = standin
    point, first = client.get_points(30.0, -85.0)
    again, second = client.get_points(30.0, -85.0)
    assert (point.wfo, point.x, point.y) == ("TAE", 58, 65) == (again.wfo, again.x, again.y)
    assert state.hits["/points/30.0000,-85.0000"] == 1
    assert not first.from_cache
    assert second.from_cache


def test_nws_client_sends_user_agent_and_geojson_accept(standin, client):
    state, _ = standin
    client.get_points(30.0, -85.0)
    assert state.user_agents == [UA]


def test_nws_client_gridpoint_revalidates_with_if_modified_since(standin, client):
    state, _ = standin
    point, _ = client.get_points(30.0, -85.0)
    first = client.get_gridpoint_raw(point)
    second = client.get_gridpoint_raw(point)
    assert state.hits[GRID] == 2
    assert state.conditional_hits == 1
    assert second.from_cache
    assert second.payload == first.payload
    grid = parse_gridpoint(second.payload, as_of=datetime(2022, 2, 4, 6, tzinfo=UTC),
                           max_age=timedelta(hours=12))
    assert climate_day_hourly_max_f(grid, datetime(2022, 2, 4).date(), -5) > 60


def test_nws_client_forecast_honours_cache_control(standin, client):
    state, _ = standin
    point, _ = client.get_points(30.0, -85.0)
    as_of = datetime(2019, 10, 13, 19, tzinfo=UTC)
    fc, _ = client.get_forecast(point, hourly=False, as_of=as_of, max_age=timedelta(hours=12))
    client.get_forecast(point, hourly=False, as_of=as_of, max_age=timedelta(hours=12))
    assert fc.periods[0].temp_f == 41.0
    assert state.hits[f"{GRID}/forecast"] == 1


def test_nws_client_forecast_expired_max_age_refetches(fixtures_dir, tmp_path):
    state = StandinState(fixtures=fixtures_dir, forecast_max_age_s=0)
    with serve_standin(state) as base_url, NwsClient(base_url, UA, tmp_path) as client:
        client.get_json(f"{GRID}/forecast")
        client.get_json(f"{GRID}/forecast")
    assert state.hits[f"{GRID}/forecast"] == 2


def test_nws_client_503_then_success_retries_with_backoff(standin, client):
    state, _ = standin
    state.fail(f"{GRID}/forecast/hourly", 503, 500)
    doc = client.get_json(f"{GRID}/forecast/hourly")
    assert doc.payload["properties"]["periods"]
    assert state.hits[f"{GRID}/forecast/hourly"] == 3
    assert len(client.sleeps) == 2
    assert client.sleeps[1] > client.sleeps[0] * 0.9


def test_nws_client_persistent_500_raises_transient_and_caches_nothing(standin, client):
    state, _ = standin
    state.fail("/stations/KNYC/observations", 500, 500, 500, 500)
    with pytest.raises(NwsTransientError, match="gave up after 4 tries"):
        client.get_json("/stations/KNYC/observations")
    # the error was not cached: the next call reaches the server and succeeds
    doc = client.get_json("/stations/KNYC/observations")
    assert doc.payload["features"]
    assert not doc.from_cache
    assert state.hits["/stations/KNYC/observations"] == 5


def test_nws_client_grid_expired_is_not_retried(standin, client):
    state, _ = standin
    state.fail(GRID, 503, title="Forecast Grid Expired")
    point, _ = client.get_points(30.0, -85.0)
    with pytest.raises(NwsGridExpiredError, match="Expired"):
        client.get_gridpoint_raw(point)
    assert state.hits[GRID] == 1


def test_nws_client_missing_user_agent_gets_403_with_explanation(standin, client):
    del client.session.headers["User-Agent"]
    with pytest.raises(NwsForbiddenError, match="User-Agent"):
        client.get_json(f"{GRID}/forecast")


def test_nws_client_user_agent_without_contact_is_refused(tmp_path):
    with pytest.raises(ValueError, match="contact"):
        NwsClient("http://127.0.0.1:9", "eventdesk", tmp_path)


def test_nws_client_unknown_cli_location_is_an_error(standin, client):
    with pytest.raises(NwsTransientError):
        client.get_cli_texts("ZZZ")


def test_nws_client_cli_products_parse(standin, client):
    texts = client.get_cli_texts("NYC")
    report = parse_cli(texts[0])
    assert (report.station_name, report.max_f) == ("CENTRAL PARK NY", 33)


def test_nws_client_404_is_http_error(standin, client):
    with pytest.raises(NwsHttpError) as info:
        client.get_json("/products/NOPE")
    assert info.value.status == 404


def test_settings_nws_base_url_from_environment(monkeypatch):
    monkeypatch.setenv("EVENTDESK_NWS_BASE_URL", "http://127.0.0.1:8999")
    assert Settings().nws_base_url == "http://127.0.0.1:8999"


def test_nws_snapshot_archived_with_update_time_as_issue_time(standin, client, tmp_path):
    from datetime import date

    from models.climate import STATIONS
    from tasks.forecast_archive import load_view, open_archive, store_nws_snapshot

    engine = open_archive(f"sqlite:///{tmp_path / 'archive.sqlite'}")
    point, _ = client.get_points(30.0, -85.0)
    doc = client.get_gridpoint_raw(point)
    fetched = datetime(2022, 2, 4, 6, tzinfo=UTC)
    station = STATIONS["KXHIGHMIA"]  # any UTC-5 station: the fixture grid is Tallahassee's
    problems = store_nws_snapshot(engine, station, doc.payload, fetched,
                                  [date(2022, 2, 4), date(2022, 2, 20)], timedelta(hours=12))
    assert len(problems) == 2  # 2022-02-20 is beyond the grid: both quantities refused
    assert all("2022-02-20" in p for p in problems)
    view = load_view(engine)
    update = datetime(2022, 2, 4, 3, 15, 41, tzinfo=UTC)
    assert view.forecasts_before("KMIA", date(2022, 2, 4), update) == {}
    stored = view.forecasts_before("KMIA", date(2022, 2, 4), update + timedelta(seconds=1))
    assert set(stored) == {("nws-gridpoint", "tmax_f"), ("nws-gridpoint", "hourly_max_f")}


def test_nws_snapshot_stale_grid_stores_nothing(standin, client, tmp_path):
    from datetime import date

    from models.climate import STATIONS
    from tasks.forecast_archive import load_view, open_archive, store_nws_snapshot

    engine = open_archive(f"sqlite:///{tmp_path / 'archive.sqlite'}")
    point, _ = client.get_points(30.0, -85.0)
    doc = client.get_gridpoint_raw(point)
    problems = store_nws_snapshot(engine, STATIONS["KXHIGHMIA"], doc.payload,
                                  datetime(2022, 2, 6, tzinfo=UTC), [date(2022, 2, 6)],
                                  timedelta(hours=12))
    assert len(problems) == 1
    assert "updateTime" in problems[0]
    assert load_view(engine).forecasts_before("KMIA", date(2022, 2, 6),
                                              datetime(2022, 2, 7, tzinfo=UTC)) == {}


def test_record_nws_snapshot_task_reports_stale_recorded_grid(standin, tmp_path, monkeypatch):
    from prefect.logging import disable_run_logger

    from tasks.nws import record_nws_snapshot
    from tasks.settings import load_settings

    _state, base_url = standin
    monkeypatch.setenv("EVENTDESK_NWS_BASE_URL", base_url)
    monkeypatch.setenv("EVENTDESK_NWS_USER_AGENT", UA)
    monkeypatch.setenv("EVENTDESK_DATA_DIR", str(tmp_path))
    load_settings(fresh=True)
    try:
        with disable_run_logger():
            problems = record_nws_snapshot.fn("KXHIGHNY")
    finally:
        monkeypatch.undo()
        load_settings(fresh=True)
    # the recorded fixture grid is from 2022: refused as stale today, nothing stored
    assert len(problems) == 1
    assert "updateTime" in problems[0]
    assert (tmp_path / "forecast_archive.sqlite").exists()
