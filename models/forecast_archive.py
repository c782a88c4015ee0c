"""Table declarations of the forecast archive (SQLModel; sessions are opened in `tasks/`).

Invariant: every stored forecast carries the instant it was issued (`issue_ts_ms`) and fetched
(`fetch_ts_ms`) as integer UTC milliseconds, and every observed value the instant it became
known (`known_ts_ms`), so a backtest can select exactly what was known at a decision time; the
raw payload is kept gzip-compressed next to the extracted value.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "ARCHIVE_TABLES",
    "ForecastRecord",
    "ObservedValue",
    "compress_payload",
    "decompress_payload",
    "ms_from_datetime",
]


def ms_from_datetime(ts: datetime) -> int:
    """Return integer UTC milliseconds of an aware datetime (naive ones are refused)."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"naive datetime {ts.isoformat()} cannot be archived")
    return int(ts.astimezone(UTC).timestamp() * 1000)


def compress_payload(payload: Any) -> bytes:
    """Return the gzip-compressed canonical JSON of a payload."""
    return gzip.compress(json.dumps(payload, sort_keys=True, default=str).encode(), mtime=0)


def decompress_payload(blob: bytes) -> Any:
    """Inverse of `compress_payload`."""
    return json.loads(gzip.decompress(blob))


class ForecastRecord(SQLModel, table=True):
    """One forecast of one quantity for one station and climate day, as issued."""

    __tablename__ = "weather_forecast"
    __table_args__ = (
        UniqueConstraint("source", "station", "valid_date", "quantity", "issue_ts_ms",
                         name="uq_weather_forecast_issue"),
        Index("ix_weather_forecast_lookup", "station", "valid_date", "issue_ts_ms"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str  # "ndfd", "open-meteo", "nws-gridpoint", ...
    station: str  # ICAO id, e.g. KNYC
    valid_date: str  # climate day, ISO date
    quantity: str  # "tmax_f", "hourly_max_f", "pop_max_pct"
    value: float
    issue_ts_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    fetch_ts_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    issue_time_note: str = ""  # how the issue time was established
    payload_gz: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ObservedValue(SQLModel, table=True):
    """One observed daily value (CLI maximum, precipitation) and when it became known."""

    __tablename__ = "weather_observed"
    __table_args__ = (
        UniqueConstraint("source", "station", "valid_date", "quantity",
                         name="uq_weather_observed"),
        Index("ix_weather_observed_lookup", "station", "valid_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str  # "cli", "kalshi-settlement", "ghcnd", "ndfd-file"
    station: str
    valid_date: str
    quantity: str  # "high_f"
    value: int
    known_ts_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    product_id: str = ""


ARCHIVE_TABLES = [ForecastRecord.__table__, ObservedValue.__table__]  # type: ignore[attr-defined]
