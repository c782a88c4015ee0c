"""The paper exchange's order groups over HTTP, against Kalshi's documented behaviour: a trigger
cancels the group's resting orders only; new orders in a triggered group are refused until a
reset; matched volume reaching the contracts limit within a rolling 15 s window triggers the
group (the limit is the most the group may match, so reaching it is "the limit is hit")."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from kalshi.client import KalshiClient, order_request
from kalshi.errors import OrderRejected
from kalshi.signing import KalshiAuth
from tests.integration.conftest import register_key
from tests.integration.safety_harness import SafetyExchange, safety_venue  # noqa: F401

_ids = itertools.count(1)


@pytest.fixture
def accounts(safety_venue: SafetyExchange) -> Iterator[tuple[KalshiClient, KalshiClient]]:  # noqa: F811
    """Two fresh funded accounts: ours and a counterparty's."""
    from tests.integration.safety_harness import _KEYS

    n = next(_ids)
    key, other = _KEYS
    register_key(safety_venue.operator_url, f"og-{n}", key, balance_cents=100_000)
    register_key(safety_venue.operator_url, f"og-cp-{n}", other, balance_cents=1_000_000)
    ours = KalshiClient(safety_venue.base_url, KalshiAuth(f"og-{n}", key), max_retries=0)
    theirs = KalshiClient(safety_venue.base_url, KalshiAuth(f"og-cp-{n}", other), max_retries=0)
    with ours, theirs:
        yield ours, theirs


def _bid(ticker: str, count: int, price: int, group: str | None, tag: str) -> object:
    return order_request(ticker, "bid", count, price, client_order_id=f"og-{tag}-{next(_ids)}",
                         order_group_id=group)


def _status(client: KalshiClient, order_id: str) -> str:
    return client.get_order(order_id).status


def test_paper_group_trigger_cancels_only_its_orders_refuses_new_until_reset(
        safety_venue: SafetyExchange,  # noqa: F811
        accounts: tuple[KalshiClient, KalshiClient]) -> None:
    # Arrange: two orders in group A, one in group B, one outside any group
    ours, _ = accounts
    market = safety_venue.market()
    group_a = ours.create_order_group(100)
    group_b = ours.create_order_group(100)
    in_a = [ours.create_order(_bid(market, 2, 10 + i, group_a, "a")).order_id  # type: ignore[arg-type]
            for i in range(2)]
    in_b = ours.create_order(_bid(market, 2, 20, group_b, "b")).order_id  # type: ignore[arg-type]
    loose = ours.create_order(_bid(market, 2, 21, None, "x")).order_id  # type: ignore[arg-type]

    # Act
    ours.trigger_order_group(group_a)

    # Assert: only group A's orders are gone; A refuses new orders (single and batch) until reset
    assert [_status(ours, o) for o in in_a] == ["canceled", "canceled"]
    assert (_status(ours, in_b), _status(ours, loose)) == ("resting", "resting")
    with pytest.raises(OrderRejected) as refused:
        ours.create_order(_bid(market, 1, 12, group_a, "a"))  # type: ignore[arg-type]
    assert refused.value.code == "order_group_limit_exceeded"
    (item,) = ours.batch_create_orders([_bid(market, 1, 12, group_a, "a")])  # type: ignore[list-item]
    assert item.error is not None
    assert item.error.code == "order_group_limit_exceeded"
    assert ours.get_order_group(group_a).orders == ()
    assert ours.create_order(_bid(market, 1, 22, group_b, "b")).order_id  # type: ignore[arg-type]

    ours.reset_order_group(group_a)

    again = ours.create_order(_bid(market, 1, 12, group_a, "a"))  # type: ignore[arg-type]
    assert _status(ours, again.order_id) == "resting"
    assert ours.get_order_group(group_a).orders == (again.order_id,)


def test_paper_group_volume_reaching_limit_in_window_cancels_and_refuses(
        safety_venue: SafetyExchange,  # noqa: F811
        accounts: tuple[KalshiClient, KalshiClient]) -> None:
    # Arrange: our 10-lot bid at 40c in a group limited to 5 contracts per 15 s
    ours, theirs = accounts
    market = safety_venue.market()
    group = ours.create_order_group(5)
    quote = ours.create_order(_bid(market, 10, 40, group, "v")).order_id  # type: ignore[arg-type]
    other = ours.create_order(_bid(market, 3, 30, group, "v")).order_id  # type: ignore[arg-type]

    def sell(count: int) -> int:
        ack = theirs.create_order(order_request(
            market, "ask", count, 40, client_order_id=f"og-cp-{next(_ids)}",
            time_in_force="immediate_or_cancel"))
        return int(ack.fill_count or 0)

    # Act / Assert: 3 match, the group is still active and the rest keeps resting
    assert sell(3) == 3
    assert _status(ours, quote) == "resting"
    # 2 more reach the limit of 5: the group matches no more and cancels the group's orders
    assert sell(4) == 2
    assert (_status(ours, quote), _status(ours, other)) == ("canceled", "canceled")
    assert ours.get_order(quote).fill_count == 5
    with pytest.raises(OrderRejected):
        ours.create_order(_bid(market, 1, 35, group, "v"))  # type: ignore[arg-type]


def test_paper_group_window_rolls_after_15s_volume_below_limit_keeps_orders(
        safety_venue: SafetyExchange,  # noqa: F811
        accounts: tuple[KalshiClient, KalshiClient]) -> None:
    # Arrange: 4 of a limit of 5 match now
    ours, theirs = accounts
    market = safety_venue.market()
    group = ours.create_order_group(5)
    quote = ours.create_order(_bid(market, 20, 40, group, "w")).order_id  # type: ignore[arg-type]

    def sell(count: int) -> int:
        ack = theirs.create_order(order_request(
            market, "ask", count, 40, client_order_id=f"og-cp-{next(_ids)}",
            time_in_force="immediate_or_cancel"))
        return int(ack.fill_count or 0)

    assert sell(4) == 4

    # Act: 16 s later those 4 have left the rolling window
    safety_venue.clock.advance(16)
    matched = sell(4)

    # Assert: 4 more match without triggering (4 in the window, below 5); the quote rests on
    assert matched == 4
    assert _status(ours, quote) == "resting"
    assert ours.get_order(quote).fill_count == 8
