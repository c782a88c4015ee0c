"""Helpers of the safety tests: a paper exchange with a movable clock, fresh accounts, a webhook
receiver, and a desk (ledger + recorded client + settings in the environment) per test."""

from __future__ import annotations

import itertools
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi.client import KalshiClient, order_request
from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange, wall_clock_ms
from kalshi.paper.server import serve_in_thread
from kalshi.signing import KalshiAuth, generate_private_key, private_key_pem
from models.edge import DesiredOrder
from models.risk import RiskLimits
from tasks.db import ledger_engine, upgrade_ledger
from tasks.gateway import GatewayReport, Want, apply_orders, sync_exchange
from tasks.safety import safety_client
from tasks.settings import load_settings
from tests.integration.conftest import add_market, http, register_key

_ids = itertools.count(1)


class MovableClock:
    """The exchange's clock: wall time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def __call__(self) -> int:
        return wall_clock_ms() + self.offset_ms

    def now(self) -> datetime:
        """The exchange's time as an aware datetime."""
        return datetime.fromtimestamp(self() / 1000, tz=UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.offset_ms += int(seconds * 1000)


class WebhookReceiver:
    """A Slack-compatible webhook on 127.0.0.1 that keeps every JSON body it receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def kinds(self) -> list[str]:
        """The alert kinds received so far."""
        return [str(b.get("kind")) for b in self.bodies]

    def close(self) -> None:
        """Stop the server."""
        self.server.shutdown()
        self.server.server_close()


@dataclass
class SafetyExchange:
    """A running paper exchange with a movable clock."""

    root_url: str
    exchange: PaperExchange
    clock: MovableClock

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/trade-api/v2"

    @property
    def operator_url(self) -> str:
        return f"{self.root_url}/operator"

    def operator(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the operator API and return the JSON answer."""
        with http(timeout=30) as client:
            response = client.post(f"{self.operator_url}{path}", json=body)
        assert response.status_code < 300, response.text
        result: dict[str, Any] = response.json()
        return result

    def market(self) -> str:
        """List a fresh open market; return its ticker."""
        n = next(_ids)
        ticker = f"KXSAFETY-S{n:04d}-M"
        add_market(self.operator_url, ticker, f"KXSAFETY-S{n:04d}", series_ticker="KXSAFETY")
        return ticker


@dataclass
class Desk:
    """One test's trading desk: a fresh funded account, its own ledger, a webhook receiver."""

    venue: SafetyExchange
    key_id: str
    key: rsa.RSAPrivateKey
    other_key_id: str
    other_key: rsa.RSAPrivateKey
    ledger_url: str
    webhook: WebhookReceiver
    clients: list[KalshiClient] = field(default_factory=list)

    @property
    def engine(self) -> Any:
        return _engine(self.ledger_url)

    def client(self) -> KalshiClient:
        """Our client, recording every call's outcome in the ledger (like the guard's)."""
        client = safety_client(self.venue.base_url, KalshiAuth(self.key_id, self.key),
                               self.engine, max_retries=0, now=self.venue.clock.now)
        self.clients.append(client)
        return client

    def unreachable(self) -> KalshiClient:
        """Our recorded client pointed at a closed port: the exchange link is down."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        client = safety_client(f"http://127.0.0.1:{port}/trade-api/v2",
                               KalshiAuth(self.key_id, self.key), self.engine, max_retries=0,
                               timeout_s=1.0, now=self.venue.clock.now)
        self.clients.append(client)
        return client

    def counterparty(self) -> KalshiClient:
        """The other side's client (no recording)."""
        client = KalshiClient(self.venue.base_url, KalshiAuth(self.other_key_id, self.other_key),
                              max_retries=0)
        self.clients.append(client)
        return client

    def resting(self) -> list[Any]:
        """Our orders resting at the exchange now."""
        with self.client() as client:
            return [o for o in client.iter_orders() if o.status == "resting"]

    def trade(self, wants: list[tuple[str, str, int, int]], *, as_of: datetime | None = None,
              ttl_s: int = 900, equity_cents: int | None = None) -> GatewayReport:
        """A trading run through the gateway: (ticker, side, price_cents, count) resting orders."""
        as_of = as_of or self.venue.clock.now()
        desired = [Want(DesiredOrder(t, side, price, count, "good_till_canceled",  # type: ignore[arg-type]
                                     None, 5, False), t.rsplit("-", 1)[0], "weather", 100_000)
                   for t, side, price, count in wants]
        with self.client() as client:
            snapshot = sync_exchange(client, self.engine, as_of=as_of, resolve_after_s=0)
            balance = client.get_balance()
            equity = equity_cents if equity_cents is not None else balance.balance_cents
            return apply_orders(client, self.engine, desired,
                                managed_tickers=sorted({w.order.market_ticker for w in desired}),
                                snapshot=snapshot, strategy="safety-test",
                                slot=f"s{next(_ids)}", as_of=as_of, equity_cents=equity,
                                limits=RiskLimits(), ttl_s=ttl_s)

    def sync(self) -> None:
        """Book exchange fills into the ledger the way a trading run's first step does."""
        with self.client() as client:
            sync_exchange(client, self.engine, as_of=self.venue.clock.now(), resolve_after_s=0)

    def take(self, ticker: str, *, side: str, price_cents: int, count: int) -> GatewayReport:
        """The counterparty rests the other side; a trading run then takes it (gateway order)."""
        other_book = "ask" if side == "yes" else "bid"
        yes_price = price_cents if side == "yes" else 100 - price_cents
        with self.counterparty() as client:
            client.create_order(order_request(ticker, other_book, count, yes_price,  # type: ignore[arg-type]
                                              client_order_id=f"cp-{next(_ids)}"))
        return self.trade([(ticker, side, price_cents, count)])

    def fill_resting(self, ticker: str, *, yes_price_cents: int, count: int) -> None:
        """The counterparty takes our resting YES bid at `yes_price_cents`."""
        with self.counterparty() as client:
            client.create_order(order_request(ticker, "ask", count, yes_price_cents,
                                              client_order_id=f"cp-{next(_ids)}",
                                              time_in_force="immediate_or_cancel"))

    def close(self) -> None:
        for client in self.clients:
            client.close()


_ENGINES: dict[str, Any] = {}
_KEYS = (generate_private_key(), generate_private_key())


def _engine(url: str) -> Any:
    if url not in _ENGINES:
        upgrade_ledger(url)
        _ENGINES[url] = ledger_engine(url)
    return _ENGINES[url]


@pytest.fixture(scope="module")
def safety_venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafetyExchange]:
    """A paper exchange of this module with a movable clock (signatures accept any skew)."""
    clock = MovableClock()
    db = tmp_path_factory.mktemp("safety") / "exchange.sqlite"
    exchange = PaperExchange(db, clock=clock, max_skew_ms=10**12, seed=11,
                             advance_interval_s=0.05)
    with serve_in_thread(create_app(exchange)) as root:
        yield SafetyExchange(root, exchange, clock)
    exchange.close()


