"""KalshiStream against the paper WebSocket endpoint over loopback, on the real matching engine.

The local books must equal the engine's books at every quiet checkpoint, including while the
server loses messages (seq gaps) and drops connections on purpose.
"""

from __future__ import annotations

import asyncio
import json
import random
from decimal import Decimal

import pytest
from websockets.asyncio.client import connect

from kalshi.errors import AuthError
from kalshi.paper.ws import WS_PATH
from kalshi.signing import KalshiAuth, generate_private_key
from kalshi.stream import KalshiStream, LocalBook
from models.matching import BookView

from .ws_harness import EngineFeed, ServerHandle, serve_feed

TICKERS = ("KXTEST-26JAN01-B40", "KXTEST-26JAN01-B42")


@pytest.fixture(scope="module")
def keys():
    return {"alice": generate_private_key(), "bob": generate_private_key()}


@pytest.fixture
def server(keys):
    feed = EngineFeed()
    for name, key in keys.items():
        feed.add_account(f"key-{name}", key.public_key(), name)
    for ticker in TICKERS:
        feed.add_market(ticker)
    with serve_feed(feed) as handle:
        yield handle


def _stream(handle: ServerHandle, key, key_id: str = "key-alice", **kwargs) -> KalshiStream:
    options = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "resync_timeout_s": 1.0,
               "command_timeout_s": 5.0, "quiet_snapshot_s": 0.2, "rng": random.Random(1)}
    options.update(kwargs)
    return KalshiStream(handle.url, KalshiAuth(key_id, key), **options)


def _as_view(book: LocalBook | None) -> tuple | None:
    if book is None:
        return None
    return (tuple((p, int(q)) for p, q in book.yes), tuple((p, int(q)) for p, q in book.no))


def _engine_view(view: BookView) -> tuple:
    return (view.yes, view.no)


