"""Archive table helpers: UTC milliseconds and compressed payloads round-trip exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from models.forecast_archive import compress_payload, decompress_payload, ms_from_datetime


def test_ms_from_datetime_offsets_give_same_instant():
    utc = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)
    est = utc.astimezone(timezone(timedelta(hours=-5)))
    assert ms_from_datetime(utc) == ms_from_datetime(est) == 1_741_186_800_000


def test_ms_from_datetime_naive_is_refused():
    with pytest.raises(ValueError, match="naive"):
        ms_from_datetime(datetime(2025, 3, 5, 15, 0))


def test_payload_compression_round_trips():
    payload = {"properties": {"updateTime": "2022-02-04T03:15:41+00:00", "values": [1.5, None]}}
    blob = compress_payload(payload)
    assert decompress_payload(blob) == payload
    assert compress_payload(payload) == blob  # deterministic (mtime fixed)