@pytest.fixture
def desk(safety_venue: SafetyExchange, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Desk]:
    """A fresh $1,000 account and counterparty, a fresh ledger, settings in the environment."""
    n = next(_ids)
    key, other = _KEYS  # fresh accounts under new key ids; RSA generation is the slow part
    register_key(safety_venue.operator_url, f"safety-{n}", key, balance_cents=100_000)
    register_key(safety_venue.operator_url, f"safety-cp-{n}", other, balance_cents=10_000_000)
    webhook = WebhookReceiver()
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.setenv("EVENTDESK_KALSHI_BASE_URL", f"{safety_venue.base_url}")
    monkeypatch.setenv("EVENTDESK_KALSHI_KEY_ID", f"safety-{n}")
    monkeypatch.setenv("EVENTDESK_KALSHI_PRIVATE_KEY", private_key_pem(key).decode())
    monkeypatch.setenv("EVENTDESK_DATABASE_URL", url)
    monkeypatch.setenv("EVENTDESK_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.delenv("EVENTDESK_KALSHI_PRIVATE_KEY_PATH", raising=False)
    load_settings(fresh=True)
    result = Desk(safety_venue, f"safety-{n}", key, f"safety-cp-{n}", other, url, webhook)
    yield result
    result.close()
    webhook.close()
    monkeypatch.undo()
    load_settings(fresh=True)


def safety_cli() -> typer.Typer:
    """The safety commands (kill, resume, status) on a root app, invoked by name."""
    from deployments.cli_safety import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # a group, so that commands are invoked by name
        return

    return app
