"""Forecast archive import, as-of queries, and the `forecast`/`evaluate` commands on real data."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from deployments.cli import app
from models.forecast_archive import ForecastRecord, decompress_payload, ms_from_datetime
from tasks.forecast_archive import import_all, load_view, open_archive, store_forecast
from tasks.weather_eval import TradeIndex, decision_instant, evaluate, load_events

pytestmark = pytest.mark.shared_data

SERIES = "KXHIGHAUS"
SINCE, UNTIL = date(2025, 2, 10), date(2025, 3, 12)
FETCHED = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture(scope="module")
def archive_path(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("archive") / "archive.sqlite"
    engine = open_archive(f"sqlite:///{path}")
    counts = import_all(engine, shared_data, FETCHED)
    engine.dispose()  # closes the last connection: SQLite folds the WAL into the file
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert counts["ndfd"] == 1601
    assert counts["kalshi-settlements"] == 1170
    return path


@pytest.fixture(scope="module")
def subset(shared_data):
    folder = shared_data / "kalshi/weather-events-2024-25"
    events, _settled, _ok = load_events(folder, SERIES)
    chosen = [e for e in events if SINCE <= e.day <= UNTIL]
    return chosen, {SERIES: TradeIndex.from_parquet(folder / f"{SERIES}_trades.parquet")}


def _copy(archive_path, tmp_path, name):
    target = tmp_path / name
    shutil.copy(archive_path, target)
    return open_archive(f"sqlite:///{target}"), target


def _poison(engine, events, shift):
    # +40 °F forecasts for every scored day, issued `shift` after that day's 10:00 decision
    for ev in events:
        t = decision_instant(ev.day, "10:00", "America/Chicago") + shift
        for quantity in ("tmax_f", "hourly_max_f"):
            store_forecast(engine, source="open-meteo", station="KAUS", valid_date=ev.day,
                           quantity=quantity, value=ev.value + 40.0, issued_at=t,
                           fetched_at=t, payload={"poison": True})


def test_archive_ndfd_issue_times_precede_valid_day(archive_path):
    engine = open_archive(f"sqlite:///{archive_path}")
    with Session(engine) as session:
        rows = session.exec(select(ForecastRecord).where(ForecastRecord.source == "ndfd")).all()
    assert len(rows) == 1601
    late = [r for r in rows if r.issue_ts_ms >= ms_from_datetime(
        datetime.fromisoformat(r.valid_date).replace(tzinfo=UTC) + timedelta(hours=5))]
    assert late == []  # all issued before the climate day starts (05Z for New York)
    first = min(rows, key=lambda r: r.valid_date)
    payload = decompress_payload(first.payload_gz)
    assert payload["forecast_issue_time"] == "2022-01-01 00:50:00+00:00"


def test_archive_open_meteo_counted_as_issued_00z(archive_path):
    view = load_view(open_archive(f"sqlite:///{archive_path}"))
    day = date(2025, 3, 1)
    before = view.forecasts_before("KAUS", day, datetime(2025, 3, 1, 0, 0, tzinfo=UTC))
    after = view.forecasts_before("KAUS", day, datetime(2025, 3, 1, 0, 0, 1, tzinfo=UTC))
    assert before == {}
    assert set(after) == {("open-meteo", "tmax_f"), ("open-meteo", "hourly_max_f"),
                          ("open-meteo", "pop_max_pct")}


def test_archive_reimport_is_idempotent(archive_path, shared_data, tmp_path):
    engine, _ = _copy(archive_path, tmp_path, "again.sqlite")
    import_all(engine, shared_data, FETCHED)
    with Session(engine) as session:
        assert len(session.exec(select(ForecastRecord)).all()) == 1601 + 1665


def test_archive_observed_value_hidden_until_known(archive_path):
    view = load_view(open_archive(f"sqlite:///{archive_path}"))
    # CLI for 2018-01-01 came out at 2018-01-02 06:39Z (its product id)
    at_issue = view.observed_before("KNYC", datetime(2018, 1, 2, 6, 39, tzinfo=UTC))
    after = view.observed_before("KNYC", datetime(2018, 1, 2, 6, 40, tzinfo=UTC))
    assert date(2018, 1, 1) not in at_issue
    assert after[date(2018, 1, 1)] == 19


def test_evaluate_ignores_forecasts_issued_at_or_after_decision(archive_path, subset, tmp_path):
    events, trades = subset
    clean = evaluate(events, trades, load_view(open_archive(f"sqlite:///{archive_path}")),
                     ["10:00"])
    assert clean.cards["10:00"]["model"].events >= 15
    late_engine, _ = _copy(archive_path, tmp_path, "late.sqlite")
    _poison(late_engine, events, timedelta(0))
    _poison(late_engine, events, timedelta(hours=3))
    late = evaluate(events, trades, load_view(late_engine), ["10:00"])
    assert late.cards == clean.cards
    # control: the same poison one minute BEFORE the decision does change the model
    early_engine, _ = _copy(archive_path, tmp_path, "early.sqlite")
    _poison(early_engine, events, -timedelta(minutes=1))
    early = evaluate(events, trades, load_view(early_engine), ["10:00"])
    assert early.cards["10:00"]["model"] != clean.cards["10:00"]["model"]
    assert early.cards["10:00"]["market"] == clean.cards["10:00"]["market"]


def _run(args):
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_evaluate_cli_prints_audit_and_json_last_line(archive_path, shared_data, tmp_path):
    _, path = _copy(archive_path, tmp_path, "cli.sqlite")
    code, out = _run(["evaluate", "--data-dir", str(shared_data), "--series", SERIES,
                      "--since", SINCE.isoformat(), "--until", UNTIL.isoformat(),
                      "--decision-time", "10:00", "--decision-time", "16:00",
                      "--archive", str(path)])
    assert code == 0, out
    lines = out.strip().splitlines()
    assert "settlement: 255/255 events reproduced" in lines
    summary = json.loads(lines[-1])
    assert summary["settled_events"] == summary["settlement_reproduced"] == 255
    for hhmm in ("10:00", "16:00"):
        block = summary["decision_times"][hhmm]
        assert block["events_scored"] >= 15
        for who in ("model", "market"):
            assert set(block[who]) >= {"brier", "log_loss"}


def test_evaluate_cli_bad_decision_time_is_refused(shared_data):
    code, out = _run(["evaluate", "--data-dir", str(shared_data), "--decision-time", "25:00"])
    assert code == 1
    assert "25:00" in out


def _event_markets(shared_data, ticker):
    path = shared_data / "kalshi/weather-events-2024-25" / f"{SERIES}_events.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        for line in fh:
            doc = json.loads(line)
            if doc["event"]["event_ticker"] == ticker:
                return doc["markets"]
    raise AssertionError(ticker)


def _forecast(archive_path, markets, tmp_path):
    markets_file = tmp_path / "markets.json"
    markets_file.write_text(json.dumps({"markets": markets}))
    return _run(["forecast", SERIES, "--date", "2025-03-05", "--markets-file", str(markets_file),
                 "--archive", str(archive_path), "--as-of", "2025-03-05T16:00:00+00:00"])


def test_forecast_cli_prints_bracket_table_with_inputs(archive_path, shared_data, tmp_path):
    markets = _event_markets(shared_data, "KXHIGHAUS-25MAR05")
    code, out = _forecast(archive_path, markets, tmp_path)
    assert code == 0, out
    rows = [ln for ln in out.splitlines() if "°" in ln and not ln.startswith("  ")]
    assert len(rows) == len(markets)
    assert sum(float(r[16:23]) for r in rows) == pytest.approx(1.0, abs=0.01)
    assert "open-meteo tmax_f" in out
    assert "issued 2025-03-05T00:00:00+00:00" in out
    assert "EMOS:" in out


def test_forecast_cli_weather_company_rules_stop_the_series(archive_path, shared_data, tmp_path):
    markets = _event_markets(shared_data, "KXHIGHAUS-25MAR05")
    markets[0] = dict(markets[0], rules_primary=(
        "If the highest temperature recorded in Austin, TX as reported by The Weather Company, "
        "is less than 70°, then the market resolves to Yes."))
    code, out = _forecast(archive_path, markets, tmp_path)
    assert code == 2
    assert "ALARM" in out


def test_forecast_cli_gap_in_brackets_gives_no_probabilities(archive_path, shared_data, tmp_path):
    markets = _event_markets(shared_data, "KXHIGHAUS-25MAR05")
    del markets[2]
    code, out = _forecast(archive_path, markets, tmp_path)
    assert code == 2
    assert "partition" in out


def test_forecast_cli_lax_weather_company_series_raises_alarm(archive_path, shared_data, tmp_path):
    markets_file = tmp_path / "markets.json"
    markets_file.write_text(json.dumps({"markets": []}))
    series_file = shared_data / "kalshi/api-2026/kxhiglax-series-current.json"
    code, out = _run(["forecast", "KXHIGHLAX", "--date", "2026-09-17", "--series-file",
                      str(series_file), "--markets-file", str(markets_file),
                      "--archive", str(archive_path)])
    assert code == 2
    assert "ALARM" in out
    assert "The Weather Company" in out
