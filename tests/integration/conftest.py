"""Integration fixtures: a real paper exchange served by uvicorn on 127.0.0.1 for the session.

``paper_exchange`` is shared by every area's integration tests: a temp SQLite file, a real RSA key
registered through the operator API (and a second "counterparty" key), with the recorded KXHIGHNY
event re-opened for trading. Tests that need a book of their own take ``paper_market``, which lists
a fresh market with a unique ticker.
"""

from __future__ import annotations

import itertools
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.server import serve_in_thread
from kalshi.signing import KalshiAuth, generate_private_key, public_key_pem

BALANCE_CENTS = 1_000_000  # $10,000 per test account
_market_ids = itertools.count(1)
# httpx loads certifi for every new Client (~0.1 s); loopback tests share one context instead
SSL_CONTEXT = ssl.create_default_context()


def http(**kwargs: Any) -> httpx.Client:
    """Return an httpx client that reuses the session's SSL context (fast to create)."""
    return httpx.Client(verify=SSL_CONTEXT, **kwargs)


@dataclass(frozen=True)
class PaperExchangeHandle:
    """A running paper exchange and the credentials of two funded accounts."""

    root_url: str
    base_url: str  # .../trade-api/v2
    operator_url: str  # .../operator
    ws_url: str  # ws://.../trade-api/ws/v2
    key_id: str
    private_key: rsa.RSAPrivateKey
    counterparty_key_id: str
    counterparty_private_key: rsa.RSAPrivateKey
    exchange: PaperExchange
    event_tickers: tuple[str, ...]

    def auth(self, counterparty: bool = False) -> KalshiAuth:
        """Return the signing auth of the main (or the counterparty) key."""
        if counterparty:
            return KalshiAuth(self.counterparty_key_id, self.counterparty_private_key)
        return KalshiAuth(self.key_id, self.private_key)

    def client(self, counterparty: bool = False, **kwargs: Any) -> httpx.Client:
        """Return an httpx client on ``base_url`` signing with the chosen key."""
        return http(base_url=self.base_url, auth=self.auth(counterparty), timeout=10, **kwargs)

    def operator(self) -> httpx.Client:
        """Return an httpx client on the operator API."""
        return http(base_url=self.operator_url, timeout=30)


def register_key(operator_url: str, key_id: str, private_key: rsa.RSAPrivateKey,
                 balance_cents: int = BALANCE_CENTS, tier: str = "prestige") -> dict[str, Any]:
    """Register ``private_key``'s public half through the operator API; return the response."""
    with http(timeout=30) as client:
        response = client.post(f"{operator_url}/keys", json={
            "key_id": key_id, "public_key_pem": public_key_pem(private_key).decode(),
            "balance_cents": balance_cents, "tier": tier,
        })
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def add_market(operator_url: str, ticker: str, event_ticker: str, *, hours: float = 24,
               series_ticker: str = "KXPAPERTEST") -> None:
    """List a fresh, open binary market through the operator API."""
    market = {
        "ticker": ticker, "event_ticker": event_ticker, "series_ticker": series_ticker,
        "market_type": "binary", "title": f"Test market {ticker}", "yes_sub_title": "Yes",
        "no_sub_title": "No", "open_time": "2020-01-01T00:00:00Z",
        "close_time": "2099-01-01T00:00:00Z", "rules_primary": "Resolves Yes if the test says so.",
        "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
    }
    event = {"event_ticker": event_ticker, "series_ticker": series_ticker, "title": "Test event",
             "sub_title": "test", "mutually_exclusive": False}
    with http(timeout=30) as client:
        response = client.post(f"{operator_url}/markets", json={
            "definitions": [{"event": event, "markets": [market]}], "reopen": True,
            "reopen_hours": hours,
        })
    assert response.status_code == 201, response.text
    assert response.json()["added"] == [ticker], response.text


@pytest.fixture(scope="session")
def paper_exchange(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path):
    """A live paper exchange on 127.0.0.1 (uvicorn thread, temp SQLite, real RSA keys)."""
    db = tmp_path_factory.mktemp("paper") / "exchange.sqlite"
    exchange = PaperExchange(db, seed=7)
    app = create_app(exchange)
    with serve_in_thread(app) as root:
        operator_url = f"{root}/operator"
        key = generate_private_key()
        counterparty = generate_private_key()
        register_key(operator_url, "test-key", key)
        register_key(operator_url, "counterparty-key", counterparty)
        text = (fixtures_dir / "kalshi_paper" / "KXHIGHNY_event_legacy.jsonl").read_text()
        with http(timeout=30) as client:
            response = client.post(f"{operator_url}/markets", json={"text": text, "reopen": True})
        assert response.status_code == 201, response.text
        handle = PaperExchangeHandle(
            root_url=root,
            base_url=f"{root}/trade-api/v2",
            operator_url=operator_url,
            ws_url=root.replace("http://", "ws://") + "/trade-api/ws/v2",
            key_id="test-key",
            private_key=key,
            counterparty_key_id="counterparty-key",
            counterparty_private_key=counterparty,
            exchange=exchange,
            event_tickers=tuple(response.json()["events"]),
        )
        yield handle
    exchange.close()


@pytest.fixture
def paper_market(paper_exchange: PaperExchangeHandle) -> str:
    """A fresh open market (unique ticker) on the session exchange; returns its ticker."""
    n = next(_market_ids)
    ticker = f"KXPAPERTEST-T{n:04d}-M"
    add_market(paper_exchange.operator_url, ticker, f"KXPAPERTEST-T{n:04d}")
    return ticker
