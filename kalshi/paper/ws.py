"""The paper exchange's WebSocket API at ``/trade-api/ws/v2`` (Kalshi's current message shapes).

Invariant: for every ``orderbook_delta`` subscription the client receives a snapshot and then every
book change of its markets in commit order, numbered ``seq`` 1, 2, 3... per subscription with no
gaps, unless a gap or a dropped connection is injected on purpose via ``feed.faults``.

How: snapshots are not read from the engine (which may already hold changes whose outcomes are not
yet committed and announced) but from a mirror of every book kept by one feed listener, so a
snapshot is exactly "all announced deltas so far"; it is queued in the same event-loop step that
registers the subscription, and later outcomes are turned into messages synchronously in the
listener, so a snapshot and the deltas after it neither overlap nor miss a change. The mirror is
loaded from the engine when ``websocket_endpoint(feed)`` is called, which must happen before the
feed mutates anything (``create_app`` does it before the exchange starts).

Every connection must authenticate in the handshake (the three ``KALSHI-ACCESS-*`` headers signing
``timestamp + "GET" + "/trade-api/ws/v2"``); a refused handshake gets HTTP 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from models.matching import (
    BookView,
    Fill,
    Lifecycle,
    MarketState,
    Order,
    Outcome,
    Position,
    Trade,
)
from models.money import dollars_from_cents, fp_from_contracts, price_dollars

__all__ = [
    "WS_PATH",
    "CHANNELS",
    "SEQUENCED_CHANNELS",
    "ERROR_TEXT",
    "ExchangeFeed",
    "EngineReads",
    "FaultSettings",
    "market_id_for",
    "websocket_endpoint",
    "websocket_route",
]

log = logging.getLogger(__name__)

WS_PATH = "/trade-api/ws/v2"
CHANNELS = (
    "orderbook_delta",
    "ticker",
    "trade",
    "fill",
    "market_positions",
    "market_lifecycle_v2",
    "user_orders",
    "order_group_updates",
)
# channels whose data messages carry a per-subscription ``seq`` (Kalshi's AsyncAPI + changelog)
SEQUENCED_CHANNELS = frozenset(
    {"orderbook_delta", "trade", "market_lifecycle_v2", "order_group_updates"}
)
ERROR_TEXT: dict[int, str] = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    16: "Market not found",
    25: "Subscription buffer overflow",
}
_MARKET_ID_NAMESPACE = uuid.UUID("6f1f2b8e-3c1d-4e0a-9a51-5b2a8f0c7d11")
_OUTBOX_LIMIT = 50_000


class FaultSettings(Protocol):
    """Injected faults the WebSocket honours (0.0 = off)."""

    @property
    def ws_drop_rate(self) -> float: ...

    @property
    def seq_gap_rate(self) -> float: ...


class EngineReads(Protocol):
    """The engine reads the feed needs besides the book."""

    def market(self, ticker: str) -> MarketState: ...

    def order(self, order_id: str) -> Order: ...

    def fills(self, account_id: str) -> list[Fill]: ...


class ExchangeFeed(Protocol):
    """What the WebSocket endpoint uses from the exchange (``PaperExchange`` provides it)."""

    def verify_request(self, method: str, path: str, headers: Mapping[str, str]) -> str | None: ...

    def book(self, ticker: str) -> BookView: ...

    def add_listener(self, fn: Callable[[Outcome], None]) -> Callable[[], None]: ...

    def market_tickers(self) -> Iterable[str]: ...

    @property
    def engine(self) -> EngineReads: ...

    @property
    def faults(self) -> FaultSettings: ...


def market_id_for(ticker: str) -> str:
    """Return the paper exchange's stable ``market_id`` (a UUID derived from the ticker)."""
    return str(uuid.uuid5(_MARKET_ID_NAMESPACE, ticker))


class _CommandError(Exception):
    def __init__(self, code: int, detail: str = "", market_ticker: str | None = None) -> None:
        self.code = code
        self.detail = detail
        self.market_ticker = market_ticker
        super().__init__(f"{code}: {detail}")


