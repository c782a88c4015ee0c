"""The buffered API-call recorder against real SQLite ledgers: counts add up across threads, a
flush is one transaction, link changes are written before the call returns, nothing is lost on
close, on a failed write or at interpreter exit."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from kalshi.client import AsyncKalshiClient, KalshiClient, RetryPolicy
from kalshi.errors import KalshiError
from models.ledger import Heartbeat
from tasks.api_calls import (
    API_BUCKET_PREFIX,
    AsyncRecordingTransport,
    CallRecorder,
    RecordingTransport,
    api_call_counts,
    flush_api_calls,
    link_observation,
    note_link,
    recorder_for,
)
from tasks.db import ledger_engine, read_session, upgrade_ledger

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "ledger.sqlite"
    upgrade_ledger(f"sqlite:///{path}")  # migrate once; each test copies the file
    return path


@pytest.fixture
def url(template: Path, tmp_path: Path) -> str:
    target = tmp_path / "ledger.sqlite"
    shutil.copy(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def engine(url: str):
    engine = ledger_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def recorders():
    made: list[CallRecorder] = []

    def make(engine, **kwargs) -> CallRecorder:
        recorder = CallRecorder(engine, **kwargs)
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        recorder.close()


def _written(engine) -> tuple[int, int]:
    # what the ledger holds, read without flushing anything first
    calls = errors = 0
    with read_session(engine) as session:
        for row in session.exec(select(Heartbeat).where(
                col(Heartbeat.component).startswith(API_BUCKET_PREFIX))):
            counts = json.loads(row.detail or "{}")
            calls, errors = calls + counts["calls"], errors + counts["errors"]
    return calls, errors


def _link_rows(engine) -> dict[str, int]:
    with read_session(engine) as session:
        return {h.component: h.ts_ms for h in session.exec(select(Heartbeat).where(
            col(Heartbeat.component).startswith("link:")))}


def test_call_recorder_counts_from_many_threads_add_up_after_flush(engine, recorders) -> None:
    # Arrange: 8 threads x 250 answered calls, every 4th a 503 and every 10th a 429
    recorder = recorders(engine, max_age_s=600)
    statuses = [503 if i % 4 == 0 else 429 if i % 10 == 9 else 200 for i in range(250)]
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for i, status in enumerate(statuses):
            recorder.record(status, as_of=T0 + timedelta(seconds=(thread * 7 + i) % 170))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]

    # Act
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buffered = recorder.pending
    written_before = _written(engine)
    recorder.flush()

    # Assert: nothing was written while buffering; after one flush every call is in the ledger
    expected_errors = 8 * sum(1 for s in statuses if s != 200)
    assert written_before == (0, 0)
    assert (buffered.calls, buffered.errors) == (2000, expected_errors)
    assert _written(engine) == (2000, expected_errors)
    counts = api_call_counts(engine, now=T0 + timedelta(seconds=170), window_s=600)
    assert (counts.calls, counts.errors) == (2000, expected_errors)
    assert recorder.pending.calls == 0


def test_call_recorder_flush_of_three_minutes_is_one_transaction(engine, recorders) -> None:
    recorder = recorders(engine, max_age_s=600)
    for second in range(0, 180, 3):
        recorder.record(200 if second % 2 else 500, as_of=T0 + timedelta(seconds=second))
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))

    wrote = recorder.flush()

    assert wrote is True
    assert len(commits) == 1
    with read_session(engine) as session:
        buckets = [h.component for h in session.exec(select(Heartbeat).where(
            col(Heartbeat.component).startswith(API_BUCKET_PREFIX)))]
    assert len(buckets) == 3
    assert _written(engine) == (60, 30)
    assert recorder.flush() is False  # nothing left: no second transaction
    assert len(commits) == 1


def test_call_recorder_link_down_and_back_written_before_call_returns(engine, recorders) -> None:
    recorder = recorders(engine, max_age_s=600)
    recorder.record(200, as_of=T0)                              # first answer, no outage: buffered
    recorder.record(503, as_of=T0 + timedelta(seconds=1))       # an answer: the link stays up
    assert _link_rows(engine) == {}
    assert _written(engine) == (0, 0)

    recorder.record(None, as_of=T0 + timedelta(seconds=2))      # no response: link down, now
    assert _link_rows(engine) == {"link:down-since": int((T0 + timedelta(seconds=2))
                                                          .timestamp() * 1000)}
    assert _written(engine) == (3, 2)                           # the buffer went with it
    recorder.record(None, as_of=T0 + timedelta(seconds=3))      # still down: buffered only
    assert _written(engine) == (3, 2)

    recorder.record(429, as_of=T0 + timedelta(seconds=75))      # an answer: the link is back
    rows = _link_rows(engine)
    assert "link:down-since" not in rows
    assert "link:outage" in rows
    assert _written(engine) == (5, 4)
    link = link_observation(engine, up=True)
    assert link.down_since is None
    assert link.restored_after_s == 73.0


def test_call_recorder_first_answer_ends_outage_another_process_recorded(engine,
                                                                        recorders) -> None:
    # Arrange: the guard (another process) saw the link down at t0+10s
    note_link(engine, up=False, as_of=T0 + timedelta(seconds=10))
    recorder = recorders(engine, max_age_s=600)

    # Act 1: an answer older than that outage does not end it
    recorder.record(200, as_of=T0)
    assert link_observation(engine, up=True).down_since == T0 + timedelta(seconds=10)

    # Act 2: a later answer ends it at the next flush
    recorder.record(200, as_of=T0 + timedelta(seconds=40))
    recorder.flush()

    # Assert
    link = link_observation(engine, up=True)
    assert link.down_since is None
    assert link.restored_after_s == 30.0


def test_call_recorder_close_writes_everything_buffered(engine, recorders) -> None:
    recorder = recorders(engine, max_age_s=600)
    for i in range(37):
        recorder.record(502 if i == 5 else 200, as_of=T0 + timedelta(seconds=i))
    assert _written(engine) == (0, 0)

    recorder.close()

    assert _written(engine) == (37, 1)
    assert recorder.pending.calls == 0


def test_call_recorder_failed_write_keeps_counts_and_strict_flush_raises(tmp_path,
                                                                        recorders) -> None:
    # Arrange: a ledger file whose schema does not exist yet
    url = f"sqlite:///{tmp_path / 'later.sqlite'}"
    engine = ledger_engine(url)
    recorder = recorders(engine, max_age_s=600)
    for i in range(4):
        recorder.record(200 if i else 503, as_of=T0 + timedelta(seconds=i))

    # Act / Assert: the write fails, the counts stay
    with pytest.raises(OperationalError, match="heartbeats"):
        recorder.flush()
    assert (recorder.pending.calls, recorder.pending.errors) == (4, 1)
    recorder.record(None, as_of=T0 + timedelta(seconds=5))  # link down: its write fails, logged
    assert (recorder.pending.calls, recorder.pending.errors) == (5, 2)

    upgrade_ledger(url)
    recorder.flush()
    assert _written(engine) == (5, 2)
    assert link_observation(engine, up=False).down_since == T0 + timedelta(seconds=5)
    engine.dispose()


def test_call_recorder_idle_buffer_written_after_max_age(engine, recorders) -> None:
    recorder = recorders(engine, max_age_s=0.2)
    recorder.record(200, as_of=T0)
    recorder.record(500, as_of=T0)

    deadline = time.monotonic() + 10
    while _written(engine) != (2, 1):
        assert time.monotonic() < deadline, "buffer not flushed by its timer"
        time.sleep(0.05)

    assert recorder.pending.calls == 0


def test_recorder_for_same_ledger_url_is_one_buffer_flushed_by_readers(url, engine) -> None:
    other = ledger_engine(url)  # another engine object on the same ledger (another module's)
    try:
        shared = recorder_for(engine)
        assert recorder_for(other) is shared
        transport = RecordingTransport(other, httpx.MockTransport(
            lambda request: httpx.Response(200, json={"balance": 1, "portfolio_value": 0})),
            now=lambda: T0)
        client = KalshiClient("http://venue.invalid/trade-api/v2", transport=transport,
                              backoff=RetryPolicy(max_retries=0))
        for _ in range(3):
            client.get_balance()
        assert _written(engine) == (0, 0)  # buffered

        counts = api_call_counts(engine, now=T0, window_s=300)  # a reader flushes first

        assert (counts.calls, counts.errors) == (3, 0)
        assert flush_api_calls(engine) is False
        client.get_balance()
        client.close()  # closing the client writes its counts
        assert _written(engine) == (4, 0)
    finally:
        other.dispose()


def test_async_recording_transport_counts_link_down_at_once_and_flushes_on_close(
        engine, recorders) -> None:
    recorder = recorders(engine, max_age_s=600)
    answers = iter([200, 503, "down", 200])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer == "down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(answer, json={"balance": 1, "portfolio_value": 0})

    now = {"t": T0}
    links: list[dict[str, int]] = []

    async def run() -> list[str]:
        transport = AsyncRecordingTransport(engine, httpx.MockTransport(handler),
                                            now=lambda: now["t"], recorder=recorder)
        outcomes = []
        async with AsyncKalshiClient("http://venue.invalid/trade-api/v2", transport=transport,
                                     backoff=RetryPolicy(max_retries=0)) as client:
            for step in range(4):
                now["t"] = T0 + timedelta(seconds=step * 30)
                try:
                    await client.get_balance()
                    outcomes.append("ok")
                except KalshiError as exc:
                    outcomes.append(type(exc).__name__)
                links.append(_link_rows(engine))
        return outcomes

    outcomes = asyncio.run(run())

    assert outcomes == ["ok", "ServerError", "NetworkError", "ok"]
    assert [sorted(r) for r in links] == [[], [], ["link:down-since"], ["link:outage"]]
    assert _written(engine) == (4, 2)  # written with the link changes, nothing left to close
    assert link_observation(engine, up=True).restored_after_s == 30.0


def test_recorder_counts_buffered_at_normal_exit_are_written(url, engine) -> None:
    # a separate interpreter counts 25 calls and exits without flushing or closing anything
    script = (
        "from datetime import UTC, datetime\n"
        "from tasks.api_calls import recorder_for\n"
        "from tasks.db import ledger_engine\n"
        f"recorder = recorder_for(ledger_engine({url!r}))\n"
        "now = datetime.now(UTC)\n"
        "for i in range(25):\n"
        "    recorder.record(503 if i < 2 else 200, as_of=now)\n"
        "assert recorder.pending.calls == 25\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert _written(engine) == (25, 2)
