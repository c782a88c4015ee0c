"""Forecast archive: import the real forecast/observation history, store snapshots, query as-of.

Invariant: the only way a backtest reads the archive is `ArchiveView.forecasts_before` and
`ArchiveView.observed_before`, which return forecasts issued strictly before, and observations
known strictly before, the decision instant. Issue times are the honest ones: NDFD's recorded
`forecast_issue_time`; Open-Meteo's historical forecasts are built from runs on the valid day, so
they count as issued at 00Z of that day; a CLI value is known at its product's issue time, or,
when no product time is recorded, 8 h after its climate day ends (after the morning report).
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, create_engine, select

from models.brackets import event_settlement_value
from models.climate import STATIONS, Station, climate_day_bounds_utc
from models.forecast_archive import (
    ARCHIVE_TABLES,
    ForecastRecord,
    ObservedValue,
    compress_payload,
    ms_from_datetime,
)
from models.nws import (
    NwsParseError,
    climate_day_hourly_max_f,
    grid_max_temperature_f,
    parse_gridpoint,
)

__all__ = [
    "ArchiveView",
    "ForecastPoint",
    "event_day",
    "import_all",
    "import_kalshi_settlements",
    "import_ndfd",
    "import_observations",
    "import_open_meteo",
    "load_view",
    "open_archive",
    "store_forecast",
    "store_nws_snapshot",
]

KNOWN_AFTER_DAY_END = timedelta(hours=8)
SERIES_STATION = {s.series: s for s in STATIONS.values()}
_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_EVENT_DATE = re.compile(r"-(\d{2})([A-Z]{3})(\d{2})$")


def open_archive(url: str) -> Engine:
    """Open (and create) the archive database; SQLite gets WAL and a busy timeout."""
    engine = create_engine(url)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
    SQLModel.metadata.create_all(engine, tables=ARCHIVE_TABLES)
    return engine


def _insert_ignore(engine: Engine, model: type[SQLModel], rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    table = model.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        for i in range(0, len(rows), 500):
            conn.execute(sqlite_insert(table).prefix_with("OR IGNORE"), rows[i:i + 500])
    return len(rows)


def store_forecast(engine: Engine, *, source: str, station: str, valid_date: date, quantity: str,
                   value: float, issued_at: datetime, fetched_at: datetime, payload: Any,
                   note: str = "") -> None:
    """Store one forecast (idempotent on source/station/day/quantity/issue time)."""
    _insert_ignore(engine, ForecastRecord, [dict(
        source=source, station=station, valid_date=valid_date.isoformat(), quantity=quantity,
        value=float(value), issue_ts_ms=ms_from_datetime(issued_at),
        fetch_ts_ms=ms_from_datetime(fetched_at), issue_time_note=note,
        payload_gz=compress_payload(payload))])


def store_nws_snapshot(engine: Engine, station: Station, payload: Any, fetched_at: datetime,
                       days: Iterable[date], max_age: timedelta) -> list[str]:
    """Archive a fetched raw gridpoint: NDFD daytime max and hourly max per climate day.

    The issue time is the bundle's `updateTime`; a stale or malformed bundle stores nothing.
    Returns the reasons for every value not stored (empty when all were stored).
    """
    try:
        grid = parse_gridpoint(payload, as_of=fetched_at, max_age=max_age)
    except NwsParseError as exc:
        return [f"{station.icao}: gridpoint refused: {exc.reason}"]
    problems = []
    for day in days:
        for quantity, extract in (("tmax_f", grid_max_temperature_f),
                                  ("hourly_max_f", climate_day_hourly_max_f)):
            try:
                value = extract(grid, day, station.standard_offset_hours)
            except NwsParseError as exc:
                problems.append(f"{station.icao} {day} {quantity}: {exc.reason}")
                continue
            store_forecast(engine, source="nws-gridpoint", station=station.icao, valid_date=day,
                           quantity=quantity, value=value, issued_at=grid.update_time,
                           fetched_at=fetched_at, payload=payload, note="gridpoint updateTime")
    return problems


def import_ndfd(engine: Engine, path: Path, fetched_at: datetime) -> int:
    """Import the NDFD Central Park file: forecasts with their recorded issue times."""
    forecasts, observed = [], []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            valid = date.fromisoformat(row["date"])
            issued = datetime.fromisoformat(row["forecast_issue_time"])
            forecasts.append(dict(
                source="ndfd", station="KNYC", valid_date=valid.isoformat(), quantity="tmax_f",
                value=float(row["nws_forecast_high_f"]), issue_ts_ms=ms_from_datetime(issued),
                fetch_ts_ms=ms_from_datetime(fetched_at), issue_time_note="forecast_issue_time",
                payload_gz=compress_payload(row)))
            if row.get("actual_high"):
                observed.append(_observed("ndfd-file", "KNYC", valid, float(row["actual_high"]),
                                          _known_after_day(valid, -5)))
    _insert_ignore(engine, ObservedValue, observed)
    return _insert_ignore(engine, ForecastRecord, forecasts)


def _known_after_day(day: date, offset: int) -> int:
    return ms_from_datetime(climate_day_bounds_utc(day, offset)[1] + KNOWN_AFTER_DAY_END)


def _observed(source: str, station: str, day: date, value: float, known_ms: int,
              product_id: str = "") -> dict[str, Any]:
    if value != int(value):
        raise ValueError(f"{source} {station} {day}: high {value} is not a whole degree")
    return dict(source=source, station=station, valid_date=day.isoformat(), quantity="high_f",
                value=int(value), known_ts_ms=known_ms, product_id=product_id)


def import_open_meteo(engine: Engine, folder: Path, fetched_at: datetime) -> int:
    """Import Open-Meteo daily max and the hourly max over the climate day, issued 00Z."""
    rows = []
    for daily_path in sorted(folder.glob("*_daily.csv")):
        series = daily_path.name.split("_")[0]
        station = SERIES_STATION[series]
        hourly: dict[datetime, float] = {}
        with (folder / f"{series}_hourly.csv").open(newline="") as fh:
            for row in csv.DictReader(fh):
                # timestamps carry no zone: read as UTC, Open-Meteo's default zone
                ts = datetime.fromisoformat(row["time"]).replace(tzinfo=UTC)
                hourly[ts] = float(row["temperature_2m"])
        with daily_path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                valid = date.fromisoformat(row["time"])
                issued = datetime(valid.year, valid.month, valid.day, tzinfo=UTC)
                note = "open-meteo historical forecast: runs on the valid day, counted as 00Z"
                base = dict(source="open-meteo", station=station.icao,
                            valid_date=valid.isoformat(), issue_ts_ms=ms_from_datetime(issued),
                            fetch_ts_ms=ms_from_datetime(fetched_at), issue_time_note=note)
                rows.append(base | dict(quantity="tmax_f", value=float(row["temperature_2m_max"]),
                                        payload_gz=compress_payload(row)))
                if row.get("precipitation_probability_max"):
                    rows.append(base | dict(quantity="pop_max_pct",
                                            value=float(row["precipitation_probability_max"]),
                                            payload_gz=compress_payload(row)))
                # hours of this run (valid day, UTC) that fall in the climate day
                start, end = climate_day_bounds_utc(valid, station.standard_offset_hours)
                run_end = issued + timedelta(days=1)
                hours = {t: v for t, v in hourly.items() if start <= t < min(end, run_end)}
                if len(hours) >= 12:
                    rows.append(base | dict(quantity="hourly_max_f", value=max(hours.values()),
                                            payload_gz=compress_payload(
                                                {t.isoformat(): v for t, v in hours.items()})))
    return _insert_ignore(engine, ForecastRecord, rows)


_PRODUCT_TIME = re.compile(r"^(\d{12})-")


def import_observations(engine: Engine, folder: Path) -> int:
    """Import CLI highs for Central Park (known at the product's time) and GHCN-Daily highs."""
    rows = []
    cli_path = folder / "cli-knyc/knyc_cli_daily_2018_2026.csv"
    with cli_path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["actual_high"] or row["actual_high"] == "MM":
                continue
            day = date.fromisoformat(row["date"])
            m = _PRODUCT_TIME.match(row.get("cli_product_id") or "")
            known = (ms_from_datetime(datetime.strptime(m.group(1), "%Y%m%d%H%M").replace(
                tzinfo=UTC)) if m else _known_after_day(day, -5))
            rows.append(_observed("cli", "KNYC", day, float(row["actual_high"]), known,
                                  row.get("cli_product_id") or ""))
    ghcn_station = {"USW00094728": ("KNYC", -5), "USW00012839": ("KMIA", -5)}  # O'Hare: not MDW
    with (folder / "ghcnd/nws_settlement_ground_truth_OFFICIAL.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            sid = row["station_id"].split(":")[-1]
            if sid not in ghcn_station:
                continue
            icao, offset = ghcn_station[sid]
            day = date.fromisoformat(row["date"])
            # GHCN-Daily is published a day or more later: known two days after the day ends
            known = ms_from_datetime(climate_day_bounds_utc(day, offset)[1] + timedelta(days=2))
            rows.append(_observed("ghcnd", icao, day, float(row["nws_settlement_temp"]), known))
    return _insert_ignore(engine, ObservedValue, rows)


def event_day(event_ticker: str) -> date:
    """Return the climate day of an event ticker such as KXHIGHNY-25FEB09."""
    m = _EVENT_DATE.search(event_ticker)
    if m is None or m.group(2) not in _MONTHS:
        raise ValueError(f"event_ticker={event_ticker!r} has no YYMONDD date")
    return date(2000 + int(m.group(1)), _MONTHS[m.group(2)], int(m.group(3)))


def _events(folder: Path, series: str) -> Iterator[dict[str, Any]]:
    with gzip.open(folder / f"{series}_events.jsonl.gz", "rt") as fh:
        for line in fh:
            yield json.loads(line)


def import_kalshi_settlements(engine: Engine, folder: Path) -> int:
    """Import settled Kalshi values as observed highs (known after the morning report)."""
    rows = []
    for path in sorted(folder.glob("*_events.jsonl.gz")):
        series = path.name.split("_")[0]
        station = SERIES_STATION[series]
        for doc in _events(folder, series):
            value = event_settlement_value(doc["markets"])
            if value is None:
                continue
            day = event_day(doc["event"]["event_ticker"])
            rows.append(_observed("kalshi-settlement", station.icao, day, value.value,
                                  _known_after_day(day, station.standard_offset_hours),
                                  doc["event"]["event_ticker"]))
    return _insert_ignore(engine, ObservedValue, rows)


def import_all(engine: Engine, data_dir: Path, fetched_at: datetime) -> dict[str, int]:
    """Import every real history the shared data directory holds."""
    return {
        "ndfd": import_ndfd(
            engine, data_dir / "forecasts/ndfd-knyc/daily_forecast_error_targets.csv", fetched_at),
        "open-meteo": import_open_meteo(engine, data_dir / "forecasts/open-meteo", fetched_at),
        "observations": import_observations(engine, data_dir / "observations"),
        "kalshi-settlements": import_kalshi_settlements(
            engine, data_dir / "kalshi/weather-events-2024-25"),
    }


@dataclass(frozen=True)
class ForecastPoint:
    """The value of one archived forecast (no payload), as the model consumes it."""

    source: str
    quantity: str
    valid_date: date
    value: float
    issue_ts_ms: int


_OBS_PRIORITY = {"cli": 0, "kalshi-settlement": 1, "ndfd-file": 2, "ghcnd": 3}


class ArchiveView:
    """An in-memory, as-of view of the archive; the backtest's only door to it."""

    def __init__(self, forecasts: Iterable[tuple[str, ForecastPoint]],
                 observed: Iterable[tuple[str, str, date, int, int]]) -> None:
        self._forecasts: dict[tuple[str, date], list[ForecastPoint]] = defaultdict(list)
        for station, point in forecasts:
            self._forecasts[(station, point.valid_date)].append(point)
        self._observed: dict[str, list[tuple[int, date, int, int]]] = defaultdict(list)
        for source, station, day, value, known_ms in observed:
            self._observed[station].append((known_ms, day, value, _OBS_PRIORITY.get(source, 9)))
        for rows in self._observed.values():
            rows.sort()

    def forecasts_before(self, station: str, valid_date: date,
                         decision: datetime) -> dict[tuple[str, str], ForecastPoint]:
        """Latest forecast per (source, quantity) for the day, issued strictly before `decision`."""
        cutoff = ms_from_datetime(decision)
        latest: dict[tuple[str, str], ForecastPoint] = {}
        for p in self._forecasts.get((station, valid_date), ()):
            if p.issue_ts_ms < cutoff:
                key = (p.source, p.quantity)
                if key not in latest or p.issue_ts_ms > latest[key].issue_ts_ms:
                    latest[key] = p
        return latest

    def observed_before(self, station: str, decision: datetime) -> dict[date, int]:
        """Observed highs known strictly before `decision` (best source per day)."""
        cutoff = ms_from_datetime(decision)
        best: dict[date, tuple[int, int]] = {}
        for known_ms, day, value, priority in self._observed.get(station, ()):
            if known_ms >= cutoff:
                break
            if day not in best or priority < best[day][0]:
                best[day] = (priority, value)
        return {day: value for day, (_p, value) in best.items()}


def load_view(engine: Engine) -> ArchiveView:
    """Read the archive (values only, payloads stay in the database) into an `ArchiveView`."""
    with Session(engine) as session:
        forecasts = [(r.station, ForecastPoint(r.source, r.quantity,
                                               date.fromisoformat(r.valid_date), r.value,
                                               r.issue_ts_ms))
                     for r in session.exec(select(ForecastRecord))]
        observed = [(r.source, r.station, date.fromisoformat(r.valid_date), r.value, r.known_ts_ms)
                    for r in session.exec(select(ObservedValue))]
    return ArchiveView(forecasts, observed)
