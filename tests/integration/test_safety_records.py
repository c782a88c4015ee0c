"""API-call and link records written by RecordingTransport (real SQLite ledger, fake venue)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from kalshi.client import KalshiClient, RetryPolicy
from kalshi.errors import KalshiError
from tasks.db import ledger_engine, upgrade_ledger
from tasks.safety import RecordingTransport, api_call_counts, link_observation

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade_ledger(url)
    engine = ledger_engine(url)
    yield engine
    engine.dispose()


def test_recording_transport_counts_5xx_429_and_network_errors_and_outages(engine) -> None:
    # Arrange: a venue answering 200, 200, 503, 429, then refusing connections, then 200 again
    answers = iter([200, 200, 503, 429, "down", 200])
    now = {"t": T0}

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer == "down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(answer, json={"balance": 100, "portfolio_value": 0})

    transport = RecordingTransport(engine, httpx.MockTransport(handler), now=lambda: now["t"])
    client = KalshiClient("http://venue.invalid/trade-api/v2", transport=transport,
                          backoff=RetryPolicy(max_retries=0))

    # Act
    outcomes = []
    for step in range(6):
        now["t"] = T0 + timedelta(seconds=step * (70 if step == 5 else 1))
        try:
            client.get_balance()
            outcomes.append("ok")
        except KalshiError as exc:
            outcomes.append(type(exc).__name__)

    # Assert
    assert outcomes == ["ok", "ok", "ServerError", "RateLimited", "NetworkError", "ok"]
    counts = api_call_counts(engine, now=now["t"], window_s=600)
    assert (counts.calls, counts.errors) == (6, 3)
    link = link_observation(engine, up=True)
    assert link.down_since is None
    # the 503 at t0+2s began an outage that the 429 (an answer) ended; the longest one kept
    # runs from the refused connection at t0+4s to the answer at t0+350s
    assert link.restored_after_s == 346.0
    assert api_call_counts(engine, now=T0 + timedelta(hours=1), window_s=300).calls == 0
