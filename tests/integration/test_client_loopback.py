"""KalshiClient against a real HTTP server on loopback that verifies our RSA-PSS signatures.

Covers pagination, backoff on 429 without Retry-After, retry only where safe, each error class,
the 409 -> lookup path and "outcome unknown after acceptance -> lookup, no duplicate".
"""

from __future__ import annotations

import asyncio
import random
import socket
from decimal import Decimal

import pytest

from kalshi.client import AsyncKalshiClient, KalshiClient, RetryPolicy, order_request
from kalshi.errors import (
    AuthError,
    NetworkError,
    NotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
)
from kalshi.signing import KalshiAuth, generate_private_key
from tests.integration.fakevenue import FakeVenue, make_market, serve

TICKER = "KXHIGHNY-26JUN02-T80"


@pytest.fixture(scope="module")
def private_key():
    return generate_private_key()


@pytest.fixture(scope="module")
def venue_url(private_key):
    venue = FakeVenue(public_key=private_key.public_key(), key_id="key-1")
    with serve(venue) as url:
        yield venue, url


@pytest.fixture
def venue(venue_url):
    venue, _ = venue_url
    venue.reset()
    venue.markets.extend(make_market(f"KXHIGHNY-26JUN02-B{i:02d}") for i in range(25))
    venue.markets.append(make_market(TICKER))
    return venue