@dataclass
class _Subscription:
    sid: int
    channel: str
    tickers: set[str] | None  # None = all markets
    use_yes_price: bool = False
    seq: int = 0


class _Hub:
    """The one feed listener: mirrors every book as announced and fans outcomes out."""

    def __init__(self, feed: ExchangeFeed) -> None:
        self.feed = feed
        self.sessions: set[_Session] = set()
        self.books: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        for ticker in feed.market_tickers():
            self._load(ticker)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: int | None = None
        feed.add_listener(self.on_outcome)

    def _load(self, ticker: str) -> None:
        view = self.feed.book(ticker)
        self.books[ticker] = (dict(view.yes), dict(view.no))

    def view(self, ticker: str) -> BookView:
        # a market unknown here was created after the mirror was loaded: its announced book is
        # exactly the deltas announced since, starting empty
        yes, no = self.books.setdefault(ticker, ({}, {}))
        return BookView(ticker, tuple(sorted(yes.items(), reverse=True)),
                        tuple(sorted(no.items(), reverse=True)))

    def attach(self, session: _Session) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self.loop_thread = threading.get_ident()
        self.sessions.add(session)

    def on_outcome(self, outcome: Outcome) -> None:
        if self.loop is not None and threading.get_ident() != self.loop_thread:
            # a feed calling from a worker thread: keep commit order via the loop
            self.loop.call_soon_threadsafe(self._apply, outcome)
        else:
            self._apply(outcome)

    def _apply(self, outcome: Outcome) -> None:
        for d in outcome.book_deltas:
            yes, no = self.books.setdefault(d.ticker, ({}, {}))
            levels = yes if d.side == "yes" else no
            qty = levels.get(d.price_cents, 0) + d.delta
            if qty < 0:
                log.error("book mirror of %s went negative at %s %s; reloading from the engine",
                          d.ticker, d.side, d.price_cents)
                self._load(d.ticker)
            elif qty == 0:
                levels.pop(d.price_cents, None)
            else:
                levels[d.price_cents] = qty
        for session in list(self.sessions):
            try:
                session.on_outcome(outcome)
            except Exception:  # one connection's bug must not stop the others or the venue
                log.exception("WebSocket session failed on an outcome; closing it")
                session.fail()


