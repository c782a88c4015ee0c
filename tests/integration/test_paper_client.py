"""Our KalshiClient (kalshi/client.py) against the real paper exchange over loopback."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kalshi.client import KalshiClient, RetryPolicy
from kalshi.errors import AuthError, NotFound, OrderRejected
from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.server import serve_in_thread
from kalshi.signing import KalshiAuth, generate_private_key
from kalshi.wire import AmendOrderV2Request, DecreaseOrderV2Request
from tests.integration.conftest import PaperExchangeHandle, add_market, http, register_key


def _client(paper_exchange: PaperExchangeHandle, counterparty: bool = False) -> KalshiClient:
    return KalshiClient(paper_exchange.base_url, paper_exchange.auth(counterparty),
                        backoff=RetryPolicy(max_retries=2), sleep=lambda _s: None)


def test_client_reads_recorded_event_markets_and_book_from_paper(
    paper_exchange: PaperExchangeHandle,
) -> None:
    event_ticker = paper_exchange.event_tickers[0]
    with _client(paper_exchange) as client:
        event = client.get_event(event_ticker, with_nested_markets=True)
        markets = client.get_markets(event_ticker=event_ticker)
        status = client.get_exchange_status()
        book = client.get_orderbook(markets[0].ticker)
    assert event.event_ticker == event_ticker
    assert len(markets) == 6
    assert all(m.status == "active" for m in markets)
    assert status is not None
    assert book.yes == ()


def test_client_order_lifecycle_against_paper_matches_exchange_state(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with _client(paper_exchange) as client, _client(paper_exchange, True) as other:
        ack = client.place_order(paper_market, "bid", 10, 47, client_order_id="cl-1")
        again = client.place_order(paper_market, "bid", 10, 47, client_order_id="cl-1")
        hit = other.place_order(paper_market, "ask", 4, 40, client_order_id="cl-2",
                                time_in_force="immediate_or_cancel")
        amended = client.amend_order(ack.order_id, AmendOrderV2Request(
            ticker=paper_market, side="bid", price="0.4600", count="9"))
        decreased = client.decrease_order(amended.order_id,
                                          DecreaseOrderV2Request(reduce_by="2"))
        fills = list(other.iter_fills(ticker=paper_market))
        positions = list(other.iter_positions(ticker=paper_market))
        client.cancel_order(amended.order_id)
        order = client.get_order(amended.order_id)
        balance = client.get_balance()
        with pytest.raises(NotFound):
            client.get_order("o-999999")
        with pytest.raises(OrderRejected):
            client.place_order(paper_market, "bid", 100_000_000, 99, client_order_id="cl-3")
    assert again.order_id == ack.order_id  # the 409 resolved to the existing order, no duplicate
    assert again.resolved_by_lookup
    assert hit.fill_count == Decimal(4)
    assert hit.average_fill_price == Decimal("0.47")
    assert decreased.remaining_count == Decimal(3)
    assert [f.count for f in fills] == [Decimal(4)]
    assert positions[0].position == Decimal(-4)
    assert order.status == "canceled"
    assert balance.balance_cents == paper_exchange.exchange.engine.balance_cents("test-key")


def test_client_with_unregistered_key_gets_auth_error(
    paper_exchange: PaperExchangeHandle,
) -> None:
    with KalshiClient(paper_exchange.base_url, KalshiAuth("stranger", generate_private_key()),
                      sleep=lambda _s: None) as client, pytest.raises(AuthError):
        client.get_balance()


def test_client_lost_ack_resolves_by_lookup_without_duplicate(tmp_path: Path) -> None:
    key = generate_private_key()
    exchange = PaperExchange(tmp_path / "lost-ack.sqlite", seed=3)
    with serve_in_thread(create_app(exchange)) as url:
        register_key(f"{url}/operator", "k", key)
        add_market(f"{url}/operator", "KXLOST-1-M", "KXLOST-1")
        with http() as operator:
            operator.post(f"{url}/operator/faults", json={"drop_after_accept": 1.0})
        with KalshiClient(f"{url}/trade-api/v2", KalshiAuth("k", key),
                          backoff=RetryPolicy(max_retries=2), sleep=lambda _s: None) as client:
            ack = client.place_order("KXLOST-1-M", "bid", 3, 20, client_order_id="lost-1")
            with http() as operator:
                operator.post(f"{url}/operator/faults", json={"clear": True})
            orders = list(client.iter_orders(ticker="KXLOST-1-M"))
    exchange.close()
    assert ack.resolved_by_lookup
    assert [o.client_order_id for o in orders] == ["lost-1"]
