"""KalshiClient against the real paper exchange (kalshi/paper): only the base URL differs.

Every payload the paper exchange serves must decode through kalshi.wire, and the client's write
rules (exact statuses, 409 -> lookup) must hold against it, so paper and live cannot drift apart.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from kalshi.client import AsyncKalshiClient, KalshiClient, order_request
from kalshi.errors import NotFound, OrderRejected
from kalshi.wire import AmendOrderV2Request, BatchCancelOrder, DecreaseOrderV2Request


@pytest.fixture
def clients(paper_exchange):
    with KalshiClient(paper_exchange.base_url, paper_exchange.auth()) as main, \
            KalshiClient(paper_exchange.base_url, paper_exchange.auth(counterparty=True)) as other:
        yield main, other


def test_client_paper_reads_decode(paper_exchange, clients):
    client, _ = clients
    assert client.get_exchange_status().exchange_active
    assert client.get_exchange_schedule().standard_hours
    event = client.get_event(paper_exchange.event_tickers[0])
    assert event.markets
    assert client.get_series(event.series_ticker).ticker == event.series_ticker
    listed = {m.ticker for m in client.iter_markets(event_ticker=event.event_ticker, limit=2)}
    assert listed == {m.ticker for m in event.markets}
    assert client.get_balance().balance_cents > 0


def test_client_paper_order_lifecycle_and_duplicate_create(paper_market, clients):
    client, other = clients
    ack = client.create_order(order_request(paper_market, "bid", 5, 40, client_order_id="pc-1"))
    assert ack.remaining_count == Decimal(5)
    assert not ack.resolved_by_lookup
    again = client.create_order(order_request(paper_market, "bid", 5, 40,
                                              client_order_id="pc-1"))
    assert again.resolved_by_lookup
    assert again.order_id == ack.order_id
    hit = other.create_order(order_request(paper_market, "ask", 2, 40, client_order_id="pc-2"))
    assert hit.fill_count == Decimal(2)
    assert hit.average_fill_price == Decimal("0.40")

    book = client.get_orderbook(paper_market)
    assert book.best_yes_bid == Decimal("0.40")
    assert book.yes[-1].count == Decimal(3)
    (order,) = client.iter_orders(ticker=paper_market)
    assert (order.fill_count, order.remaining_count, order.yes_price_cents) == (2, 3, 40)
    (fill,) = client.iter_fills(ticker=paper_market)
    assert (fill.count_contracts, fill.book_side, fill.is_taker) == (2, "bid", False)
    (trade,) = client.iter_trades(ticker=paper_market)
    assert trade.taker_book_side == "ask"
    markets, _ = client.get_positions(ticker=paper_market)
    assert [p.position_contracts for p in markets] == [2]

    amended = client.amend_order(ack.order_id, AmendOrderV2Request(
        ticker=paper_market, side="bid", price="0.41", count="5"))
    assert amended.remaining_count == Decimal(3)
    assert client.decrease_order(ack.order_id, DecreaseOrderV2Request(reduce_by="1")
                                 ).remaining_count == Decimal(2)
    assert client.cancel_order(ack.order_id).reduced_by == Decimal(2)
    assert client.get_order(ack.order_id).status == "canceled"


def test_client_paper_batches_cancel_all_and_groups(paper_market, clients):
    client, _ = clients
    items = client.batch_create_orders([
        order_request(paper_market, "bid", 1, 30, client_order_id="pb-1"),
        order_request(paper_market, "bid", 1, 31, client_order_id="pb-2"),
    ])
    assert [i.client_order_id for i in items] == ["pb-1", "pb-2"]
    assert all(i.error is None for i in items)
    (cancelled,) = client.batch_cancel_orders([BatchCancelOrder(order_id=items[0].order_id)])
    assert cancelled.reduced_by == Decimal(1)
    assert client.cancel_all_orders() is None
    assert list(client.iter_orders(ticker=paper_market, status="resting")) == []

    group_id = client.create_order_group(10)
    assert client.get_order_group(group_id).contracts_limit == Decimal(10)
    assert group_id in {g.id for g in client.list_order_groups()}
    client.trigger_order_group(group_id)
    client.reset_order_group(group_id)
    client.update_order_group_limit(group_id, 20)
    client.delete_order_group(group_id)


def test_client_paper_errors_map_to_classes(paper_market, clients):
    client, _ = clients
    with pytest.raises(NotFound):
        client.get_market("KXNOPE-00-X")
    with pytest.raises(NotFound):
        client.create_order(order_request("KXNOPE-00-X", "bid", 1, 50, client_order_id="pe-1"))
    with pytest.raises(OrderRejected) as info:  # $99M of contracts on a $10k account
        client.create_order(order_request(paper_market, "bid", 100_000_000, 99,
                                          client_order_id="pe-2"))
    assert info.value.status == 400
    assert info.value.code


def test_async_client_paper_positions_batches_and_groups(paper_exchange, paper_market):
    async def main():
        async with AsyncKalshiClient(paper_exchange.base_url, paper_exchange.auth()) as c, \
                AsyncKalshiClient(paper_exchange.base_url,
                                  paper_exchange.auth(counterparty=True)) as other:
            items = await c.batch_create_orders([
                order_request(paper_market, "bid", 3, 45, client_order_id="apb-1")])
            await other.place_order(paper_market, "ask", 3, 45, client_order_id="apb-2")
            markets, events = await c.get_positions(ticker=paper_market)
            group_id = await c.create_order_group(5)
            await c.trigger_order_group(group_id)
            await c.delete_order_group(group_id)
            fills = [f async for f in c.iter_fills(ticker=paper_market)]
            return items, markets, events, fills

    items, markets, events, fills = asyncio.run(main())
    assert items[0].error is None
    assert [p.position_contracts for p in markets] == [3]
    assert events[0].event_ticker == paper_market.rsplit("-", 1)[0]
    assert [f.count_contracts for f in fills] == [3]