@dataclass(eq=False)
class _Session:
    """One authenticated connection: its subscriptions and its outbox."""

    hub: _Hub
    account_id: str
    rng: random.Random
    now_ms: Callable[[], int]
    outbox: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    subs: dict[int, _Subscription] = field(default_factory=dict)
    next_sid: int = 1
    overflow: bool = False
    broken: bool = False

    @property
    def feed(self) -> ExchangeFeed:
        return self.hub.feed

    def fail(self) -> None:
        self.broken = True
        self.outbox.put_nowait(None)

    # ---- outgoing --------------------------------------------------------------------------
    def push(self, message: dict[str, Any]) -> None:
        if self.outbox.qsize() >= _OUTBOX_LIMIT:
            self.overflow = True
            return
        self.outbox.put_nowait(message)

    def push_data(self, sub: _Subscription, kind: str, msg: dict[str, Any], **extra: Any) -> None:
        envelope: dict[str, Any] = {"type": kind, "sid": sub.sid}
        if sub.channel in SEQUENCED_CHANNELS:
            sub.seq += 1
            if self.rng.random() < self.feed.faults.seq_gap_rate:
                return  # injected fault: this message is lost, so its seq number never arrives
            envelope["seq"] = sub.seq
        envelope.update(extra)
        envelope["msg"] = msg
        self.push(envelope)

    def reply_error(self, cmd_id: int, err: _CommandError, sid: int | None = None) -> None:
        msg: dict[str, Any] = {"code": err.code, "msg": ERROR_TEXT.get(err.code, "Error")}
        if err.detail:
            msg["msg"] += f": {err.detail}"
        if err.market_ticker is not None:
            msg["market_ticker"] = err.market_ticker
        reply: dict[str, Any] = {"id": cmd_id, "type": "error", "msg": msg}
        if sid is not None:
            reply["sid"] = sid
        self.push(reply)

    # ---- commands --------------------------------------------------------------------------
    def handle(self, raw: str) -> None:
        cmd_id = 0
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise _CommandError(1, "command must be a JSON object")
            cmd_id = data.get("id", 0)
            if isinstance(cmd_id, bool) or not isinstance(cmd_id, int):
                cmd_id = 0
                raise _CommandError(11, f"id must be an integer, got {data.get('id')!r}")
            cmd = data.get("cmd")
            params = data.get("params")
            if cmd == "list_subscriptions":
                self.push({"id": cmd_id, "type": "ok", "msg": [
                    {"channel": s.channel, "sid": s.sid} for s in self.subs.values()
                ]})
                return
            if cmd not in ("subscribe", "unsubscribe", "update_subscription"):
                raise _CommandError(5, f"cmd {cmd!r}")
            if not isinstance(params, dict):
                raise _CommandError(2)
            if cmd == "subscribe":
                self._subscribe(cmd_id, params)
            elif cmd == "unsubscribe":
                self._unsubscribe(cmd_id, params)
            else:
                self._update(cmd_id, params)
        except json.JSONDecodeError:
            self.reply_error(0, _CommandError(1, "malformed JSON"))
        except _CommandError as err:
            self.reply_error(cmd_id, err)

    def _tickers_param(self, params: dict[str, Any], *, required: bool) -> list[str] | None:
        for unsupported in ("market_id", "market_ids", "shard_factor", "shard_key"):
            if unsupported in params:
                raise _CommandError(11, f"{unsupported} is not supported by the paper exchange")
        one, many = params.get("market_ticker"), params.get("market_tickers")
        if one is not None and many is not None:
            raise _CommandError(11, "market_ticker and market_tickers are mutually exclusive")
        if one is not None:
            many = [one]
        if many is None:
            if required:
                raise _CommandError(14)
            return None
        if not isinstance(many, list) or not many or not all(isinstance(t, str) for t in many):
            raise _CommandError(11, f"market_tickers must be a non-empty list of strings: {many!r}")
        known = set(self.feed.market_tickers())
        for ticker in many:
            if ticker not in known:
                raise _CommandError(16, ticker, market_ticker=ticker)
        return list(dict.fromkeys(many))

    def _subscribe(self, cmd_id: int, params: dict[str, Any]) -> None:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            raise _CommandError(3)
        for channel in channels:
            if channel not in CHANNELS:
                raise _CommandError(8, repr(channel))
        tickers = self._tickers_param(params, required="orderbook_delta" in channels)
        use_yes = params.get("use_yes_price", False)
        if not isinstance(use_yes, bool):
            raise _CommandError(11, f"use_yes_price must be a boolean: {use_yes!r}")
        for channel in channels:
            existing = next((s for s in self.subs.values() if s.channel == channel), None)
            if existing is not None:  # Kalshi merges a re-subscribe into the existing sid
                sub, added = existing, self._merge(existing, tickers)
            else:
                sub = _Subscription(self.next_sid, channel, set(tickers) if tickers else None,
                                    use_yes)
                self.next_sid += 1
                self.subs[sub.sid] = sub
                added = tickers or []
            self.push({"id": cmd_id, "type": "subscribed",
                       "msg": {"channel": channel, "sid": sub.sid}})
            if channel == "orderbook_delta":
                for ticker in added:
                    self._snapshot(sub, ticker)
            elif channel == "ticker" and params.get("send_initial_snapshot") is True:
                for ticker in added:
                    self.push_data(sub, "ticker", self._ticker_msg(ticker))

    @staticmethod
    def _merge(sub: _Subscription, tickers: list[str] | None) -> list[str]:
        if sub.tickers is None:
            return []
        if tickers is None:
            sub.tickers = None
            return []
        added = [t for t in tickers if t not in sub.tickers]
        sub.tickers.update(added)
        return added

    def _unsubscribe(self, cmd_id: int, params: dict[str, Any]) -> None:
        sids = params.get("sids")
        if not isinstance(sids, list) or not sids:
            raise _CommandError(4)
        for sid in sids:
            if sid not in self.subs:
                raise _CommandError(7, repr(sid))
        for sid in sids:
            sub = self.subs.pop(sid)
            self.push({"id": cmd_id, "sid": sid, "seq": sub.seq, "type": "unsubscribed"})

    def _update(self, cmd_id: int, params: dict[str, Any]) -> None:
        sid, sids = params.get("sid"), params.get("sids")
        if sid is not None and sids is not None:
            raise _CommandError(12)
        if sids is not None:
            if not isinstance(sids, list) or len(sids) != 1:
                raise _CommandError(12)
            sid = sids[0]
        if sid is None:
            raise _CommandError(12)
        sub = self.subs.get(sid)
        if sub is None:
            raise _CommandError(7, repr(sid))
        action = params.get("action")
        if action is None:
            raise _CommandError(15)
        if action not in ("add_markets", "delete_markets", "get_snapshot"):
            raise _CommandError(13, repr(action))
        tickers = self._tickers_param(params, required=action != "get_snapshot")
        if action == "get_snapshot":
            if sub.channel != "orderbook_delta":
                raise _CommandError(13, f"get_snapshot on channel {sub.channel}")
            wanted = tickers if tickers is not None else sorted(sub.tickers or ())
            for ticker in wanted:
                if sub.tickers is not None and ticker not in sub.tickers:
                    raise _CommandError(11, f"{ticker} is not in subscription {sid}",
                                        market_ticker=ticker)
            for ticker in wanted:
                self._snapshot(sub, ticker, cmd_id=cmd_id)
            return
        assert tickers is not None
        added: list[str] = []
        if action == "add_markets":
            added = self._merge(sub, tickers)
        elif sub.tickers is not None:
            sub.tickers.difference_update(tickers)
        shown = sorted(sub.tickers) if sub.tickers is not None else []
        self.push({"id": cmd_id, "sid": sid, "seq": sub.seq, "type": "ok",
                   "msg": {"market_tickers": shown}})
        if sub.channel == "orderbook_delta":
            for ticker in added:
                self._snapshot(sub, ticker)

    # ---- message shapes --------------------------------------------------------------------
    def _snapshot(self, sub: _Subscription, ticker: str, cmd_id: int | None = None) -> None:
        view = self.hub.view(ticker)
        msg: dict[str, Any] = {"market_ticker": ticker, "market_id": market_id_for(ticker)}
        yes = sorted(view.yes)
        no = sorted((100 - p, q) if sub.use_yes_price else (p, q) for p, q in view.no)
        if yes:
            msg["yes_dollars_fp"] = [[price_dollars(p), fp_from_contracts(q)] for p, q in yes]
        if no:
            msg["no_dollars_fp"] = [[price_dollars(p), fp_from_contracts(q)] for p, q in no]
        extra = {"id": cmd_id} if cmd_id is not None else {}
        self.push_data(sub, "orderbook_snapshot", msg, **extra)

    def _ticker_msg(self, ticker: str, last_trade_size: int = 0) -> dict[str, Any]:
        view = self.hub.view(ticker)
        state = self.feed.engine.market(ticker)
        now_ms = self.now_ms()
        bid, bid_size = view.yes[0] if view.yes else (0, 0)
        no_bid, ask_size = view.no[0] if view.no else (0, 0)
        last = state.last_price_cents or 0
        return {
            "market_ticker": ticker,
            "market_id": market_id_for(ticker),
            "price_dollars": price_dollars(last),
            "yes_bid_dollars": price_dollars(bid),
            "yes_ask_dollars": price_dollars(100 - no_bid),
            "yes_bid_size_fp": fp_from_contracts(bid_size),
            "yes_ask_size_fp": fp_from_contracts(ask_size),
            "last_trade_size_fp": fp_from_contracts(last_trade_size),
            "volume_fp": fp_from_contracts(state.volume),
            "open_interest_fp": fp_from_contracts(state.open_interest),
            # each contract is a $1 notional, so the whole-dollar figures equal the counts
            "dollar_volume": state.volume,
            "dollar_open_interest": state.open_interest,
            "ts": now_ms // 1000,
            "ts_ms": now_ms,
            "time": _rfc3339(now_ms),
        }

    def _order_msg(self, order: Order) -> dict[str, Any]:
        is_yes = order.side == "bid"
        msg: dict[str, Any] = {
            "order_id": order.order_id,
            "user_id": order.account_id,
            "ticker": order.ticker,
            "exchange_index": 0,
            "status": order.status,
            "side": "yes" if is_yes else "no",
            "is_yes": is_yes,
            "outcome_side": "yes" if is_yes else "no",
            "book_side": order.side,
            "yes_price_dollars": price_dollars(order.price_cents),
            "fill_count_fp": fp_from_contracts(order.fill_count),
            "remaining_count_fp": fp_from_contracts(order.remaining_count),
            "initial_count_fp": fp_from_contracts(order.initial_count),
            "taker_fill_cost_dollars": dollars_from_cents(order.taker_fill_cost_cents, places=4),
            "maker_fill_cost_dollars": dollars_from_cents(order.maker_fill_cost_cents, places=4),
            "taker_fees_dollars": dollars_from_cents(order.taker_fees_cents, places=4),
            "maker_fees_dollars": dollars_from_cents(order.maker_fees_cents, places=4),
            "client_order_id": order.client_order_id,
            "created_time": _rfc3339(order.created_ts_ms),
            "created_ts_ms": order.created_ts_ms,
            "self_trade_prevention_type": order.stp,
            "last_update_time": _rfc3339(order.last_update_ts_ms),
            "last_updated_ts_ms": order.last_update_ts_ms,
        }
        if order.order_group_id:
            msg["order_group_id"] = order.order_group_id
        if order.expiration_ts_ms is not None:
            msg["expiration_time"] = _rfc3339(order.expiration_ts_ms)
            msg["expiration_ts_ms"] = order.expiration_ts_ms
        if order.last_update_reason:
            msg["last_update_reason"] = order.last_update_reason
        return msg

    # ---- engine outcomes -------------------------------------------------------------------
    def on_outcome(self, outcome: Outcome) -> None:
        if not self.subs:
            return
        for sub in list(self.subs.values()):
            self._emit(sub, outcome)

    def _wants(self, sub: _Subscription, ticker: str) -> bool:
        return sub.tickers is None or ticker in sub.tickers

    def _emit(self, sub: _Subscription, out: Outcome) -> None:  # noqa: C901 - a flat dispatch
        ch, me = sub.channel, self.account_id
        if ch == "orderbook_delta":
            for d in out.book_deltas:
                if not self._wants(sub, d.ticker):
                    continue
                price = 100 - d.price_cents if (d.side == "no" and sub.use_yes_price) else (
                    d.price_cents)
                now_ms = self.now_ms()
                self.push_data(sub, "orderbook_delta", {
                    "market_ticker": d.ticker, "market_id": market_id_for(d.ticker),
                    "price_dollars": price_dollars(price), "delta_fp": fp_from_contracts(d.delta),
                    "side": d.side, "ts": _rfc3339(now_ms), "ts_ms": now_ms,
                })
        elif ch == "ticker":
            touched = [t.ticker for t in out.trades] + [d.ticker for d in out.book_deltas]
            touched += [lc.ticker for lc in out.lifecycle]
            sizes = {t.ticker: t.count for t in out.trades}
            for ticker in dict.fromkeys(touched):
                if self._wants(sub, ticker):
                    self.push_data(sub, "ticker", self._ticker_msg(ticker, sizes.get(ticker, 0)))
        elif ch == "trade":
            for t in out.trades:
                if self._wants(sub, t.ticker):
                    self.push_data(sub, "trade", _trade_msg(t))
        elif ch == "fill":
            for f in out.fills:
                if f.account_id == me and self._wants(sub, f.ticker):
                    cid = self.feed.engine.order(f.order_id).client_order_id
                    self.push_data(sub, "fill", _fill_msg(f, cid))
        elif ch == "user_orders":
            for o in out.orders:
                if o.account_id == me and self._wants(sub, o.ticker):
                    self.push_data(sub, "user_order", self._order_msg(o))
        elif ch == "market_positions":
            for p in out.positions:
                if p.account_id == me and self._wants(sub, p.ticker):
                    volume = sum(f.count for f in self.feed.engine.fills(me)
                                 if f.ticker == p.ticker)
                    self.push_data(sub, "market_position", _position_msg(p, volume))
        elif ch == "market_lifecycle_v2":
            for lc in out.lifecycle:
                if self._wants(sub, lc.ticker):
                    self.push_data(sub, "market_lifecycle_v2", self._lifecycle_msg(lc))
        elif ch == "order_group_updates":
            for g in out.group_events:
                if g.account_id == me:
                    msg = {"event_type": g.event_type, "order_group_id": g.order_group_id,
                           "contracts_limit_fp": fp_from_contracts(g.contracts_limit),
                           "ts_ms": g.ts_ms}
                    self.push_data(sub, "order_group_updates", msg)

    def _lifecycle_msg(self, lc: Lifecycle) -> dict[str, Any]:
        msg: dict[str, Any] = {"market_ticker": lc.ticker, "event_type": lc.event_type}
        seconds = lc.ts_ms // 1000
        if lc.event_type in ("created", "close_date_updated"):
            spec = self.feed.engine.market(lc.ticker).spec
            msg["open_ts"] = spec.open_ts_ms // 1000
            msg["close_ts"] = spec.close_ts_ms // 1000
            if lc.event_type == "created":
                msg["exchange_index"] = 0
                msg["additional_metadata"] = {"event_ticker": spec.event_ticker}
        elif lc.event_type == "determined":
            msg["determination_ts"] = seconds
            if lc.result:
                msg["result"] = lc.result
                msg["settlement_value"] = price_dollars(100 if lc.result == "yes" else 0)
        elif lc.event_type == "settled":
            msg["settled_ts"] = seconds
        elif lc.event_type in ("activated", "deactivated"):
            msg["is_deactivated"] = lc.event_type == "deactivated"
        return msg


