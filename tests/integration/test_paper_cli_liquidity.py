"""`eventdesk exchange serve --liquidity replay|mirror` in a subprocess: the driver's options reach
it, it trades, and SIGTERM stops it before the store closes (nothing it applied is lost); and the
same shutdown order in-process, checked against the replayed log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from deployments.cli import app
from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.liquidity import (
    MIRROR_ACCOUNT,
    MM_ACCOUNT,
    REPLAY_ACCOUNT,
    TAKER_ACCOUNT,
    start_liquidity,
)
from kalshi.paper.server import serve_in_thread, stop_liquidity
from models.liquidity import TakerConfig

from ._liquidity_helpers import serve_http, state_of
from .test_liquidity_mirror import MARKET, Source

REPO = Path(__file__).resolve().parents[2]
EVENT_TICKER = "KXHIGHNY-25MAY08"
runner = CliRunner()


@contextmanager
def _serve(tmp_path: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "EVENTDESK_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployments.cli", "exchange", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("paper exchange listening on "):
            proc.kill()
            _out, err = proc.communicate(timeout=10)
            raise AssertionError(f"serve did not start: {line!r} {err[-3000:]}")
        yield line.split()[4], proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _wait(predicate: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _sigterm(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=40)
    return err


def _reopened(db: Path) -> PaperExchange:
    return PaperExchange(db, advance_interval_s=0)


def test_cli_serve_replay_recorded_event_trades_and_sigterm_keeps_them(tmp_path: Path,
                                                                       shared_data: Path) -> None:
    data_dir = shared_data / "kalshi" / "weather-events-2024-25"
    with _serve(tmp_path, "--liquidity", "replay", "--data-dir", str(data_dir),
                "--event-ticker", EVENT_TICKER, "--speed", "20000") as (url, proc):
        base = f"{url}/trade-api/v2"

        def traded() -> int:
            trades = httpx.get(f"{base}/markets/trades", params={"limit": 1000}).json()["trades"]
            return len(trades) >= 5 and len(trades)

        markets = _wait(lambda: httpx.get(f"{base}/markets", params={
            "event_ticker": EVENT_TICKER}).json()["markets"], "the replayed event's markets")
        seen = _wait(traded, "replayed trades")
        err = _sigterm(proc)

    assert proc.returncode in (0, -signal.SIGTERM), err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    # the driver was stopped before the store closed, not cut off by it
    assert "could not commit" not in err, err[-3000:]
    assert {m["event_ticker"] for m in markets} == {EVENT_TICKER}
    exchange = _reopened(tmp_path / "paper.sqlite")
    try:
        orders = exchange.engine.orders(REPLAY_ACCOUNT)
        trades = [t for ticker in exchange.market_tickers() for t in exchange.engine.trades(ticker)]
    finally:
        exchange.close()
    assert orders  # the replay account's recorded takers were committed
    assert len(trades) >= seen  # every trade served before SIGTERM survived the shutdown


def test_cli_serve_mirror_copies_loopback_book_of_recorded_format(tmp_path: Path,
                                                                  fixtures_dir: Path) -> None:
    book = json.loads((fixtures_dir / "kalshi_orderbooks" / "orderbook_fp_current.json")
                      .read_text())
    source = Source(book)
    with serve_http(source.app()) as source_url, \
            _serve(tmp_path, "--liquidity", "mirror", "--mirror-url",
                   f"{source_url}/trade-api/v2", "--tickers", MARKET.ticker) as (url, proc):

        def mirrored() -> Any:
            response = httpx.get(f"{url}/trade-api/v2/markets/{MARKET.ticker}/orderbook")
            if response.status_code != 200:
                return None
            levels = response.json()["orderbook_fp"]
            return levels if levels.get("yes_dollars") and levels.get("no_dollars") else None

        levels = _wait(mirrored, "the mirrored book")
        err = _sigterm(proc)

    assert "Traceback" not in err, err[-3000:]
    # whole contracts only (13.50 -> 13), levels as the source shows them
    assert levels["yes_dollars"] == [["0.0100", "200.00"], ["0.3900", "12.00"],
                                     ["0.4100", "5.00"], ["0.4200", "13.00"]]
    assert levels["no_dollars"] == [["0.0100", "100.00"], ["0.5500", "3.00"],
                                    ["0.5600", "17.00"]]
    exchange = _reopened(tmp_path / "paper.sqlite")
    try:
        resting = exchange.engine.orders(MIRROR_ACCOUNT, status="resting")
    finally:
        exchange.close()
    assert len(resting) == 7


@pytest.mark.parametrize(("args", "needle"), [
    (["--liquidity", "replay"], "--data-dir"),
    (["--liquidity", "mirror", "--tickers", "KXA"], "--mirror-url"),
    (["--liquidity", "synthetic", "--tickers", "KXA"], "--tickers"),
    (["--liquidity", "none", "--seed", "3"], "--seed"),
])
def test_cli_serve_liquidity_missing_or_foreign_option_refused(args: list[str],
                                                               needle: str) -> None:
    result = runner.invoke(app, ["exchange", "serve", "--port", "0", *args])
    assert result.exit_code == 2
    assert needle in result.stderr


def test_cli_serve_replay_missing_data_dir_exits_with_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTDESK_DATA_DIR", str(tmp_path))
    result = runner.invoke(app, ["exchange", "serve", "--port", "0", "--liquidity", "replay",
                                 "--db", str(tmp_path / "paper.sqlite"),
                                 "--data-dir", str(tmp_path / "nope"), "--event-ticker", "KXX"])
    assert result.exit_code == 2
    assert "data_dir" in result.stderr
    assert (tmp_path / "paper.sqlite").is_file()  # it opened, then shut down cleanly


def test_server_shutdown_stops_liquidity_before_store_closes_state_equals_log(
        tmp_path: Path) -> None:
    db = tmp_path / "paper.sqlite"
    exchange = PaperExchange(db, synchronous="NORMAL")
    handles: list[Any] = []

    async def before_stop() -> None:
        for handle in handles:
            await stop_liquidity(handle)

    app = create_app(exchange, close_on_shutdown=True, before_stop=before_stop)
    with serve_in_thread(app):
        async def start() -> Any:
            return start_liquidity(exchange, "synthetic", seed=5, interval_s=0.002,
                                   series=["KXHIGHNY"],
                                   taker=TakerConfig(prob_per_step=0.9, max_size=3))

        assert exchange._loop is not None
        handle = asyncio.run_coroutine_threadsafe(start(), exchange._loop).result(10)
        handles.append(handle)
        _wait(lambda: handle.stats.steps >= 30, "liquidity steps")
    # the block exit ran the lifespan shutdown: liquidity, then ticker, then the store

    assert not handle.running
    assert not [e for e in handle.stats.errors if e.startswith("store")]
    accounts = [MM_ACCOUNT, TAKER_ACCOUNT]
    reopened = _reopened(db)
    try:
        # everything the engine applied in memory is in the log: nothing lost at shutdown
        assert state_of(reopened, accounts) == state_of(exchange, accounts)
    finally:
        reopened.close()
