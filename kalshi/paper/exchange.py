"""``PaperExchange``: the matching engine plus persistence, keys, clock, faults and listeners.

Invariants:
- Every mutation goes through ``run()`` (or ``call()`` from another thread): the engine applies it
  on the event-loop thread, the command is appended to the log in that same order, and the caller is
  answered only after the log row is committed. Listeners see each Outcome after its commit, in
  log order. The commands applied during one pass of the event loop are handed to the store
  together at the end of that pass (``_flush``), so they share one transaction and one fsync.
- Startup and recovery are one code path (crash-only): the constructor replays the committed log
  through a fresh deterministic ``Engine`` with the logged ``now_ms`` values.
- A request is authenticated only by a valid RSA-PSS signature of ``timestamp + METHOD + path`` by a
  registered key, with a timestamp within ``max_skew_ms`` of the exchange clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi.paper.store import CommandStore, KeyRecord, StoreError
from kalshi.signing import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    load_public_key,
    signing_message,
    verify,
)
from models.fees import FeeSchedule
from models.matching import BookView, Engine, EngineReject, MarketSpec, OrderRequest, Outcome

__all__ = [
    "Faults",
    "FaultsError",
    "PaperExchange",
    "RateLimiter",
    "TIERS",
    "TokenBucket",
    "outcome_is_empty",
    "wall_clock_ms",
]

log = logging.getLogger(__name__)

Listener = Callable[[Outcome], None]

# (read tokens/s, read capacity s, write tokens/s, write capacity s) per Kalshi usage tier
# (reference kalshi-v2-contract.md s.11); "unlimited" is a paper-only tier for benchmarks.
TIERS: dict[str, tuple[int, int, int, int] | None] = {
    "basic": (200, 2, 100, 1),
    "advanced": (300, 2, 300, 2),
    "expert": (600, 1, 600, 2),
    "premier": (1000, 1, 1000, 2),
    "paragon": (2000, 1, 2000, 2),
    "prime": (4000, 1, 4000, 2),
    "prestige": (10000, 1, 8000, 2),
    "unlimited": None,
}
DEFAULT_TIER = "prestige"


def wall_clock_ms() -> int:
    """Return the wall clock in Unix milliseconds (the exchange's default clock)."""
    return time.time_ns() // 1_000_000


def outcome_is_empty(outcome: Outcome) -> bool:
    """Return whether an engine Outcome reports no change at all."""
    return not any(getattr(outcome, f.name) for f in fields(outcome))


class FaultsError(ValueError):
    """A fault setting out of range; the message names the field and value."""


@dataclass(frozen=True)
class Faults:
    """Injected faults. Rates are probabilities per request (0..1); latency in milliseconds."""

    latency_ms: int = 0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    drop_after_accept: float = 0.0
    ws_drop_rate: float = 0.0
    seq_gap_rate: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Faults | None = None) -> Faults:
        """Return ``base`` updated with ``data``; refuse unknown fields and out-of-range values."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FaultsError(f"unknown fault field(s) {unknown}; known: {sorted(names)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FaultsError(f"{name}: expected a number (got {value!r})")
            if name == "latency_ms":
                if not isinstance(value, int) or not 0 <= value <= 600_000:
                    raise FaultsError(f"latency_ms: expected an int in 0..600000 (got {value!r})")
            elif not 0.0 <= float(value) <= 1.0:
                raise FaultsError(f"{name}: expected a probability in 0..1 (got {value!r})")
            values[name] = value if name == "latency_ms" else float(value)
        return replace(base or cls(), **values)


@dataclass
class TokenBucket:
    """A continuously refilling token bucket (Kalshi's rate-limit model)."""

    rate_per_s: float
    capacity: float
    tokens: float
    last_s: float

    def take(self, cost: int, now_s: float) -> bool:
        """Spend ``cost`` tokens if available at ``now_s``; return whether it was allowed."""
        elapsed = max(0.0, now_s - self.last_s)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.last_s = now_s
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False


class RateLimiter:
    """Per-key Read and Write token buckets sized by the key's tier."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def allow(self, key_id: str, tier: str, bucket: str, cost: int) -> bool:
        """Return whether ``key_id`` may spend ``cost`` tokens from its ``bucket`` now."""
        limits = TIERS[tier]
        if limits is None:
            return True
        read_rate, read_cap, write_rate, write_cap = limits
        rate, cap_s = (write_rate, write_cap) if bucket == "write" else (read_rate, read_cap)
        now = self._monotonic()
        found = self._buckets.get((key_id, bucket))
        if found is None or found.rate_per_s != rate:
            found = TokenBucket(rate, float(rate * cap_s), float(rate * cap_s), now)
            self._buckets[(key_id, bucket)] = found
        return found.take(cost, now)

    def forget(self, key_id: str) -> None:
        """Drop a key's buckets (after its tier changed)."""
        for bucket in ("read", "write"):
            self._buckets.pop((key_id, bucket), None)


@dataclass(frozen=True)
class _Key:
    key_id: str
    account_id: str
    public_key: rsa.RSAPublicKey
    tier: str


class _PendingOutcomes:
    # One applied command awaiting its commit; ``future`` is set when it is handed to the store.
    __slots__ = ("future", "outcomes", "seq", "waiter")

    def __init__(self, outcomes: tuple[Outcome, ...], waiter: asyncio.Future[int]) -> None:
        self.future: Future[int] | None = None
        self.seq = 0
        self.outcomes = outcomes
        self.waiter = waiter


def _spec_args(spec: MarketSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["fee"] = {"fee_type": spec.fee.fee_type, "fee_multiplier": str(spec.fee.fee_multiplier)}
    return data


def _spec_from_args(data: Mapping[str, Any]) -> MarketSpec:
    fee = data.get("fee") or {}
    schedule = FeeSchedule(
        fee_type=str(fee.get("fee_type", "quadratic")),
        fee_multiplier=Decimal(str(fee.get("fee_multiplier", "1"))),
    )
    return MarketSpec(**{**dict(data), "fee": schedule})


class PaperExchange:
    """The paper venue's state. Mutate with ``await run(kind, args)``; read ``engine`` directly."""

    def __init__(
        self,
        db_path: str | Path,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        monotonic: Callable[[], float] = time.monotonic,
        id_prefix: str = "",
        max_skew_ms: int = 5_000,
        synchronous: str = "FULL",
        seed: int | None = None,
        advance_interval_s: float = 0.5,
    ) -> None:
        self.clock = clock
        self.max_skew_ms = max_skew_ms
        self.advance_interval_s = advance_interval_s
        self.store = CommandStore(db_path, synchronous=synchronous)
        self.engine = Engine(id_prefix)
        self.rng = random.Random(seed)
        self.rate_limiter = RateLimiter(monotonic)
        self.faults = Faults.from_dict(self.store.setting("faults", {}))
        self._listeners: list[Listener] = []
        self._pending: deque[_PendingOutcomes] = deque()
        # applied commands not yet handed to the store: flushed once per event-loop pass, so
        # every order a pass handles joins the same group commit (one hand-off, one fsync)
        self._outbox: list[tuple[int, str, dict[str, Any], _PendingOutcomes]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._last_now_ms = 0
        self._keys: dict[str, _Key] = {}
        self._accounts: set[str] = set()
        self._trade_index: dict[str, deque[tuple[int, int]]] = {}  # ticker -> (ts_ms, count)
        for record in self.store.api_keys():
            self._keys[record.key_id] = self._key_from_record(record)
        self.series_raw = self.store.references("series")
        self.events_raw = self.store.references("event")
        self.markets_raw = self.store.references("market")
        started = time.perf_counter()
        self.replayed_commands = self._replay()
        self.replay_seconds = time.perf_counter() - started

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind to the running event loop and start the periodic ``advance`` (expiry, close)."""
        self._bind(asyncio.get_running_loop())
        if self.advance_interval_s > 0 and self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_forever(), name="paper-advance")

    async def stop(self) -> None:
        """Stop the ticker; every queued command is committed when ``close()`` runs."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    def close(self) -> None:
        """Commit what is queued and close the database."""
        self._flush()
        self.store.close()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.advance_interval_s)
            try:
                await self.run("advance", {})
            except (StoreError, EngineReject):
                log.exception("paper exchange: advance failed")

    # --- mutations -----------------------------------------------------------------------------

    def _now(self) -> int:
        now = max(self.clock(), self._last_now_ms)  # the log's now_ms never goes backwards
        self._last_now_ms = now
        return now

    async def run(self, kind: str, args: dict[str, Any]) -> Any:
        """Apply one command, commit it, notify listeners; return the engine's result.

        Raises ``EngineReject`` (nothing applied, nothing logged) or ``StoreError``.
        """
        if self._failed is not None:
            raise StoreError(f"paper exchange stopped after a failed commit: {self._failed}")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or a new event loop (tests run several)
            self._bind(loop)
        now_ms = self._now()
        result, outcomes = self._apply_and_index(kind, now_ms, args)
        if kind == "advance" and all(outcome_is_empty(o) for o in outcomes):
            return result
        waiter: asyncio.Future[int] = loop.create_future()
        entry = _PendingOutcomes(outcomes, waiter)
        self._pending.append(entry)
        self._outbox.append((now_ms, kind, args, entry))
        if len(self._outbox) == 1:
            loop.call_soon(self._flush)
        # a caller that gives up (timeout, disconnect) cancels only its waiter, never the commit:
        # the writer thread commits the row regardless and _on_commit skips the cancelled waiter
        await waiter
        return result

    def _flush(self) -> None:
        # event-loop thread (or close() once the loop is gone): hand the outbox to the store as
        # one unit, in application order
        outbox = self._outbox
        if not outbox:
            return
        self._outbox = []
        try:
            first, future = self.store.append_many([(now, kind, args)
                                                    for now, kind, args, _ in outbox])
        except StoreError as exc:  # applied in memory but not logged: stop accepting writes
            self._failed = exc
            for _ in outbox:  # they are the newest entries of _pending
                self._pending.pop()
            for *_, entry in outbox:
                if not entry.waiter.done():
                    entry.waiter.set_exception(exc)
            return
        for i, (*_, entry) in enumerate(outbox):
            entry.future = future
            entry.seq = first + i

    async def catch_up(self) -> None:
        """Apply (and commit) what is due by now: market opens and closes, order expiries.

        Reads call this first, so a market past its ``close_time`` reads as closed at once
        rather than after the next periodic tick. It also waits for the commit of every command
        already applied: a read never shows a fill or an order that a kill -9 could take back.
        """
        await self.run("advance", {})
        self._flush()
        if self._pending:
            last = self._pending[-1].future
            assert last is not None  # flushed just above
            await asyncio.wrap_future(last)

    def call(self, kind: str, args: dict[str, Any], timeout_s: float = 30.0) -> Any:
        """Run a command from another thread (tests, CLI helpers) and wait for its commit."""
        if self._loop is None:
            raise RuntimeError("PaperExchange.call needs a started exchange (await start())")
        return asyncio.run_coroutine_threadsafe(self.run(kind, args), self._loop).result(timeout_s)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        self._flush()  # a previous loop's unflushed commands go first, in order
        self._loop = loop

        def wake() -> None:  # writer thread, once per committed batch
            with contextlib.suppress(RuntimeError):  # the loop closed (shutdown): rows are kept
                loop.call_soon_threadsafe(self._on_commit)

        self.store.set_commit_hook(wake)
        return loop

    def _on_commit(self) -> None:
        # event-loop thread: answer the waiters of every committed command, then the listeners,
        # in log order
        pending = self._pending
        while pending:
            future = pending[0].future
            if future is None or not future.done():
                break
            entry = pending.popleft()
            waiter = entry.waiter
            error = None if future.cancelled() else future.exception()
            if error is not None:
                if self._failed is None:
                    self._failed = error
                if not waiter.done():
                    waiter.set_exception(error)
                continue
            if not waiter.done():
                waiter.set_result(entry.seq)
            for outcome in entry.outcomes:
                for listener in list(self._listeners):
                    try:
                        listener(outcome)
                    except Exception:  # a subscriber's bug must not stop the venue
                        log.exception("paper exchange listener %r failed", listener)

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(outcome)`` after each committed Outcome; return a function that removes it."""
        self._listeners.append(fn)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(fn)

        return remove

    def _replay(self) -> int:
        count = 0
        for command in self.store.commands():
            self._last_now_ms = max(self._last_now_ms, command.now_ms)
            try:
                self._apply_and_index(command.kind, command.now_ms, command.args)
            except EngineReject as exc:  # cannot happen for a logged command: it was accepted
                log.error("replay of command %d (%s) rejected: %s", command.seq, command.kind, exc)
            count += 1
        return count

    def _apply_and_index(
        self, kind: str, now_ms: int, args: Mapping[str, Any]
    ) -> tuple[Any, tuple[Outcome, ...]]:
        result, outcomes = self._apply(kind, now_ms, args)
        for outcome in outcomes:
            for trade in outcome.trades:
                self._trade_index.setdefault(trade.ticker, deque()).append(
                    (trade.ts_ms, trade.count)
                )
        return result, outcomes

    def market_activity(self, ticker: str, now_ms: int) -> tuple[int | None, int]:
        """Return (last trade time in ms or None, contracts traded in the 24 h before now_ms)."""
        trades = self._trade_index.get(ticker)
        if not trades:
            return None, 0
        cutoff = now_ms - 86_400_000
        while len(trades) > 1 and trades[0][0] < cutoff:  # older trades never count again
            trades.popleft()
        return trades[-1][0], sum(count for ts, count in trades if ts >= cutoff)

    def _apply(
        self, kind: str, now_ms: int, args: Mapping[str, Any]
    ) -> tuple[Any, tuple[Outcome, ...]]:
        engine = self.engine
        a = args
        if kind == "advance":
            return None, (engine.advance(now_ms),)
        if kind == "add_account":
            engine.add_account(a["account_id"], a["balance_cents"])
            self._accounts.add(str(a["account_id"]))
            return None, (Outcome(balances={a["account_id"]: a["balance_cents"]}),)
        if kind == "deposit":
            engine.deposit(a["account_id"], a["cents"])
            balance = engine.balance_cents(a["account_id"])
            return None, (Outcome(balances={a["account_id"]: balance}),)
        if kind == "add_market":
            return None, (engine.add_market(_spec_from_args(a["spec"]), now_ms),)
        if kind == "add_markets":
            rejects: list[EngineReject | None] = []
            listed: list[Outcome] = []
            for data in a["specs"]:
                try:
                    listed.append(engine.add_market(_spec_from_args(data), now_ms))
                except EngineReject as exc:
                    rejects.append(exc)
                else:
                    rejects.append(None)
            return rejects, tuple(listed)
        if kind == "determine":
            return None, (engine.determine(a["ticker"], a["result"], now_ms),)
        if kind == "settle":
            return None, (engine.settle(a["ticker"], now_ms),)
        # every engine call first applies what is due by now_ms (expiry, close) itself
        return self._apply_order_command(kind, now_ms, a)

    def _apply_order_command(
        self, kind: str, now_ms: int, a: Mapping[str, Any]
    ) -> tuple[Any, tuple[Outcome, ...]]:
        engine = self.engine
        if kind == "submit":
            order, outcome = engine.submit(OrderRequest(**a["request"]), now_ms)
            return order, (outcome,)
        if kind == "submit_batch":
            results: list[Any] = []
            outcomes: list[Outcome] = []
            for item in a["requests"]:
                try:
                    order, outcome = engine.submit(OrderRequest(**item), now_ms)
                except EngineReject as exc:
                    results.append(exc)
                else:
                    results.append(order)
                    outcomes.append(outcome)
            return results, tuple(outcomes)
        if kind == "amend":
            order, outcome = engine.amend(
                a["account_id"], a["order_id"], price_cents=a["price_cents"], count=a["count"],
                now_ms=now_ms, updated_client_order_id=a.get("updated_client_order_id"),
                expiration_ts_ms=a.get("expiration_ts_ms"),
            )
            return order, (outcome,)
        if kind == "decrease":
            order, outcome = engine.decrease(
                a["account_id"], a["order_id"], now_ms=now_ms, reduce_by=a.get("reduce_by"),
                reduce_to=a.get("reduce_to"),
            )
            return order, (outcome,)
        if kind == "cancel":
            order, reduced_by, outcome = engine.cancel(a["account_id"], a["order_id"], now_ms)
            return (order, reduced_by), (outcome,)
        if kind == "cancel_batch":
            items: list[Any] = []
            outcomes = []
            for order_id in a["order_ids"]:
                try:
                    order, reduced_by, outcome = engine.cancel(a["account_id"], order_id, now_ms)
                except EngineReject as exc:
                    items.append(exc)
                else:
                    items.append((order, reduced_by))
                    outcomes.append(outcome)
            return items, tuple(outcomes)
        if kind == "cancel_all":
            return None, (engine.cancel_all(a["account_id"], now_ms),)
        if kind == "create_group":
            group_id, outcome = engine.create_order_group(
                a["account_id"], a["contracts_limit"], now_ms
            )
            return group_id, (outcome,)
        if kind in ("trigger_group", "reset_group", "delete_group"):
            method = {
                "trigger_group": engine.trigger_order_group,
                "reset_group": engine.reset_order_group,
                "delete_group": engine.delete_order_group,
            }[kind]
            return None, (method(a["account_id"], a["group_id"], now_ms),)
        if kind == "group_limit":
            outcome = engine.set_order_group_limit(
                a["account_id"], a["group_id"], a["contracts_limit"], now_ms
            )
            return None, (outcome,)
        raise ValueError(f"unknown paper exchange command kind {kind!r}")

    # --- keys and authentication ---------------------------------------------------------------

    def _key_from_record(self, record: KeyRecord) -> _Key:
        public_key = load_public_key(record.public_key_pem.encode())
        return _Key(record.key_id, record.account_id, public_key, record.tier)

    async def add_key(
        self,
        key_id: str,
        public_key_pem: str,
        *,
        balance_cents: int = 0,
        account_id: str | None = None,
        tier: str = DEFAULT_TIER,
    ) -> str:
        """Register a public key (like uploading it to Kalshi) and fund its account.

        A new account starts with ``balance_cents``; for an existing account it is a deposit.
        Returns the account id. Raises ``ValueError`` naming the bad field.
        """
        if not key_id or len(key_id) > 200:
            raise ValueError(f"key_id: expected 1..200 characters (got {key_id!r})")
        if tier not in TIERS:
            raise ValueError(f"tier: expected one of {sorted(TIERS)} (got {tier!r})")
        if isinstance(balance_cents, bool) or not isinstance(balance_cents, int) \
                or balance_cents < 0:
            raise ValueError(f"balance_cents: expected a non-negative int (got {balance_cents!r})")
        account = account_id or key_id
        record = KeyRecord(key_id, account, public_key_pem, tier, self.clock())
        key = self._key_from_record(record)  # raises KeyLoadError (a ValueError) on a bad PEM
        # the key is stored first: a crash before the funding leaves a key whose account a
        # repeated add-key creates, never an account funded twice
        self.store.put_key(record)
        self._keys[key_id] = key
        self.rate_limiter.forget(key_id)
        if account not in self.account_ids():
            await self.run("add_account", {"account_id": account, "balance_cents": balance_cents})
        elif balance_cents:
            await self.run("deposit", {"account_id": account, "cents": balance_cents})
        return account

    def account_ids(self) -> set[str]:
        """Return the ids of every account in the engine."""
        return set(self._accounts)

    def key_tier(self, key_id: str) -> str:
        """Return a registered key's rate-limit tier."""
        return self._keys[key_id].tier

    def authenticate(
        self, method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[str | None, str]:
        """Return (account id, "") for a valid signed request, else (None, why it failed)."""
        key_id = _header(headers, HEADER_KEY)
        signature = _header(headers, HEADER_SIGNATURE)
        timestamp = _header(headers, HEADER_TIMESTAMP)
        if not key_id or not signature or not timestamp:
            return None, "missing KALSHI-ACCESS-KEY, -SIGNATURE or -TIMESTAMP header"
        key = self._keys.get(key_id)
        if key is None:
            return None, "unknown API key"
        try:
            ts_ms = int(timestamp)
        except ValueError:
            return None, "KALSHI-ACCESS-TIMESTAMP is not an integer of milliseconds"
        skew = abs(self.clock() - ts_ms)
        if skew > self.max_skew_ms:
            return None, f"stale timestamp: {skew} ms from exchange time (max {self.max_skew_ms})"
        if not verify(key.public_key, signing_message(ts_ms, method, path), signature):
            return None, "invalid signature"
        return key.account_id, ""

    def verify_request(self, method: str, path: str, headers: Mapping[str, str]) -> str | None:
        """Return the account id of a validly signed request, or None."""
        return self.authenticate(method, path, headers)[0]

    def key_for_request(self, headers: Mapping[str, str]) -> str | None:
        """Return the (unverified) key id named by a request's headers."""
        return _header(headers, HEADER_KEY)

    # --- faults --------------------------------------------------------------------------------

    def set_faults(self, data: Mapping[str, Any], *, clear: bool = False) -> Faults:
        """Update (or clear, then update) the injected faults; persisted across restarts."""
        faults = Faults.from_dict(data, None if clear else self.faults)
        self.store.put_setting("faults", asdict(faults))
        self.faults = faults
        return faults

    def roll(self, rate: float) -> bool:
        """Return True with probability ``rate`` (fault injection)."""
        return rate > 0 and self.rng.random() < rate

    # --- reads for the WebSocket server and the routes -----------------------------------------

    def book(self, ticker: str) -> BookView:
        """Return the engine's book for ``ticker`` (best first on each leg)."""
        return self.engine.book(ticker)

    def market_tickers(self) -> list[str]:
        """Return every market's ticker."""
        return [state.spec.ticker for state in self.engine.markets()]

    def add_reference(self, kind: str, ticker: str, raw: dict[str, Any]) -> None:
        """Store a series, event or market's raw Kalshi fields (what the routes echo back)."""
        if kind not in ("series", "event", "market"):
            raise ValueError(f"kind: expected series, event or market (got {kind!r})")
        self.store.put_reference(kind, ticker, raw)
        {"series": self.series_raw, "event": self.events_raw, "market": self.markets_raw}[kind][
            ticker
        ] = raw

    def has_reference(self, kind: str, ticker: str) -> bool:
        """Return whether a series, event or market's raw fields are stored."""
        if kind not in ("series", "event", "market"):
            raise ValueError(f"kind: expected series, event or market (got {kind!r})")
        return ticker in {"series": self.series_raw, "event": self.events_raw,
                          "market": self.markets_raw}[kind]

    def add_references(self, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Store many (kind, ticker, raw) reference rows in one transaction."""
        for kind, _ticker, _raw in rows:
            if kind not in ("series", "event", "market"):
                raise ValueError(f"kind: expected series, event or market (got {kind!r})")
        self.store.put_references(rows)
        for kind, ticker, raw in rows:
            {"series": self.series_raw, "event": self.events_raw, "market": self.markets_raw}[
                kind
            ][ticker] = raw

    async def add_market(self, spec: MarketSpec) -> None:
        """Add one market to the engine (logged)."""
        await self.run("add_market", {"spec": _spec_args(spec)})

    async def add_markets(self, specs: list[MarketSpec]) -> list[EngineReject | None]:
        """Add many markets in one logged command; return each one's rejection or None."""
        result: list[EngineReject | None] = await self.run(
            "add_markets", {"specs": [_spec_args(s) for s in specs]}
        )
        return result


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value