def _rfc3339(ts_ms: int) -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _trade_msg(t: Trade) -> dict[str, Any]:
    return {
        "trade_id": t.trade_id,
        "market_ticker": t.ticker,
        "yes_price_dollars": price_dollars(t.yes_price_cents),
        "no_price_dollars": price_dollars(100 - t.yes_price_cents),
        "count_fp": fp_from_contracts(t.count),
        "taker_side": t.taker_side,
        "taker_outcome_side": t.taker_side,
        "taker_book_side": "bid" if t.taker_side == "yes" else "ask",
        "is_block_trade": False,
        "ts": t.ts_ms // 1000,
        "ts_ms": t.ts_ms,
    }


def _fill_msg(f: Fill, client_order_id: str) -> dict[str, Any]:
    outcome_side = "yes" if f.side == "bid" else "no"
    msg: dict[str, Any] = {
        "trade_id": f.trade_id,
        "order_id": f.order_id,
        "market_ticker": f.ticker,
        "exchange_index": 0,
        "is_taker": f.is_taker,
        "side": outcome_side,
        "yes_price_dollars": price_dollars(f.yes_price_cents),
        "count_fp": fp_from_contracts(f.count),
        "fee_cost": dollars_from_cents(f.fee_cents, places=4),
        "action": "buy",
        "outcome_side": outcome_side,
        "book_side": f.side,
        "ts": f.ts_ms // 1000,
        "ts_ms": f.ts_ms,
        "post_position_fp": fp_from_contracts(f.post_position),
        "purchased_side": outcome_side,
    }
    if client_order_id:
        msg["client_order_id"] = client_order_id
    return msg