async def _wait_equal(stream: KalshiStream, handle: ServerHandle, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            engine = {t: _engine_view(await handle.acall(handle.feed.book, t)) for t in TICKERS}
            local = {t: _as_view(stream.book(t)) for t in TICKERS}
            if local == engine:
                return
            await asyncio.sleep(0.01)


async def _random_orders(handle: ServerHandle, rng: random.Random, n: int) -> None:
    feed = handle.feed
    for _ in range(n):
        ticker = rng.choice(TICKERS)
        account = rng.choice(("alice", "bob"))
        if rng.random() < 0.15:
            resting = await handle.acall(feed.engine.orders, account, status="resting")
            if resting:
                await handle.acall(feed.cancel, account, rng.choice(resting).order_id)
                continue
        side = rng.choice(("bid", "ask"))
        await handle.acall(feed.submit, account, ticker, side, rng.randint(30, 70),
                           rng.randint(1, 5))


def test_stream_random_orders_local_book_equals_engine(server, keys):
    async def scenario() -> None:
        async with _stream(server, keys["alice"]) as stream:
            await stream.subscribe("orderbook_delta", TICKERS)
            rng = random.Random(11)
            for _ in range(4):
                await _random_orders(server, rng, 40)
                await _wait_equal(stream, server)
            health = stream.health()
            assert health.seq_gap_count == 0
            assert health.reconnect_count == 0
            assert health.stale_books == ()
            book = stream.book(TICKERS[0])
            assert book is not None
            assert book.best_bid_cents == (book.yes[0][0] if book.yes else None)

    asyncio.run(scenario())


def test_stream_injected_seq_gaps_resyncs_to_engine_book(server, keys):
    server.feed.faults.seq_gap_rate = 0.15

    async def scenario() -> None:
        async with _stream(server, keys["alice"]) as stream:
            await stream.subscribe("orderbook_delta", TICKERS)
            rng = random.Random(12)
            for _ in range(5):
                await _random_orders(server, rng, 40)
                await _wait_equal(stream, server)
            assert stream.seq_gap_count > 0
            assert stream.resync_count > 0
            assert stream.reconnect_count == 0

    asyncio.run(scenario())


def test_stream_dropped_connections_reconnects_and_rebuilds_book(server, keys):
    server.feed.faults.ws_drop_rate = 0.03
    server.feed.faults.seq_gap_rate = 0.05

    async def scenario() -> None:
        async with _stream(server, keys["alice"]) as stream:
            await stream.subscribe("orderbook_delta", TICKERS)
            rng = random.Random(13)
            for _ in range(5):
                await _random_orders(server, rng, 40)
                await _wait_equal(stream, server)
            assert stream.reconnect_count > 0
            assert stream.connected
            assert stream.seconds_since_last_message is not None

    asyncio.run(scenario())


def test_stream_delete_markets_and_unsubscribe_drop_books(server, keys):
    async def scenario() -> list:
        async with _stream(server, keys["alice"]) as stream:
            await stream.subscribe("orderbook_delta", TICKERS)
            await server.acall(server.feed.submit, "bob", TICKERS[0], "bid", 33, 2)
            await _wait_equal(stream, server)
            await stream.delete_markets("orderbook_delta", [TICKERS[1]])
            after_delete = (stream.book(TICKERS[0]), stream.book(TICKERS[1]))
            await stream.add_markets("orderbook_delta", [TICKERS[1]])
            await stream.wait_books(TICKERS)
            await stream.unsubscribe("orderbook_delta")
            await server.acall(server.feed.submit, "bob", TICKERS[0], "bid", 34, 1)
            return [after_delete, stream.book(TICKERS[0]), stream.health().stale_books]

    (kept, deleted), after_unsubscribe, stale = asyncio.run(scenario())
    assert kept is not None
    assert kept.yes == ((33, 2),)
    assert deleted is None
    assert after_unsubscribe is None
    assert stale == ()


def test_ws_seq_gap_fault_loses_messages_for_a_client_ignoring_seq(server, keys):
    # Control for the tests above: an injected gap really loses a delta, so a client that
    # applies deltas without checking seq ends up with a wrong book.
    server.feed.faults.seq_gap_rate = 0.3
    auth = KalshiAuth("key-alice", keys["alice"])

    async def scenario() -> tuple[dict[int, int], tuple]:
        async with connect(server.url, additional_headers=auth.headers_for("GET", WS_PATH)) as ws:
            await ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {
                "channels": ["orderbook_delta"], "market_tickers": [TICKERS[0]]}}))
            yes: dict[int, int] = {}
            for i in range(30):
                await server.acall(server.feed.submit, "bob", TICKERS[0], "bid", 20 + i % 10, 1)
            async with asyncio.timeout(2):
                try:
                    while True:
                        data = json.loads(await asyncio.wait_for(ws.recv(), 0.3))
                        if data["type"] == "orderbook_snapshot":
                            yes = {round(Decimal(p) * 100): int(Decimal(q))
                                   for p, q in data["msg"].get("yes_dollars_fp", [])}
                        elif data["type"] == "orderbook_delta":
                            price = round(Decimal(data["msg"]["price_dollars"]) * 100)
                            yes[price] = yes.get(price, 0) + int(Decimal(data["msg"]["delta_fp"]))
                except TimeoutError:
                    pass
            engine = await server.acall(server.feed.book, TICKERS[0])
            return yes, engine.yes

    naive, engine_yes = asyncio.run(scenario())
    assert sorted(naive.items(), reverse=True) != list(engine_yes)


def test_stream_wrong_key_handshake_refused_with_401(server, keys):
    async def scenario(key, key_id: str, **auth_kwargs) -> None:
        stream = KalshiStream(server.url, KalshiAuth(key_id, key, **auth_kwargs),
                              open_timeout_s=5)
        await stream.start()

    with pytest.raises(AuthError) as bad_signature:
        asyncio.run(scenario(keys["bob"], "key-alice"))
    assert bad_signature.value.status == 401
    with pytest.raises(AuthError):
        asyncio.run(scenario(keys["alice"], "key-unknown"))
    with pytest.raises(AuthError):
        asyncio.run(scenario(keys["alice"], "key-alice", now_ms=lambda: 1_600_000_000_000))


