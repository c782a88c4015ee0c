"""Backtest forecast inputs: only forecasts issued before the decision instant are used."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from models.brackets import Bracket
from models.climate import STATIONS
from models.forecast_archive import ms_from_datetime
from tasks.backtest import forecast_decisions
from tasks.forecast_archive import ArchiveView, ForecastPoint
from tasks.weather_eval import SettledEvent, decision_instant

STATION = STATIONS["KXHIGHNY"]
TARGET = date(2025, 3, 20)
HIGHS = [40 + (i * 7) % 13 for i in range(90)]  # a deterministic, varied history


def _day(i: int) -> date:
    return TARGET - timedelta(days=len(HIGHS) - i)


def archive(target_issue: datetime) -> ArchiveView:
    forecasts = []
    observed = []
    for i, high in enumerate(HIGHS):
        day = _day(i)
        issued = datetime.combine(day - timedelta(days=1), time(1), UTC)  # evening before
        forecasts.append(("KNYC", ForecastPoint("ndfd", "tmax_f", day, high + 0.5 * (i % 3 - 1),
                                                ms_from_datetime(issued))))
        known = datetime.combine(day + timedelta(days=1), time(13), UTC)
        observed.append(("kalshi-settlement", "KNYC", day, high, ms_from_datetime(known)))
    forecasts.append(("KNYC", ForecastPoint("ndfd", "tmax_f", TARGET, 47.0,
                                            ms_from_datetime(target_issue))))
    return ArchiveView(forecasts, observed)


def event() -> SettledEvent:
    brackets = (Bracket(-10_000 + 44, "KXHIGHNY-25MAR20-T45", None, 44),
                Bracket(45, "KXHIGHNY-25MAR20-B45.5", 45, 46),
                Bracket(47, "KXHIGHNY-25MAR20-B47.5", 47, 48),
                Bracket(49, "KXHIGHNY-25MAR20-T48", 49, None))
    return SettledEvent("KXHIGHNY", "KXHIGHNY-25MAR20", TARGET, brackets, 2, 47)


def test_forecast_decisions_forecast_issued_before_decision_used() -> None:
    decision = decision_instant(TARGET, "10:00", STATION.time_zone)
    inputs = forecast_decisions(archive(decision - timedelta(minutes=1)), [event()], "10:00")
    (d,) = inputs.decisions
    assert d.decision_ts_ms == ms_from_datetime(decision)
    probs = dict(d.probabilities)
    assert abs(sum(probs.values()) - 1) < 1e-9
    assert max(probs, key=probs.__getitem__) == "KXHIGHNY-25MAR20-B47.5"
    assert inputs.skipped == ()


def test_forecast_decisions_issue_shifted_past_decision_removes_it() -> None:
    decision = decision_instant(TARGET, "10:00", STATION.time_zone)
    for shift in (timedelta(0), timedelta(minutes=1), timedelta(hours=5)):
        inputs = forecast_decisions(archive(decision + shift), [event()], "10:00")
        assert inputs.decisions == ()
        assert [(i.kind, i.count, i.detail) for i in inputs.skipped] == [
            ("no_forecast", 1, "no forecast issued before the decision time")]


def test_backtest_deployment_name_and_parameters() -> None:
    from flows.backtest import backtest_deployment

    deployment = backtest_deployment("paper", "/data", "/reports")
    assert deployment.name == "backtest-paper"
    assert deployment.parameters == {"data_dir": "/data", "out": "/reports",
                                     "strategy": "weather", "folds": 5}