class Sleeps(list):
    """A sleep that records instead of waiting, so backoff tests take no wall time."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def client(venue_url, private_key, sleeps):
    _, url = venue_url
    with KalshiClient(url, KalshiAuth("key-1", private_key), timeout=2.0, max_retries=3,
                      sleep=sleeps, rng=random.Random(7)) as c:
        yield c


def _request(cid: str, count: int = 10, price_cents: int = 56):
    return order_request(TICKER, "bid", count, price_cents, client_order_id=cid)


def test_client_every_request_signed_verifies_on_server(venue, client):
    client.get_exchange_status()
    client.get_balance()
    client.create_order(_request("sig-1"))
    assert venue.bad_signatures == 0
    assert venue.requests_to("POST", "/portfolio/events/orders") == 1


def test_client_wrong_key_gets_auth_error(venue, venue_url, sleeps):
    _, url = venue_url
    with KalshiClient(url, KalshiAuth("key-1", generate_private_key(1024)),
                      sleep=sleeps) as other, pytest.raises(AuthError) as info:
        other.get_balance()
    assert info.value.status == 401
    assert sleeps == []  # auth failures are not retried
    assert venue.bad_signatures == 1


def test_client_unsigned_portfolio_read_gets_auth_error(venue, venue_url):
    _, url = venue_url
    with KalshiClient(url) as anonymous, pytest.raises(AuthError):
        anonymous.get_balance()


def test_iter_markets_three_pages_yields_all_in_order(venue, client):
    tickers = [m.ticker for m in client.iter_markets(series_ticker="KXHIGHNY")]
    assert tickers == [m["ticker"] for m in venue.markets]
    assert venue.requests_to("GET", "/markets") == 3
    cursors = [q for m, p, q in venue.log if p.endswith("/markets")]
    assert cursors == ["series_ticker=KXHIGHNY", "series_ticker=KXHIGHNY&cursor=10",
                       "series_ticker=KXHIGHNY&cursor=20"]


def test_get_market_429_twice_backs_off_then_succeeds(venue, client, sleeps):
    venue.fail("GET", f"/markets/{TICKER}", status=429, body={"error": "too many requests"},
               times=2)
    market = client.get_market(TICKER)
    assert market.yes_bid_cents == 41
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.25
    assert 0 <= sleeps[1] <= 0.5


def test_get_market_429_beyond_retries_raises_rate_limited(venue, client, sleeps):
    venue.fail("GET", f"/markets/{TICKER}", status=429, body={"error": "too many requests"},
               times=10)
    with pytest.raises(RateLimited):
        client.get_market(TICKER)
    assert len(sleeps) == 3
    assert venue.requests_to("GET", f"/markets/{TICKER}") == 4


def test_get_market_unknown_ticker_raises_not_found(venue, client, sleeps):
    with pytest.raises(NotFound) as info:
        client.get_market("NOPE-1")
    assert info.value.status == 404
    assert sleeps == []


def test_create_order_business_reject_raises_order_rejected_with_code(venue, client, sleeps):
    bad = order_request("NOPE-1", "bid", 1, 50, client_order_id="rej-1")
    with pytest.raises(OrderRejected) as info:
        client.create_order(bad)
    assert info.value.code == "market_not_found"
    assert sleeps == []
    assert venue.orders == {}


def test_create_order_plain_success_returns_ack(venue, client):
    ack = client.create_order(_request("ok-1", count=3))
    assert ack.remaining_count == Decimal(3)
    assert not ack.resolved_by_lookup
    (stored,) = venue.orders.values()
    assert stored["client_order_id"] == "ok-1"
    assert stored["yes_price_dollars"] == "0.5600"


def test_create_order_duplicate_409_resolves_to_existing_order(venue, client):
    first = client.create_order(_request("dup-1"))
    again = client.create_order(_request("dup-1"))
    assert again.resolved_by_lookup
    assert again.order_id == first.order_id
    assert len(venue.orders) == 1
    assert venue.requests_to("POST", "/portfolio/events/orders") == 2


def test_create_order_connection_dropped_after_accept_finds_order_no_duplicate(venue, client):
    venue.fail("POST", "/portfolio/events/orders", "drop")
    ack = client.create_order(_request("drop-1"))
    assert ack.resolved_by_lookup
    assert len(venue.orders) == 1
    assert venue.requests_to("POST", "/portfolio/events/orders") == 1  # never resent


def test_create_order_timeout_after_accept_finds_order_no_duplicate(venue, venue_url,
                                                                     private_key, sleeps):
    _, url = venue_url
    venue.fail("POST", "/portfolio/events/orders", "stall", seconds=1.0)
    with KalshiClient(url, KalshiAuth("key-1", private_key), timeout=0.3, sleep=sleeps) as c:
        ack = c.create_order(_request("slow-1"))
    assert ack.resolved_by_lookup
    assert [o["client_order_id"] for o in venue.orders.values()] == ["slow-1"]


def test_create_order_500_after_accept_finds_order_no_duplicate(venue, client):
    venue.fail("POST", "/portfolio/events/orders", "after_status", status=500)
    ack = client.create_order(_request("five-1"))
    assert ack.resolved_by_lookup
    assert len(venue.orders) == 1
    assert venue.requests_to("POST", "/portfolio/events/orders") == 1


def test_create_order_500_before_accept_lookup_absent_resends_once(venue, client, sleeps):
    venue.fail("POST", "/portfolio/events/orders", "status", status=503)
    ack = client.create_order(_request("resend-1"))
    assert not ack.resolved_by_lookup
    assert len(venue.orders) == 1
    assert venue.requests_to("POST", "/portfolio/events/orders") == 2
    assert venue.requests_to("GET", "/portfolio/orders") == 1  # looked up before resending
    assert len(sleeps) == 1


def test_create_order_429_is_retried_without_lookup(venue, client, sleeps):
    venue.fail("POST", "/portfolio/events/orders", status=429, body={"error": "too many"})
    client.create_order(_request("rl-1"))
    assert len(venue.orders) == 1
    assert len(sleeps) == 1
    assert venue.requests_to("GET", "/portfolio/orders") == 0


def test_cancel_order_500_is_retried_idempotently(venue, client, sleeps):
    ack = client.create_order(_request("c-1"))
    venue.fail("DELETE", f"/portfolio/events/orders/{ack.order_id}", status=500)
    result = client.cancel_order(ack.order_id)
    assert result.reduced_by == Decimal(10)
    assert len(sleeps) == 1


def test_cancel_all_orders_204_returns_none(venue, client):
    client.create_order(_request("all-1"))
    assert client.cancel_all_orders() is None
    assert [o["status"] for o in venue.orders.values()] == ["canceled"]


def test_iter_orders_and_find_order_by_client_id(venue, client):
    venue.page_size = 2
    for i in range(5):
        client.create_order(_request(f"f-{i}"))
    assert [o.client_order_id for o in client.iter_orders(ticker=TICKER)] == [
        f"f-{i}" for i in range(5)]
    found = client.find_order(TICKER, "f-4")
    assert found is not None
    assert found.yes_price_cents == 56
    assert found.book_side == "bid"
    assert client.find_order(TICKER, "absent") is None


def test_orderbook_balance_positions_parse_over_loopback(venue, client):
    book = client.get_orderbook(TICKER)
    assert book.best_yes_bid == Decimal("0.41")
    assert book.best_yes_ask == Decimal("0.43")
    assert client.get_balance().balance_cents == 123456
    markets, events = client.get_positions()
    assert markets[0].position_contracts == -3
    assert events == []


def test_order_group_create_and_trigger(venue, client):
    group_id = client.create_order_group(50)
    assert group_id == "og-1"
    client.trigger_order_group(group_id)
    assert venue.requests_to("PUT", "/portfolio/order_groups/og-1/trigger") == 1


def test_client_connection_refused_raises_network_error_after_retries(sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with KalshiClient(f"http://127.0.0.1:{port}/trade-api/v2", sleep=sleeps,
                      max_retries=2) as c, pytest.raises(NetworkError) as info:
        c.get_exchange_status()
    assert not isinstance(info.value, OutcomeUnknown)
    assert len(sleeps) == 2


def test_async_client_concurrent_reads_and_duplicate_create(venue, venue_url, private_key):
    _, url = venue_url

    async def main():
        async with AsyncKalshiClient(url, KalshiAuth("key-1", private_key)) as c:
            markets = await asyncio.gather(*(c.get_market(m["ticker"])
                                             for m in venue.markets[:8]))
            first = await c.create_order(_request("a-1"))
            again = await c.create_order(_request("a-1"))
            tickers = [m.ticker async for m in c.iter_markets()]
            return markets, first, again, tickers

    markets, first, again, tickers = asyncio.run(main())
    assert [m.ticker for m in markets] == [m["ticker"] for m in venue.markets[:8]]
    assert again.resolved_by_lookup
    assert again.order_id == first.order_id
    assert len(venue.orders) == 1
    assert len(tickers) == 26
    assert venue.bad_signatures == 0


def test_retry_policy_delays_stay_within_exponential_caps():
    policy = RetryPolicy(max_retries=6, base_s=0.5, cap_s=4.0)
    rng = random.Random(1)
    for attempt in range(6):
        cap = min(4.0, 0.5 * 2**attempt)
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # full jitter spreads over the whole window


def test_async_create_order_dropped_after_accept_finds_order_no_duplicate(venue, venue_url,
                                                                          private_key):
    _, url = venue_url
    venue.fail("POST", "/portfolio/events/orders", "drop")
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def main():
        async with AsyncKalshiClient(url, KalshiAuth("key-1", private_key), sleep=record) as c:
            return await c.create_order(_request("adrop-1"))

    ack = asyncio.run(main())
    assert ack.resolved_by_lookup
    assert len(venue.orders) == 1
    assert venue.requests_to("POST", "/portfolio/events/orders") == 1
    assert len(waits) == 1  # one backoff before the lookup, no resend
