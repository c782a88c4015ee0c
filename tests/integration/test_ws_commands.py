"""The paper WebSocket command protocol, spoken raw over loopback: replies, seq and error codes."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from kalshi.paper.ws import WS_PATH, market_id_for
from kalshi.signing import KalshiAuth, generate_private_key

from .ws_harness import EngineFeed, serve_feed

A, B = "KXTEST-26JAN01-B40", "KXTEST-26JAN01-B42"


@pytest.fixture(scope="module")
def key():
    return generate_private_key()


def _serve(key):
    feed = EngineFeed()
    feed.add_account("key-alice", key.public_key(), "alice")
    feed.add_market(A)
    feed.add_market(B)
    feed.submit("alice", A, "bid", 40, 5)
    feed.submit("alice", A, "ask", 45, 3)  # rests as a NO bid at 55
    return serve_feed(feed)


@pytest.fixture
def server(key):
    with _serve(key) as handle:
        yield handle


@pytest.fixture(scope="module")
def quiet_server(key):
    """One server for the tests that change no engine state."""
    with _serve(key) as handle:
        yield handle


def _run(server, key, script):
    auth = KalshiAuth("key-alice", key)

    async def main():
        async with connect(server.url, additional_headers=auth.headers_for("GET", WS_PATH)) as ws:

            async def ask(cmd_id, cmd, params=None, replies=1):
                body = {"id": cmd_id, "cmd": cmd}
                if params is not None:
                    body["params"] = params
                if cmd is not None:  # cmd None: only read the next replies
                    await ws.send(json.dumps(body))
                async with asyncio.timeout(3):
                    return [json.loads(await ws.recv()) for _ in range(replies)]

            return await script(ask)

    return asyncio.run(main())


def test_ws_subscribe_orderbook_snapshot_then_numbered_deltas(server, key):
    async def script(ask):
        replies = await ask(1, "subscribe", {"channels": ["orderbook_delta"], "market_ticker": A},
                            replies=2)
        await server.acall(server.feed.submit, "alice", A, "bid", 41, 2)
        return replies, await ask(2, "list_subscriptions", replies=2)

    (subscribed, snapshot), (delta, listing) = _run(server, key, script)
    assert subscribed == {"id": 1, "type": "subscribed",
                          "msg": {"channel": "orderbook_delta", "sid": 1}}
    assert snapshot["type"] == "orderbook_snapshot"
    assert (snapshot["sid"], snapshot["seq"]) == (1, 1)
    assert snapshot["msg"] == {
        "market_ticker": A, "market_id": market_id_for(A),
        "yes_dollars_fp": [["0.4000", "5.00"]], "no_dollars_fp": [["0.5500", "3.00"]],
    }
    assert delta["type"] == "orderbook_delta"
    assert delta["seq"] == 2
    assert {k: delta["msg"][k] for k in ("price_dollars", "delta_fp", "side")} == {
        "price_dollars": "0.4100", "delta_fp": "2.00", "side": "yes"}
    assert listing == {"id": 2, "type": "ok", "msg": [{"channel": "orderbook_delta", "sid": 1}]}


def test_ws_snapshot_while_an_outcome_awaits_commit_is_not_double_counted(server, key):
    # The paper exchange applies an order to the engine before its outcome is committed and
    # announced; a snapshot taken in between must not already contain what the delta will add.
    async def script(ask):
        await server.acall(server.feed.hold)
        await server.acall(server.feed.submit, "alice", A, "bid", 40, 7)
        (_, snapshot) = await ask(
            1, "subscribe", {"channels": ["orderbook_delta"], "market_ticker": A}, replies=2)
        await server.acall(server.feed.release)
        (delta,) = await ask(None, None)
        return snapshot, delta

    snapshot, delta = _run(server, key, script)
    assert snapshot["msg"]["yes_dollars_fp"] == [["0.4000", "5.00"]]
    assert (delta["msg"]["price_dollars"], delta["msg"]["delta_fp"]) == ("0.4000", "7.00")
    engine = server.call(server.feed.book, A)
    assert engine.yes == ((40, 12),)


def test_ws_use_yes_price_reports_no_levels_on_yes_scale(server, key):
    async def script(ask):
        return await ask(1, "subscribe", {"channels": ["orderbook_delta"], "market_tickers": [A],
                                          "use_yes_price": True}, replies=2)

    _, snapshot = _run(server, key, script)
    assert snapshot["msg"]["no_dollars_fp"] == [["0.4500", "3.00"]]


def test_ws_update_subscription_add_delete_and_get_snapshot(server, key):
    async def script(ask):
        await ask(1, "subscribe", {"channels": ["orderbook_delta"], "market_tickers": [A]},
                  replies=2)
        added = await ask(2, "update_subscription",
                          {"sid": 1, "market_tickers": [B], "action": "add_markets"}, replies=2)
        snap = await ask(3, "update_subscription",
                         {"sids": [1], "market_tickers": [A], "action": "get_snapshot"})
        deleted = await ask(4, "update_subscription",
                            {"sid": 1, "market_ticker": B, "action": "delete_markets"})
        gone = await ask(5, "unsubscribe", {"sids": [1]})
        return added, snap, deleted, gone

    (ok, b_snapshot), (a_snapshot,), (deleted,), (gone,) = _run(server, key, script)
    assert ok == {"id": 2, "sid": 1, "seq": 1, "type": "ok", "msg": {"market_tickers": [A, B]}}
    assert (b_snapshot["type"], b_snapshot["seq"], b_snapshot["msg"]["market_ticker"]) == (
        "orderbook_snapshot", 2, B)
    assert "yes_dollars_fp" not in b_snapshot["msg"]  # an empty side is omitted
    assert (a_snapshot["id"], a_snapshot["seq"], a_snapshot["type"]) == (
        3, 3, "orderbook_snapshot")
    assert deleted["msg"] == {"market_tickers": [A]}
    assert gone == {"id": 5, "sid": 1, "seq": 3, "type": "unsubscribed"}


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ({"id": 1, "cmd": "subscribe"}, 2),
        ({"id": 1, "cmd": "subscribe", "params": {}}, 3),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": ["nope"]}}, 8),
        ({"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}}, 14),
        ({"id": 1, "cmd": "subscribe",
          "params": {"channels": ["trade"], "market_tickers": ["KX-NOPE"]}}, 16),
        ({"id": 1, "cmd": "unsubscribe", "params": {}}, 4),
        ({"id": 1, "cmd": "unsubscribe", "params": {"sids": [99]}}, 7),
        ({"id": 1, "cmd": "update_subscription", "params": {"action": "add_markets"}}, 12),
        ({"id": 1, "cmd": "update_subscription", "params": {"sids": [1, 2],
                                                            "action": "add_markets"}}, 12),
        ({"id": 1, "cmd": "update_subscription", "params": {"sid": 9, "action": "add_markets"}},
         7),
        ({"id": 1, "cmd": "frobnicate", "params": {}}, 5),
        ({"id": "x", "cmd": "subscribe", "params": {"channels": ["trade"]}}, 11),
        ({"id": 1, "cmd": "subscribe",
          "params": {"channels": ["ticker"], "market_ids": ["9b0f-0000"]}}, 11),
    ],
)
def test_ws_bad_command_error_reply_with_kalshi_code(quiet_server, key, command, code):
    async def script(ask):
        body = dict(command)
        cmd_id, cmd = body.pop("id"), body.pop("cmd")
        return await ask(cmd_id, cmd, body.get("params"))

    (reply,) = _run(quiet_server, key, script)
    assert reply["type"] == "error"
    assert reply["msg"]["code"] == code
    assert isinstance(reply["msg"]["msg"], str)
    assert reply["msg"]["msg"]
    if code == 16:
        assert reply["msg"]["market_ticker"] == "KX-NOPE"


def test_ws_update_subscription_action_errors(server, key):
    async def script(ask):
        await ask(1, "subscribe", {"channels": ["trade"]})
        missing = await ask(2, "update_subscription", {"sid": 1})
        unknown = await ask(3, "update_subscription", {"sid": 1, "action": "rename"})
        snapshot_on_trade = await ask(4, "update_subscription",
                                      {"sid": 1, "action": "get_snapshot"})
        no_tickers = await ask(5, "update_subscription", {"sid": 1, "action": "add_markets"})
        return [r[0]["msg"]["code"] for r in (missing, unknown, snapshot_on_trade, no_tickers)]

    assert _run(server, key, script) == [15, 13, 13, 14]


def test_ws_malformed_json_error_code_1_connection_stays_open(server, key):
    auth = KalshiAuth("key-alice", key)

    async def main():
        async with connect(server.url, additional_headers=auth.headers_for("GET", WS_PATH)) as ws:
            await ws.send("{not json")
            error = json.loads(await ws.recv())
            await ws.send(json.dumps({"id": 2, "cmd": "list_subscriptions"}))
            return error, json.loads(await ws.recv())

    error, listing = asyncio.run(main())
    assert error["msg"]["code"] == 1
    assert listing == {"id": 2, "type": "ok", "msg": []}


def test_ws_handshake_without_headers_refused_with_401(server):
    async def main():
        async with connect(server.url):
            pass

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(main())
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["code"] == "authentication_error"
