"""Loading recorded trades (Parquet, dictionary-encoded) and markets (JSONL) for the backtest."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from models.forecast_archive import ms_from_datetime
from tasks.backtest import EVENTS_FOLDER, load_markets, load_tape


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def write_series(root: Path) -> Path:
    folder = root / EVENTS_FOLDER
    folder.mkdir(parents=True)
    trades = pd.DataFrame({
        "trade_id": ["a", "b", "b", "c", "d", "e"],
        "ticker": ["KXHIGHNY-25MAR03-B40.5", "KXHIGHNY-25MAR03-T40", "KXHIGHNY-25MAR03-T40",
                   "KXHIGHNY-25MAR03-B40.5", "KXHIGHNY-25MAR03-B40.5", "KXHIGHNY-25FEB01-T40"],
        "count": [3, 4, 4, 5, 6, 1],
        "created_time": [_ts("2025-03-02T15:00"), _ts("2025-03-02T16:00"),
                         _ts("2025-03-02T16:00"), _ts("2025-03-02T15:30"),
                         _ts("2025-03-03T17:00"), _ts("2025-02-01T12:00")],
        "yes_price": [40, 55, 55, 41, 99, 50],
        "no_price": [60, 45, 45, 59, 1, 50],
        "taker_side": ["yes", "no", "no", "no", "yes", "no"],
    })
    trades.to_parquet(folder / "KXHIGHNY_trades.parquet")
    doc = {"event": {"event_ticker": "KXHIGHNY-25MAR03", "category": "Climate and Weather"},
           "markets": [
               {"ticker": "KXHIGHNY-25MAR03-B40.5", "event_ticker": "KXHIGHNY-25MAR03",
                "open_time": "2025-03-02T15:00:00Z", "close_time": "2025-03-04T04:59:00Z",
                "expected_expiration_time": "2025-03-04T15:00:00Z", "result": "yes"},
               {"ticker": "KXHIGHNY-25MAR03-T40", "event_ticker": "KXHIGHNY-25MAR03",
                "open_time": "2025-03-02T15:00:00Z", "close_time": "2025-03-04T04:59:00Z",
                "result": ""}]}
    with gzip.open(folder / "KXHIGHNY_events.jsonl.gz", "wt") as fh:
        fh.write(json.dumps(doc) + "\n")
    return folder


def test_load_tape_parquet_duplicates_unsorted_and_window(tmp_path: Path) -> None:
    write_series(tmp_path)
    tape = load_tape(tmp_path, ["KXHIGHNY"], since=date(2025, 3, 3), until=date(2025, 3, 3))
    kinds = {i.kind: i.count for i in tape.issues}
    assert kinds == {"duplicate_trade": 1, "unsorted_trade": 1, "gap": 1}  # B40.5: 25 h
    assert len(tape) == 4  # the February trade is outside the window (since - 2 days)
    assert tape.last_before("KXHIGHNY-25MAR03-B40.5", ms_from_datetime(
        datetime(2025, 3, 2, 16, tzinfo=UTC))) == (
        ms_from_datetime(datetime(2025, 3, 2, 15, 30, tzinfo=UTC)), 41)
    assert tape.volume_between("KXHIGHNY-25MAR03-B40.5", 0, 2**62) == 14
    assert tape.taker_yes.tolist() == [True, False, False, True]


def test_load_markets_result_and_settle_time(tmp_path: Path) -> None:
    write_series(tmp_path)
    settled, open_ = load_markets(tmp_path, ["KXHIGHNY"])
    assert (settled.result, open_.result) == ("yes", "")
    assert settled.settle_ts_ms == ms_from_datetime(datetime(2025, 3, 4, 15, tzinfo=UTC))
    assert open_.settle_ts_ms == open_.close_ts_ms  # no expected expiration: the close time
    assert settled.series_ticker == "KXHIGHNY"
