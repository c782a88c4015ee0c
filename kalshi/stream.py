"""Kalshi WebSocket client: authenticated subscriptions, local order books, resync and reconnect.

Invariant: ``KalshiStream.book(ticker)`` returns a book only while it is provably current: it was
rebuilt from an ``orderbook_snapshot`` and every later message of its subscription arrived with
``seq`` exactly one more than the last. On a gap (or an impossible delta) the books of that
subscription are dropped and a fresh snapshot is requested with ``update_subscription``
``get_snapshot`` (falling back to a resubscribe if the server refuses); on a lost connection every
book is dropped, the stream reconnects with exponential backoff and jitter, and resubscribes.
Prices are integer cents; counts are exact ``Decimal`` contracts (Kalshi allows 0.01 steps).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from kalshi.errors import AuthError, KalshiError, NetworkError, WireFormatError
from kalshi.signing import KalshiAuth
from models.money import MoneyError, decimal_from_wire, price_cents_from_dollars

__all__ = [
    "KalshiStream",
    "LocalBook",
    "StreamMessage",
    "StreamHealth",
    "StreamCommandError",
    "ConnectionLost",
    "backoff_delay_s",
]

log = logging.getLogger(__name__)

_SEQUENCED = frozenset(
    {"orderbook_snapshot", "orderbook_delta", "trade", "market_lifecycle_v2", "order_group_updates"}
)
_REPLIES = frozenset({"subscribed", "unsubscribed", "ok", "error"})
_TERMINAL_CODES = frozenset({10, 17, 25})


class StreamCommandError(KalshiError):
    """The server answered a command with ``type: error``; ``ws_code`` is Kalshi's numeric code."""

    def __init__(self, cmd: str, ws_code: int, text: str) -> None:
        self.ws_code = ws_code
        super().__init__(text, path=cmd, code=str(ws_code))


class ConnectionLost(NetworkError):
    """The connection dropped before a command was answered (the stream will reconnect)."""


@dataclass(frozen=True)
class LocalBook:
    """One market's book: YES bids and NO bids (at NO prices), best first, counts exact."""

    ticker: str
    yes: tuple[tuple[int, Decimal], ...]
    no: tuple[tuple[int, Decimal], ...]

    @property
    def best_bid_cents(self) -> int | None:
        """Best YES bid in cents, or None."""
        return self.yes[0][0] if self.yes else None

    @property
    def best_ask_cents(self) -> int | None:
        """Best YES ask in cents (100 minus the best NO bid), or None."""
        return 100 - self.no[0][0] if self.no else None


@dataclass(frozen=True)
class StreamMessage:
    """One data message: its ``type``, subscription ``sid``, ``seq`` (or None) and ``msg``."""

    type: str
    channel: str
    sid: int
    seq: int | None
    msg: dict[str, Any]


@dataclass(frozen=True)
class StreamHealth:
    """Figures for the safety flows (the watchdog cancels everything when these go bad)."""

    connected: bool
    seconds_since_last_message: float | None
    reconnect_count: int
    resync_count: int
    seq_gap_count: int
    dropped_messages: int
    stale_books: tuple[str, ...]


