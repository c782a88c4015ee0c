"""KalshiStream against a scripted loopback WebSocket server: seq gaps, resync, reconnect."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from kalshi.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    KalshiAuth,
    generate_private_key,
    signing_message,
    verify,
)
from kalshi.stream import (
    ConnectionLost,
    KalshiStream,
    LocalBook,
    StreamCommandError,
    backoff_delay_s,
)

T = "KXTEST-26JAN01-B40"
KEY = generate_private_key()


def _snapshot(seq: int, yes: list[list[str]], no: list[list[str]] | None = None,
              cmd_id: int | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"market_ticker": T, "market_id": "m-1", "yes_dollars_fp": yes}
    if no:
        msg["no_dollars_fp"] = no
    out: dict[str, Any] = {"type": "orderbook_snapshot", "sid": 1, "seq": seq, "msg": msg}
    if cmd_id is not None:
        out["id"] = cmd_id
    return out


def _delta(seq: int, price: str, delta: str, side: str = "yes") -> dict[str, Any]:
    return {"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": {
        "market_ticker": T, "market_id": "m-1", "price_dollars": price, "delta_fp": delta,
        "side": side, "ts_ms": 1}}


class Script:
    """A loopback server whose handler is a test-written coroutine; records every command."""

    def __init__(self, handler: Callable[[ServerConnection, Script], Awaitable[None]]) -> None:
        self.handler = handler
        self.commands: list[dict[str, Any]] = []
        self.connections = 0
        self.signed_ok: list[bool] = []

    async def recv(self, ws: ServerConnection) -> dict[str, Any]:
        command = json.loads(await asyncio.wait_for(ws.recv(), 3))
        self.commands.append(command)
        return command

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        headers = ws.request.headers
        message = signing_message(int(headers[HEADER_TIMESTAMP]), "GET", "/trade-api/ws/v2")
        self.signed_ok.append(headers[HEADER_KEY] == "key-1"
                              and verify(KEY.public_key(), message, headers[HEADER_SIGNATURE]))
        await self.handler(ws, self)


async def _with_stream(script: Script, body: Callable[[KalshiStream], Awaitable[Any]],
                       **options: Any) -> Any:
    async with serve(script._handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings: dict[str, Any] = {"backoff_initial_s": 0.01, "backoff_max_s": 0.02,
                                    "resync_timeout_s": 5, "quiet_snapshot_s": None,
                                    "rng": random.Random(3)}
        settings.update(options)
        stream = KalshiStream(f"ws://127.0.0.1:{port}/trade-api/ws/v2", KalshiAuth("key-1", KEY),
                              **settings)
        async with stream:
            return await body(stream)


async def _subscribed(ws: ServerConnection, script: Script) -> dict[str, Any]:
    command = await script.recv(ws)
    await ws.send(json.dumps({"id": command["id"], "type": "subscribed",
                              "msg": {"channel": "orderbook_delta", "sid": 1}}))
    return command


async def _until(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.005)


def test_backoff_delay_doubles_with_jitter_and_caps():
    rng = random.Random(5)
    for attempt, base in [(0, 0.5), (1, 1.0), (3, 4.0), (10, 30.0), (400, 30.0)]:
        for _ in range(50):
            delay = backoff_delay_s(attempt, 0.5, 30.0, rng)
            assert base / 2 <= delay <= base


def test_local_book_best_prices_from_yes_and_no_bids():
    book = LocalBook(T, yes=((44, Decimal(3)), (40, Decimal(1))), no=((52, Decimal(2)),))
    assert (book.best_bid_cents, book.best_ask_cents) == (44, 48)
    assert (LocalBook(T, (), ()).best_bid_cents, LocalBook(T, (), ()).best_ask_cents) == (
        None, None)


def test_stream_seq_gap_drops_book_and_requests_snapshot():
    release, resume = asyncio.Event(), asyncio.Event()

    async def handler(ws: ServerConnection, script: Script) -> None:
        await _subscribed(ws, script)
        await ws.send(json.dumps(_snapshot(1, [["0.4000", "5.00"]], [["0.5500", "2.00"]])))
        await ws.send(json.dumps(_delta(2, "0.4100", "1.00")))
        await release.wait()
        await ws.send(json.dumps(_delta(4, "0.4200", "1.00")))  # seq 3 never arrives
        request = await script.recv(ws)
        await resume.wait()
        await ws.send(json.dumps(_snapshot(5, [["0.4200", "7.00"]], cmd_id=request["id"])))
        await ws.send(json.dumps(_delta(6, "0.4200", "-2.00")))
        await ws.wait_closed()

    async def body(stream: KalshiStream) -> tuple[LocalBook | None, LocalBook | None, Any]:
        sid = await stream.subscribe("orderbook_delta", [T])
        assert sid == 1
        await stream.wait_books([T])
        await _until(lambda: (stream.book(T) or LocalBook(T, (), ())).best_bid_cents == 41)
        before = stream.book(T)
        release.set()
        await _until(lambda: stream.seq_gap_count == 1)
        during = stream.book(T)
        resume.set()
        await _until(lambda: (stream.book(T) or LocalBook(T, (), ())).yes == ((42, 5),))
        return before, during, stream.health()

    script = Script(handler)
    before, during, health = asyncio.run(_with_stream(script, body))
    assert before == LocalBook(T, ((41, Decimal(1)), (40, Decimal(5))), ((55, Decimal(2)),))
    assert during is None
    assert script.commands[1]["cmd"] == "update_subscription"
    assert script.commands[1]["params"] == {"sid": 1, "market_tickers": [T],
                                            "action": "get_snapshot"}
    assert (health.resync_count, health.seq_gap_count, health.stale_books) == (1, 1, ())
    assert all(script.signed_ok)


def test_stream_refused_snapshot_falls_back_to_resubscribe():
    async def handler(ws: ServerConnection, script: Script) -> None:
        await _subscribed(ws, script)
        await ws.send(json.dumps(_snapshot(1, [["0.4000", "5.00"]])))
        await ws.send(json.dumps(_delta(3, "0.4000", "1.00")))
        request = await script.recv(ws)
        await ws.send(json.dumps({"id": request["id"], "type": "error",
                                  "msg": {"code": 13, "msg": "Unsupported action"}}))
        unsubscribe = await script.recv(ws)
        await ws.send(json.dumps({"id": unsubscribe["id"], "sid": 1, "seq": 3,
                                  "type": "unsubscribed"}))
        await _subscribed(ws, script)
        await ws.send(json.dumps(_snapshot(1, [["0.3900", "4.00"]])))
        await ws.wait_closed()

    async def body(stream: KalshiStream) -> LocalBook | None:
        await stream.subscribe("orderbook_delta", [T])
        await _until(lambda: (stream.book(T) or LocalBook(T, (), ())).best_bid_cents == 39)
        return stream.book(T)

    script = Script(handler)
    book = asyncio.run(_with_stream(script, body))
    assert book == LocalBook(T, ((39, Decimal(4)),), ())
    assert [c["cmd"] for c in script.commands] == [
        "subscribe", "update_subscription", "unsubscribe", "subscribe"]


def test_stream_delta_below_zero_treated_as_gap():
    async def handler(ws: ServerConnection, script: Script) -> None:
        await _subscribed(ws, script)
        await ws.send(json.dumps(_snapshot(1, [["0.4000", "5.00"]])))
        await ws.send(json.dumps(_delta(2, "0.4000", "-6.00")))
        request = await script.recv(ws)
        await ws.send(json.dumps(_snapshot(3, [["0.4000", "1.00"]], cmd_id=request["id"])))
        await ws.wait_closed()

    async def body(stream: KalshiStream) -> LocalBook | None:
        await stream.subscribe("orderbook_delta", [T])
        await _until(lambda: stream.resync_count == 1 and stream.book(T) is not None)
        return stream.book(T)

    book = asyncio.run(_with_stream(Script(handler), body))
    assert book == LocalBook(T, ((40, Decimal(1)),), ())


def test_stream_server_closes_reconnects_and_resubscribes():
    async def handler(ws: ServerConnection, script: Script) -> None:
        command = await _subscribed(ws, script)
        await ws.send(json.dumps(_snapshot(1, [["0.4000", f"{script.connections}.00"]])))
        if script.connections == 1:
            await ws.close(code=1011)
            return
        assert command["params"]["market_tickers"] == [T]
        await ws.wait_closed()

    async def body(stream: KalshiStream) -> tuple[LocalBook | None, int]:
        await stream.subscribe("orderbook_delta", [T])
        await _until(lambda: stream.reconnect_count == 1 and stream.book(T) is not None
                     and stream.book(T).yes == ((40, 2),))
        return stream.book(T), stream.reconnect_count

    script = Script(handler)
    book, reconnects = asyncio.run(_with_stream(script, body))
    assert reconnects == 1
    assert script.connections == 2
    assert book == LocalBook(T, ((40, Decimal(2)),), ())


def test_stream_subscribe_error_reply_raises_with_code():
    async def handler(ws: ServerConnection, script: Script) -> None:
        command = await script.recv(ws)
        await ws.send(json.dumps({"id": command["id"], "type": "error",
                                  "msg": {"code": 16, "msg": "Market not found",
                                          "market_ticker": "KX-NOPE"}}))
        await ws.wait_closed()

    async def body(stream: KalshiStream) -> None:
        await stream.subscribe("trade", ["KX-NOPE"])

    with pytest.raises(StreamCommandError) as refused:
        asyncio.run(_with_stream(Script(handler), body))
    assert refused.value.ws_code == 16


def test_stream_unanswered_command_times_out_as_connection_lost():
    async def handler(ws: ServerConnection, script: Script) -> None:
        await script.recv(ws)  # never answers
        await ws.wait_closed()

    async def body(stream: KalshiStream) -> None:
        await stream.subscribe("trade")

    with pytest.raises(ConnectionLost, match="within 0.2s"):
        asyncio.run(_with_stream(Script(handler), body, command_timeout_s=0.2))


def test_stream_health_seconds_since_last_message_uses_injected_clock():
    now = [100.0]

    async def handler(ws: ServerConnection, script: Script) -> None:
        await _subscribed(ws, script)
        await ws.send(json.dumps(_snapshot(1, [["0.4000", "5.00"]])))
        await ws.wait_closed()

    async def body(stream: KalshiStream) -> tuple[float | None, float | None]:
        first = stream.seconds_since_last_message
        await stream.subscribe("orderbook_delta", [T])
        await stream.wait_books([T])
        now[0] = 103.5
        return first, stream.health().seconds_since_last_message

    first, later = asyncio.run(_with_stream(Script(handler), body, clock=lambda: now[0]))
    assert first is None
    assert later == 3.5


def test_stream_full_message_queue_counts_dropped_messages():
    async def handler(ws: ServerConnection, script: Script) -> None:
        command = await script.recv(ws)
        await ws.send(json.dumps({"id": command["id"], "type": "subscribed",
                                  "msg": {"channel": "trade", "sid": 1}}))
        for seq in (1, 2, 3):
            await ws.send(json.dumps({"type": "trade", "sid": 1, "seq": seq,
                                      "msg": {"trade_id": f"t-{seq}", "market_ticker": T}}))
        await ws.wait_closed()

    async def body(stream: KalshiStream) -> tuple[str, int]:
        await stream.subscribe("trade")
        await _until(lambda: stream.dropped_messages == 2)
        first = await stream.next_message(timeout_s=1)
        return first.msg["trade_id"], stream.health().dropped_messages

    assert asyncio.run(_with_stream(Script(handler), body, queue_size=1)) == ("t-1", 2)


def test_stream_unusable_snapshot_leaves_book_stale_without_resync_loop():
    async def handler(ws: ServerConnection, script: Script) -> None:
        await _subscribed(ws, script)
        await ws.send(json.dumps(_snapshot(1, [["0.4050", "5.00"]])))  # a sub-penny price
        await ws.wait_closed()

    async def body(stream: KalshiStream) -> tuple[Any, ...]:
        await stream.subscribe("orderbook_delta", [T])
        assert (await stream.next_message(timeout_s=1)).type == "orderbook_snapshot"
        await asyncio.sleep(0.05)  # room for a (wrong) snapshot request to go out
        return stream.book(T), stream.health().stale_books, stream.resync_count

    script = Script(handler)
    assert asyncio.run(_with_stream(script, body)) == (None, (T,), 0)
    assert [c["cmd"] for c in script.commands] == ["subscribe"]