def _position_msg(p: Position, volume: int) -> dict[str, Any]:
    return {
        "user_id": p.account_id,
        "market_ticker": p.ticker,
        "position_fp": fp_from_contracts(p.position),
        "position_cost_dollars": dollars_from_cents(p.market_exposure_cents, places=4),
        "realized_pnl_dollars": dollars_from_cents(p.realized_pnl_cents, places=4),
        "fees_paid_dollars": dollars_from_cents(p.fees_paid_cents, places=4),
        "position_fee_cost_dollars": dollars_from_cents(p.fees_paid_cents, places=4),
        "volume_fp": fp_from_contracts(volume),
    }


def _default_now_ms() -> int:
    return time.time_ns() // 1_000_000


WebSocketHandler = Callable[[WebSocket], Coroutine[Any, Any, None]]


def websocket_endpoint(
    feed: ExchangeFeed,
    *,
    rng: random.Random | None = None,
    now_ms: Callable[[], int] = _default_now_ms,
) -> WebSocketHandler:
    """Return the Starlette WebSocket handler serving Kalshi's WebSocket API from ``feed``."""
    shared_rng = rng or random.Random()  # noqa: S311 - fault injection, not security
    hub = _Hub(feed)

    async def endpoint(websocket: WebSocket) -> None:
        account_id = feed.verify_request("GET", WS_PATH, websocket.headers)
        if account_id is None:
            await _refuse(websocket)
            return
        await websocket.accept()
        session = _Session(hub, account_id, shared_rng, now_ms)
        hub.attach(session)
        writer = asyncio.create_task(_write(websocket, session))
        try:
            while True:
                text = await websocket.receive_text()
                session.handle(text)
        except WebSocketDisconnect:
            pass
        except RuntimeError:
            pass  # the writer closed the socket (injected drop or overflow)
        finally:
            hub.sessions.discard(session)
            session.outbox.put_nowait(None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    return endpoint


def websocket_route(feed: ExchangeFeed, *, rng: random.Random | None = None) -> WebSocketRoute:
    """Return a Starlette route serving the WebSocket API at ``/trade-api/ws/v2``."""
    return WebSocketRoute(WS_PATH, websocket_endpoint(feed, rng=rng))


async def _refuse(websocket: WebSocket) -> None:
    body = {"code": "authentication_error", "message": "invalid or missing KALSHI-ACCESS-* headers"}
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse(body, status_code=401))
    else:  # servers without the denial extension answer 403
        await websocket.close(code=1008, reason="authentication required")


async def _write(websocket: WebSocket, session: _Session) -> None:
    faults = session.feed.faults
    while True:
        message = await session.outbox.get()
        if message is None:
            if session.broken:
                with contextlib.suppress(Exception):
                    await websocket.close(code=1011, reason="internal error")
            return
        if session.overflow:
            session.overflow = False
            err = {"id": 0, "type": "error", "msg": {"code": 25, "msg": ERROR_TEXT[25]}}
            with contextlib.suppress(Exception):
                await websocket.send_text(json.dumps(err))
                await websocket.close(code=1011, reason="buffer overflow")
            return
        if "msg" in message and "sid" in message and message.get("type") not in (
            "subscribed", "ok", "unsubscribed", "error",
        ) and session.rng.random() < faults.ws_drop_rate:
            log.info("injected WebSocket drop for account %s", session.account_id)
            with contextlib.suppress(Exception):
                await websocket.close(code=1011, reason="injected drop")
            return
        try:
            await websocket.send_text(json.dumps(message, separators=(",", ":")))
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