def backoff_delay_s(attempt: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Return the wait before reconnect ``attempt`` (0-based): capped doubling, equal jitter."""
    base = min(max_s, initial_s * (1 << min(attempt, 30)))
    return base / 2 + rng.uniform(0, base / 2)


@dataclass
class _Intent:
    """What the caller wants from one channel; re-sent after every reconnect."""

    channel: str
    tickers: list[str] | None
    extra: dict[str, Any]
    sid: int | None = None
    generation: int = -1


@dataclass
class _Book:
    yes: dict[int, Decimal] = field(default_factory=dict)
    no: dict[int, Decimal] = field(default_factory=dict)
    valid: bool = False
    requested: bool = True  # a snapshot is on its way
    requested_at: float | None = None

    def view(self, ticker: str) -> LocalBook:
        def side(levels: dict[int, Decimal]) -> tuple[tuple[int, Decimal], ...]:
            return tuple(sorted(levels.items(), reverse=True))

        return LocalBook(ticker, side(self.yes), side(self.no))


@dataclass
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    on_reply: Callable[[dict[str, Any]], None] | None


class KalshiStream:
    """One managed WebSocket connection to Kalshi (or the paper exchange)."""

    def __init__(
        self,
        ws_url: str,
        auth: KalshiAuth,
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        command_timeout_s: float = 10.0,
        resync_timeout_s: float = 5.0,
        quiet_snapshot_s: float | None = 2.0,
        ping_interval_s: float | None = 20.0,
        queue_size: int = 10_000,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = ws_url
        self._sign_path = urlsplit(ws_url).path or "/trade-api/ws/v2"
        self._auth = auth
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._open_timeout_s = open_timeout_s
        self._command_timeout_s = command_timeout_s
        self._resync_timeout_s = resync_timeout_s
        self._quiet_snapshot_s = quiet_snapshot_s
        self._book_active_at = 0.0
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._ping_interval_s = ping_interval_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._clock = clock
        self._queue: asyncio.Queue[StreamMessage] = asyncio.Queue(maxsize=queue_size)
        self._intents: dict[str, _Intent] = {}
        self._channel_by_sid: dict[int, str] = {}
        self._last_seq: dict[int, int] = {}
        self._books: dict[str, _Book] = {}
        self._pending: dict[int, _Pending] = {}
        self._snapshot_ids: set[int] = set()
        self._next_id = 1
        self._ws: ClientConnection | None = None
        self._generation = 0
        self._connected = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fatal: KalshiError | None = None
        self._closing = False
        self._last_message_at: float | None = None
        self.reconnect_count = 0
        self.resync_count = 0
        self.seq_gap_count = 0
        self.dropped_messages = 0

    def __repr__(self) -> str:
        return f"KalshiStream(url={self._url!r}, connected={self._connected.is_set()})"

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect (raising ``AuthError`` if refused) and keep the connection up until close."""
        if self._runner is not None:
            raise RuntimeError("stream already started")
        self._runner = asyncio.create_task(self._run(), name="kalshi-stream")
        waiter = asyncio.create_task(self._connected.wait())
        try:
            await asyncio.wait({waiter, self._runner}, timeout=self._open_timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._fatal is not None:
            await self.close()
            raise self._fatal
        if not self._connected.is_set():
            await self.close()
            raise NetworkError(f"no WebSocket connection within {self._open_timeout_s}s",
                               path=self._sign_path)

    async def close(self) -> None:
        """Close the connection and stop reconnecting."""
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
        for task in [*self._tasks, *([self._runner] if self._runner else [])]:
            task.cancel()
        for task in [*self._tasks, *([self._runner] if self._runner else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._fail_pending()

    async def __aenter__(self) -> KalshiStream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- public commands -------------------------------------------------------------------
    async def subscribe(
        self, channel: str, market_tickers: Iterable[str] | None = None, **params: Any
    ) -> int:
        """Subscribe to ``channel`` (all markets if no tickers) and return its ``sid``.

        A second subscribe to the same channel adds its markets to the existing subscription,
        as Kalshi does. Extra ``params`` (``send_initial_snapshot``...) are sent as given.
        """
        tickers = list(dict.fromkeys(market_tickers)) if market_tickers is not None else None
        existing = self._intents.get(channel)
        if existing is not None:
            if existing.tickers is not None and tickers is None:
                raise ValueError(f"channel {channel!r} is subscribed with a market filter; "
                                 "unsubscribe before subscribing to all markets")
            if tickers and existing.tickers is not None:
                new = [t for t in tickers if t not in existing.tickers]
                if new:
                    await self.add_markets(channel, new)
            return await self._sid_of(channel)
        intent = _Intent(channel, tickers, dict(params))
        self._intents[channel] = intent
        try:
            await self._wait_connected()
            if intent.generation != self._generation:
                with contextlib.suppress(ConnectionLost):  # the reconnect resubscribes it
                    await self._send_subscribe(intent)
            return await self._sid_of(channel)
        except StreamCommandError:
            self._intents.pop(channel, None)
            raise

    async def unsubscribe(self, channel: str) -> None:
        """Cancel the subscription to ``channel`` (and drop its books)."""
        intent = self._intents.pop(channel, None)
        if intent is None:
            raise ValueError(f"not subscribed to channel {channel!r}")
        if channel == "orderbook_delta":
            self._books.clear()
        if intent.sid is not None and self._connected.is_set():
            sid = intent.sid
            await self._command("unsubscribe", {"sids": [sid]}, on_reply=self._forget_sid(sid))

    async def add_markets(self, channel: str, market_tickers: Iterable[str]) -> None:
        """Add markets to the subscription of ``channel`` (order books get snapshots)."""
        await self._update_markets(channel, list(market_tickers), "add_markets")

    async def delete_markets(self, channel: str, market_tickers: Iterable[str]) -> None:
        """Remove markets from the subscription of ``channel``."""
        await self._update_markets(channel, list(market_tickers), "delete_markets")

    async def request_snapshot(self, market_tickers: Iterable[str] | None = None) -> None:
        """Ask for fresh order-book snapshots (all subscribed markets by default)."""
        intent = self._intents.get("orderbook_delta")
        if intent is None or intent.sid is None:
            raise ValueError("not subscribed to orderbook_delta")
        tickers = list(market_tickers) if market_tickers is not None else list(intent.tickers or ())
        for ticker in tickers:
            self._books.setdefault(ticker, _Book()).valid = False
        await self._request_snapshots(intent.sid, tickers)

    # ---- reads -----------------------------------------------------------------------------
    def book(self, ticker: str) -> LocalBook | None:
        """Return the current local book of ``ticker``, or None while it is not provably current."""
        book = self._books.get(ticker)
        if book is None or not book.valid:
            return None
        return book.view(ticker)

    async def wait_books(self, tickers: Iterable[str], timeout_s: float = 5.0) -> None:
        """Wait until every book in ``tickers`` is current (raise ``TimeoutError`` otherwise)."""
        wanted = list(tickers)
        async with asyncio.timeout(timeout_s):
            while any(self.book(t) is None for t in wanted):
                await asyncio.sleep(0.005)

    async def next_message(self, timeout_s: float | None = None) -> StreamMessage:
        """Return the next data message (all channels, in arrival order)."""
        async with asyncio.timeout(timeout_s):
            return await self._queue.get()

    async def messages(self) -> AsyncIterator[StreamMessage]:
        """Iterate over data messages until the stream is closed."""
        while not self._closing:
            yield await self._queue.get()

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is currently open."""
        return self._connected.is_set()

    @property
    def seconds_since_last_message(self) -> float | None:
        """Seconds since any message arrived (None before the first)."""
        if self._last_message_at is None:
            return None
        return self._clock() - self._last_message_at

    def health(self) -> StreamHealth:
        """Return the stream's health figures."""
        stale = tuple(sorted(t for t, b in self._books.items() if not b.valid))
        return StreamHealth(self.connected, self.seconds_since_last_message,
                            self.reconnect_count, self.resync_count, self.seq_gap_count,
                            self.dropped_messages, stale)

    # ---- connection loop -------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        ever_connected = False
        while not self._closing:
            try:
                headers = self._auth.headers_for("GET", self._sign_path)
                async with connect(self._url, additional_headers=headers,
                                   open_timeout=self._open_timeout_s,
                                   ping_interval=self._ping_interval_s,
                                   max_queue=None) as ws:
                    attempt = 0
                    self._ws = ws
                    self._generation += 1
                    if ever_connected:
                        self.reconnect_count += 1
                    ever_connected = True
                    self._connected.set()
                    self._spawn(self._resubscribe_all(self._generation))
                    async for raw in ws:
                        self._on_raw(raw)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    self._fatal = AuthError("WebSocket handshake refused", method="GET",
                                            path=self._sign_path, status=status)
                    return
                log.warning("WebSocket handshake failed with HTTP %s", status)
            except InvalidURI as exc:
                self._fatal = KalshiError(f"invalid WebSocket URL: {exc}")
                return
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                log.info("WebSocket connection lost: %s", type(exc).__name__)
            finally:
                self._on_disconnect()
            if self._closing:
                return
            delay = backoff_delay_s(attempt, *self._backoff, self._rng)
            attempt += 1
            await asyncio.sleep(delay)

    def _on_disconnect(self) -> None:
        self._ws = None
        self._connected.clear()
        self._fail_pending()
        self._channel_by_sid.clear()
        self._last_seq.clear()
        self._snapshot_ids.clear()
        for intent in self._intents.values():
            intent.sid = None
        for book in self._books.values():
            book.valid = False
            book.requested = True  # the resubscribe sends a snapshot

    def _fail_pending(self) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(ConnectionLost("connection lost before the reply"))
        self._pending.clear()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.warning("WebSocket background command failed: %s", exc)

    async def _resubscribe_all(self, generation: int) -> None:
        for intent in list(self._intents.values()):
            if generation != self._generation:
                return
            if intent.generation != generation:
                with contextlib.suppress(StreamCommandError, ConnectionLost):
                    await self._send_subscribe(intent)

    async def _wait_connected(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        try:
            async with asyncio.timeout(self._command_timeout_s):
                await self._connected.wait()
        except TimeoutError:
            raise ConnectionLost("not connected", path=self._sign_path) from None

    async def _sid_of(self, channel: str) -> int:
        try:
            async with asyncio.timeout(self._command_timeout_s):
                while True:
                    intent = self._intents.get(channel)
                    if intent is None:
                        raise ConnectionLost(f"subscription to {channel!r} was cancelled")
                    if intent.sid is not None:
                        return intent.sid
                    await asyncio.sleep(0.005)
        except TimeoutError:
            raise ConnectionLost(f"no subscription to {channel!r} within "
                                 f"{self._command_timeout_s}s", path="subscribe") from None

    # ---- commands --------------------------------------------------------------------------
    async def _command(
        self,
        cmd: str,
        params: dict[str, Any],
        on_reply: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        ws = self._ws
        if ws is None:
            raise ConnectionLost("not connected", path=cmd)
        cmd_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cmd_id] = _Pending(future, on_reply)
        try:
            await ws.send(json.dumps({"id": cmd_id, "cmd": cmd, "params": params}))
            async with asyncio.timeout(self._command_timeout_s):
                reply = await future
        except ConnectionClosed:
            raise ConnectionLost("connection lost while sending", path=cmd) from None
        except TimeoutError:
            raise ConnectionLost(f"no reply within {self._command_timeout_s}s", path=cmd) from None
        finally:
            self._pending.pop(cmd_id, None)
        if reply.get("type") == "error":
            code = _field(reply, "code")
            raise StreamCommandError(cmd, code if isinstance(code, int) else 0,
                                     str(_field(reply, "msg") or "error without a message"))
        return reply

    async def _send_subscribe(self, intent: _Intent) -> None:
        intent.generation = self._generation
        params: dict[str, Any] = {"channels": [intent.channel], **intent.extra}
        if intent.tickers is not None:
            params["market_tickers"] = list(intent.tickers)
            if intent.channel == "orderbook_delta":
                for ticker in intent.tickers:
                    book = self._books.setdefault(ticker, _Book())
                    book.valid, book.requested, book.requested_at = False, True, None

        def bind(reply: dict[str, Any]) -> None:  # runs before the snapshot is read
            sid = _field(reply, "sid")
            if reply.get("type") == "subscribed" and isinstance(sid, int):
                intent.sid = sid
                self._channel_by_sid[sid] = intent.channel
                self._last_seq[sid] = 0

        await self._command("subscribe", params, on_reply=bind)
        if intent.channel == "orderbook_delta" and intent.sid is not None:
            now = self._clock()
            for ticker in intent.tickers or ():
                waiting = self._books.get(ticker)
                if waiting is not None and not waiting.valid:
                    waiting.requested_at = now
            asyncio.get_running_loop().call_later(self._resync_timeout_s, self._check_resync,
                                                  intent.sid)

    def _forget_sid(self, sid: int) -> Callable[[dict[str, Any]], None]:
        def forget(reply: dict[str, Any]) -> None:
            self._channel_by_sid.pop(sid, None)
            self._last_seq.pop(sid, None)

        return forget

    async def _update_markets(self, channel: str, tickers: list[str], action: str) -> None:
        intent = self._intents.get(channel)
        if intent is None:
            raise ValueError(f"not subscribed to channel {channel!r}")
        if intent.tickers is None:
            raise ValueError(f"channel {channel!r} covers all markets")
        sid = await self._sid_of(channel)

        def apply(reply: dict[str, Any]) -> None:  # runs before the new snapshots are read
            if reply.get("type") != "ok" or intent.tickers is None:
                return
            if action == "add_markets":
                intent.tickers.extend(t for t in tickers if t not in intent.tickers)
                if channel == "orderbook_delta":
                    for ticker in tickers:
                        self._books.setdefault(ticker, _Book())
            else:
                intent.tickers[:] = [t for t in intent.tickers if t not in tickers]
                if channel == "orderbook_delta":
                    for ticker in tickers:
                        self._books.pop(ticker, None)

        await self._command("update_subscription",
                            {"sid": sid, "market_tickers": tickers, "action": action},
                            on_reply=apply)

    async def _request_snapshots(self, sid: int, tickers: list[str], resync: bool = True) -> None:
        ws = self._ws
        if ws is None or not tickers:
            return
        cmd_id = self._next_id
        self._next_id += 1
        self._snapshot_ids.add(cmd_id)
        now = self._clock()
        for ticker in tickers:
            book = self._books.setdefault(ticker, _Book())
            book.requested, book.requested_at = True, now
        self.resync_count += resync
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"id": cmd_id, "cmd": "update_subscription", "params": {
                "sid": sid, "market_tickers": tickers, "action": "get_snapshot"}}))
        asyncio.get_running_loop().call_later(self._resync_timeout_s, self._check_resync, sid)

    def _check_resync(self, sid: int) -> None:
        # a snapshot can be lost too (and a quiet market shows no gap): ask again when late
        intent = self._intents.get("orderbook_delta")
        if intent is None or intent.sid != sid or self._closing:
            return
        deadline = self._clock() - self._resync_timeout_s
        late = [t for t, b in self._books.items()
                if b.requested_at is not None and b.requested_at <= deadline]
        if late:
            log.info("no snapshot within %ss for %s; asking again", self._resync_timeout_s, late)
            self._spawn(self._request_snapshots(sid, late))

    async def _resubscribe(self, intent: _Intent) -> None:
        # get_snapshot was refused or never answered: start the subscription over
        sid = intent.sid
        if sid is None or self._ws is None:
            return
        intent.sid = None
        self.resync_count += 1
        with contextlib.suppress(StreamCommandError):
            await self._command("unsubscribe", {"sids": [sid]}, on_reply=self._forget_sid(sid))
        await self._send_subscribe(intent)

    # ---- incoming --------------------------------------------------------------------------
    def _on_raw(self, raw: str | bytes) -> None:
        self._last_message_at = self._clock()
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise WireFormatError("expected a JSON object", field="message", value=data)
        except (json.JSONDecodeError, WireFormatError) as exc:
            log.warning("unreadable WebSocket message: %s", exc)
            return
        kind = data.get("type")
        cmd_id = data.get("id")
        if kind in _REPLIES:
            self._on_reply(kind, cmd_id, data)
            return
        sid = data.get("sid")
        if not isinstance(sid, int) or sid not in self._channel_by_sid:
            return  # a late message of a subscription we already left
        channel = self._channel_by_sid[sid]
        seq = data.get("seq")
        msg = data.get("msg")
        if not isinstance(msg, dict):
            log.warning("WebSocket %s message without msg object (sid %s)", kind, sid)
            return
        gap = False
        if kind in _SEQUENCED and isinstance(seq, int):
            expected = self._last_seq.get(sid, 0) + 1
            gap = seq != expected
            self._last_seq[sid] = seq
            if gap:
                self.seq_gap_count += 1
                log.info("seq gap on sid %s: expected %s, got %s", sid, expected, seq)
        if channel == "orderbook_delta":
            if isinstance(cmd_id, int):  # the answer to a get_snapshot: it was not refused
                self._snapshot_ids.discard(cmd_id)
            self._on_book_message(sid, str(kind), msg, gap)
        # (a gap on trade or lifecycle has nothing to rebuild; it is counted for the watchdog)
        if self._queue.full():
            self.dropped_messages += 1
            return
        self._queue.put_nowait(
            StreamMessage(str(kind), channel, sid, seq if isinstance(seq, int) else None, msg))

    def _on_reply(self, kind: str, cmd_id: object, data: dict[str, Any]) -> None:
        if isinstance(cmd_id, int) and cmd_id in self._snapshot_ids:
            self._snapshot_ids.discard(cmd_id)
            if kind != "error":
                return
            intent = self._intents.get("orderbook_delta")
            if intent is not None:
                self._spawn(self._resubscribe(intent))
            return
        pending = self._pending.get(cmd_id) if isinstance(cmd_id, int) else None
        if pending is None:
            if kind == "error":
                code = _field(data, "code")
                log.warning("WebSocket error without a pending command: code %s", code)
                if code in _TERMINAL_CODES and isinstance(data.get("sid"), int):
                    self._gap_all(int(data["sid"]), None)
            return
        if pending.on_reply is not None:
            pending.on_reply(data)
        if not pending.future.done():
            pending.future.set_result(data)

    def _on_book_message(self, sid: int, kind: str, msg: dict[str, Any], gap: bool) -> None:
        ticker = msg.get("market_ticker")
        if not isinstance(ticker, str):
            self._gap_all(sid, None)
            return
        if gap:
            self._gap_all(sid, ticker if kind == "orderbook_snapshot" else None)
        try:
            if kind == "orderbook_snapshot":
                book = self._books.setdefault(ticker, _Book())
                book.yes = _levels(msg.get("yes_dollars_fp"), "yes_dollars_fp")
                book.no = _levels(msg.get("no_dollars_fp"), "no_dollars_fp")
                book.valid, book.requested, book.requested_at = True, False, None
            elif kind == "orderbook_delta":
                current = self._books.get(ticker)
                if current is None or not current.valid:
                    return
                book = current
                self._note_book_activity()
                price = price_cents_from_dollars(msg.get("price_dollars"), field="price_dollars")
                delta = decimal_from_wire(msg.get("delta_fp"), field="delta_fp")
                side = msg.get("side")
                if side not in ("yes", "no"):
                    raise WireFormatError("side must be yes or no", field="side", value=side)
                levels = book.yes if side == "yes" else book.no
                new = levels.get(price, Decimal(0)) + delta
                if new < 0:
                    raise WireFormatError("delta takes a level below zero", field="delta_fp",
                                          value=msg.get("delta_fp"))
                if new == 0:
                    levels.pop(price, None)
                else:
                    levels[price] = new
        except (MoneyError, WireFormatError) as exc:
            if kind == "orderbook_snapshot":
                # asking again would get the same snapshot: leave the book stale (health shows it)
                log.error("order book snapshot for %s unusable: %s", ticker, exc)
                broken = self._books.setdefault(ticker, _Book())
                broken.valid, broken.requested, broken.requested_at = False, False, None
                return
            log.warning("order book message for %s rejected, resyncing: %s", ticker, exc)
            self._gap_all(sid, None)

    def _note_book_activity(self) -> None:
        self._book_active_at = self._clock()
        if self._quiet_snapshot_s is not None and self._quiet_timer is None:
            self._quiet_timer = asyncio.get_running_loop().call_later(
                self._quiet_snapshot_s, self._quiet_check)

    def _quiet_check(self) -> None:
        # A lost *last* delta shows no gap until the next message, which in a quiet market may
        # never come: once the deltas stop, confirm the books with one snapshot.
        self._quiet_timer = None
        intent = self._intents.get("orderbook_delta")
        if self._closing or self._quiet_snapshot_s is None or intent is None or intent.sid is None:
            return
        idle = self._clock() - self._book_active_at
        if idle < self._quiet_snapshot_s:
            self._quiet_timer = asyncio.get_running_loop().call_later(
                self._quiet_snapshot_s - idle, self._quiet_check)
            return
        tickers = [t for t in intent.tickers or () if t in self._books]
        self._spawn(self._request_snapshots(intent.sid, tickers, resync=False))

    def _gap_all(self, sid: int, keep: str | None) -> None:
        # every book of this subscription may have missed the lost message
        intent = self._intents.get(self._channel_by_sid.get(sid, ""))
        tickers = list(intent.tickers or ()) if intent is not None else list(self._books)
        need: list[str] = []
        for ticker in tickers:
            if ticker == keep:
                continue
            # even a book already waiting may have lost its snapshot in this gap: ask again
            self._books.setdefault(ticker, _Book()).valid = False
            need.append(ticker)
        if need:
            self._spawn(self._request_snapshots(sid, need))


def _field(message: dict[str, Any], name: str) -> Any:
    # a field of the reply's ``msg`` object, or None when ``msg`` is absent or not an object
    inner = message.get("msg")
    return inner.get(name) if isinstance(inner, dict) else None


def _levels(raw: object, name: str) -> dict[int, Decimal]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise WireFormatError("expected a list of [price, count] pairs", field=name, value=raw)
    levels: dict[int, Decimal] = {}
    for pair in raw:
        if not isinstance(pair, list) or len(pair) != 2:
            raise WireFormatError("expected a [price, count] pair", field=name, value=pair)
        price = price_cents_from_dollars(pair[0], field=name)
        count = decimal_from_wire(pair[1], field=name)
        if count <= 0:
            raise WireFormatError("level count must be positive", field=name, value=pair)
        levels[price] = count
    return levels
