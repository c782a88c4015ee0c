"""Injected faults: latency, 5xx, 429 and acknowledgements lost after the order was accepted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.server import serve_in_thread
from kalshi.signing import KalshiAuth, generate_private_key
from tests.integration.conftest import add_market, http, register_key

TICKER = "KXFAULT-26JAN01-B50"
_KEY = generate_private_key()


@dataclass(frozen=True)
class Venue:
    url: str
    exchange: PaperExchange

    def client(self, **kwargs: object) -> httpx.Client:
        return http(base_url=f"{self.url}/trade-api/v2", auth=KalshiAuth("fault-key", _KEY),
                    **kwargs)

    def faults(self, **settings: object) -> httpx.Response:
        with http() as client:
            return client.post(f"{self.url}/operator/faults", json=settings)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Venue]:
    exchange = PaperExchange(tmp_path / "faults.sqlite", seed=1)
    with serve_in_thread(create_app(exchange)) as url:
        register_key(f"{url}/operator", "fault-key", _KEY)
        add_market(f"{url}/operator", TICKER, "KXFAULT-26JAN01", series_ticker="KXFAULT")
        yield Venue(url, exchange)
    exchange.close()


def _order(cid: str) -> dict[str, str]:
    return {"ticker": TICKER, "side": "bid", "count": "1", "price": "0.3000",
            "time_in_force": "good_till_canceled", "self_trade_prevention_type": "maker",
            "client_order_id": cid}


def test_drop_after_accept_client_sees_broken_response_but_order_exists(venue: Venue) -> None:
    assert venue.faults(drop_after_accept=1.0).status_code == 200
    with venue.client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/portfolio/events/orders", json=_order("lost-ack-1"))
        rejected = client.post("/portfolio/events/orders", json={**_order("x"), "count": "0"})
        orders = client.get("/portfolio/orders").json()["orders"]
    assert rejected.status_code == 400  # refusals are never dropped: nothing was accepted
    assert [o["client_order_id"] for o in orders] == ["lost-ack-1"]
    assert orders[0]["status"] == "resting"


def test_error_rate_one_returns_503_without_touching_state(venue: Venue) -> None:
    venue.faults(error_rate=1.0)
    with venue.client() as client:
        response = client.post("/portfolio/events/orders", json=_order("e-1"))
    venue.faults(clear=True)
    with venue.client() as client:
        orders = client.get("/portfolio/orders").json()["orders"]
    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert orders == []


def test_rate_limit_rate_one_returns_kalshi_429_body(venue: Venue) -> None:
    venue.faults(rate_limit_rate=1.0)
    with venue.client() as client:
        response = client.get("/portfolio/balance")
    assert response.status_code == 429
    assert response.json() == {"error": "too many requests"}
    assert "retry-after" not in response.headers


def test_latency_delays_every_kalshi_response_but_not_the_operator_api(venue: Venue) -> None:
    venue.faults(latency_ms=1000)
    with venue.client() as client:
        started = time.perf_counter()
        client.get("/exchange/status")
        slow = time.perf_counter() - started
    started = time.perf_counter()
    cleared = venue.faults(clear=True)
    fast = time.perf_counter() - started
    assert slow >= 1.0
    assert fast < 1.0  # no injected second on the operator API
    assert cleared.json()["latency_ms"] == 0


def test_faults_persist_across_restart_and_bad_values_are_refused(venue: Venue,
                                                                  tmp_path: Path) -> None:
    accepted = venue.faults(ws_drop_rate=0.25, seq_gap_rate=0.5)
    refused = venue.faults(error_rate=1.5)
    unknown = venue.faults(explode=True)
    reopened = PaperExchange(tmp_path / "faults.sqlite")
    try:
        persisted = reopened.faults
    finally:
        reopened.close()
    assert accepted.json()["ws_drop_rate"] == 0.25
    assert refused.status_code == 400
    assert "error_rate" in refused.json()["message"]
    assert unknown.status_code == 400
    assert (persisted.ws_drop_rate, persisted.seq_gap_rate) == (0.25, 0.5)
    assert venue.exchange.faults.error_rate == 0.0
