"""flows/record_forecasts.py on the session Prefect harness against the SIMULATED NWS stand-in
(deployments/nws_sim.py served on 127.0.0.1): every station's forecast lands in the archive with
its issue time, fetch time, source, station and valid date; a station that cannot be fetched is
reported, not dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from deployments.nws_sim import build_app
from flows.record_forecasts import RecordingFailed, record_forecasts
from kalshi.paper.server import serve_in_thread
from models.forecast_archive import ForecastRecord
from tasks.forecast_archive import open_archive
from tasks.settings import load_settings

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def nws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with serve_in_thread(build_app(seed=0)) as url:
        monkeypatch.setenv("EVENTDESK_NWS_BASE_URL", url)
        monkeypatch.setenv("EVENTDESK_DATA_DIR", str(tmp_path))
        load_settings(fresh=True)
        yield tmp_path
    load_settings(fresh=True)


def test_record_forecasts_simulated_nws_stores_every_station_day(nws_env: Path) -> None:
    result = record_forecasts(series=["KXHIGHNY", "KXHIGHCHI"], days_ahead=1)
    assert result["recorded"] == 2
    engine = open_archive(f"sqlite:///{nws_env / 'forecast_archive.sqlite'}")
    with Session(engine) as session:
        rows = list(session.exec(select(ForecastRecord)))
    engine.dispose()
    stations = {r.station for r in rows}
    assert stations == {"KNYC", "KMDW"}
    assert {r.quantity for r in rows} == {"tmax_f", "hourly_max_f"}
    assert all(r.source == "nws-gridpoint" for r in rows)
    assert all(r.issue_ts_ms < r.fetch_ts_ms for r in rows)  # issued 5 min before the fetch
    assert len({(r.station, r.valid_date) for r in rows}) == 4  # today and tomorrow, 2 stations


def test_record_forecasts_unknown_station_reported_and_run_fails(nws_env: Path) -> None:
    with pytest.raises(RecordingFailed, match="KXNOPE"):
        record_forecasts(series=["KXNOPE"])