REQUIRED = {
    "orderbook_snapshot": {"market_ticker", "market_id"},
    "orderbook_delta": {"market_ticker", "market_id", "price_dollars", "delta_fp", "side"},
    "ticker": {"market_id", "market_ticker", "price_dollars", "yes_bid_dollars", "yes_ask_dollars",
               "volume_fp", "open_interest_fp", "dollar_volume", "dollar_open_interest",
               "yes_bid_size_fp", "yes_ask_size_fp", "last_trade_size_fp", "ts", "ts_ms", "time"},
    "trade": {"trade_id", "market_ticker", "yes_price_dollars", "no_price_dollars", "count_fp",
              "taker_side", "taker_outcome_side", "taker_book_side", "is_block_trade", "ts",
              "ts_ms"},
    "fill": {"trade_id", "order_id", "market_ticker", "exchange_index", "is_taker", "side",
             "yes_price_dollars", "count_fp", "fee_cost", "action", "outcome_side", "book_side",
             "ts", "ts_ms", "post_position_fp", "purchased_side"},
    "user_order": {"order_id", "user_id", "ticker", "exchange_index", "status", "side", "is_yes",
                   "outcome_side", "book_side", "yes_price_dollars", "fill_count_fp",
                   "remaining_count_fp", "initial_count_fp", "taker_fill_cost_dollars",
                   "maker_fill_cost_dollars", "taker_fees_dollars", "maker_fees_dollars",
                   "client_order_id", "created_time", "created_ts_ms"},
    "market_position": {"user_id", "market_ticker", "position_fp", "position_cost_dollars",
                        "realized_pnl_dollars", "fees_paid_dollars", "position_fee_cost_dollars",
                        "volume_fp"},
    "market_lifecycle_v2": {"market_ticker", "event_type"},
    "order_group_updates": {"event_type", "order_group_id", "contracts_limit_fp"},
}
CHANNEL_OF = {
    "orderbook_snapshot": "orderbook_delta", "orderbook_delta": "orderbook_delta",
    "ticker": "ticker", "trade": "trade", "fill": "fill", "user_order": "user_orders",
    "market_position": "market_positions", "market_lifecycle_v2": "market_lifecycle_v2",
    "order_group_updates": "order_group_updates",
}


def test_stream_each_channel_delivers_its_message_type(server, keys):
    ticker = TICKERS[1]

    async def scenario() -> dict[str, list]:
        async with _stream(server, keys["alice"]) as stream:
            for channel in ("orderbook_delta", "ticker", "trade", "fill", "user_orders",
                            "market_positions", "market_lifecycle_v2", "order_group_updates"):
                tickers = [ticker] if channel == "orderbook_delta" else None
                await stream.subscribe(channel, tickers)
            feed = server.feed
            await server.acall(feed.create_order_group, "bob", 50)  # not alice's: not sent
            group_id = await server.acall(feed.create_order_group, "alice", 25)
            mine = await server.acall(feed.submit, "alice", ticker, "bid", 40, 5)
            await server.acall(feed.submit, "bob", ticker, "ask", 40, 2)
            await server.acall(feed.determine_and_settle, ticker, "yes")
            seen: dict[str, list] = {}
            async with asyncio.timeout(5):
                while not (set(REQUIRED) <= set(seen)
                           and {"determined", "settled"} <= {
                               m.msg["event_type"] for m in seen.get("market_lifecycle_v2", [])}):
                    message = await stream.next_message()
                    seen.setdefault(message.type, []).append(message)
            seen["_mine"] = [mine.order_id, group_id]
            return seen

    seen = asyncio.run(scenario())
    for kind, fields in REQUIRED.items():
        for message in seen[kind]:
            assert message.channel == CHANNEL_OF[kind]
            assert fields <= set(message.msg), (kind, fields - set(message.msg))
    (fill,) = seen["fill"]  # bob's fill of the same trade is not alice's business
    assert fill.msg["order_id"] == seen["_mine"][0]
    assert (fill.msg["count_fp"], fill.msg["yes_price_dollars"]) == ("2.00", "0.4000")
    assert (fill.msg["is_taker"], fill.msg["post_position_fp"]) == (False, "2.00")
    (trade,) = seen["trade"]
    assert (trade.msg["count_fp"], trade.msg["no_price_dollars"]) == ("2.00", "0.6000")
    assert trade.seq == 1
    assert {m.msg["user_id"] for m in seen["user_order"]} == {"alice"}
    assert seen["market_position"][0].msg["position_fp"] == "2.00"
    assert seen["market_position"][0].msg["volume_fp"] == "2.00"
    assert seen["market_position"][0].msg["position_cost_dollars"] == "0.8000"
    ticker_msg = next(m.msg for m in seen["ticker"] if m.msg["price_dollars"] == "0.4000")
    assert ticker_msg["yes_bid_dollars"] == "0.4000"
    assert ticker_msg["volume_fp"] == "2.00"
    assert ticker_msg["last_trade_size_fp"] == "2.00"
    (group,) = seen["order_group_updates"]
    assert (group.msg["event_type"], group.msg["order_group_id"]) == ("created", seen["_mine"][1])
    assert (group.msg["contracts_limit_fp"], group.seq) == ("25.00", 1)
    lifecycle = {m.msg["event_type"]: m.msg for m in seen["market_lifecycle_v2"]}
    assert lifecycle["determined"]["result"] == "yes"
    assert lifecycle["determined"]["settlement_value"] == "1.0000"
    for money_field in ("yes_price_dollars", "fee_cost", "count_fp"):
        assert isinstance(fill.msg[money_field], str)
