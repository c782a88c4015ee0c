"""Liquidity for the paper exchange: synthetic agents, historical replay, mirrored public books.

Invariant: liquidity is ordinary trading by system accounts. Every order, cancel, market,
determination and settlement goes through the exchange's mutation path (``await _run(venue, ...)``),
so it is matched, funded, charged and persisted exactly like a user's command; nothing here
touches the engine's state directly (it only reads books, orders and positions on the exchange's
event loop). System accounts start with large balances and can be told apart by their ``sys-``
prefix.

Entry point: ``start_liquidity(exchange, mode, **opts)`` inside the exchange's running event loop
(after ``await exchange.start()``); it returns a ``LiquidityHandle`` whose ``stop()`` ends the
background task after its current step (never in the middle of a command).
Modes: ``synthetic`` (today's and tomorrow's KXHIGH events, market makers and a noise taker, settled
from the simulated truth), ``replay`` (recorded trades as counterparties on a simulated clock),
``mirror`` (public Kalshi order books copied over REST), ``none``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from kalshi.client import KalshiClient
from kalshi.errors import KalshiError
from kalshi.paper.store import StoreError
from kalshi.wire import Market, Orderbook, parse_event
from models.climate import climate_day_of
from models.liquidity import (
    MakerConfig,
    MirrorError,
    OrderDiff,
    RecordedTrade,
    ReplayClock,
    ReplayIssue,
    TakerConfig,
    diff_orders,
    due_trades,
    maker_orders,
    mirror_book,
    mirror_orders,
    order_trades,
    replay_order,
    taker_orders,
)
from models.matching import Engine, EngineReject, MarketSpec, Order, OrderRequest
from models.money import cents_from_probability
from models.synthetic import (
    SERIES,
    SeriesInfo,
    SyntheticEvent,
    bracket_probability,
    event_payload,
    event_ticker_for,
    forecast_at,
    seeded_event,
    series_dict,
    series_info,
    settle_event,
)

__all__ = [
    "MODES",
    "MM_ACCOUNT",
    "TAKER_ACCOUNT",
    "REPLAY_ACCOUNT",
    "MIRROR_ACCOUNT",
    "SYSTEM_BALANCE_CENTS",
    "LiquidityVenue",
    "BookSource",
    "LiquidityStats",
    "LiquidityHandle",
    "start_liquidity",
    "load_recorded_event",
    "load_recorded_trades",
]

log = logging.getLogger(__name__)

MODES = ("synthetic", "replay", "mirror", "none")
MM_ACCOUNT = "sys-liquidity-mm"
TAKER_ACCOUNT = "sys-liquidity-taker"
REPLAY_ACCOUNT = "sys-liquidity-replay"
MIRROR_ACCOUNT = "sys-liquidity-mirror"
SYSTEM_BALANCE_CENTS = 1_000_000_000  # $10,000,000 per system account
MAX_ERRORS = 100


class LiquidityVenue(Protocol):
    """What the driver needs from the exchange (``kalshi.paper.exchange.PaperExchange``)."""

    engine: Engine
    clock: Callable[[], int]

    async def run(self, kind: str, args: dict[str, Any]) -> Any: ...

    async def add_market(self, spec: MarketSpec) -> Any: ...

    def account_ids(self) -> set[str]: ...

    def market_tickers(self) -> list[str]: ...

    def add_reference(self, kind: str, ticker: str, raw: dict[str, Any]) -> None: ...

    def has_reference(self, kind: str, ticker: str) -> bool: ...


class _Agent(Protocol):
    async def setup(self) -> None: ...

    async def step(self) -> None: ...


class BookSource(Protocol):
    """Where mirrored books come from: the public market-data reads of ``KalshiClient``."""

    def get_market(self, ticker: str) -> Market: ...

    def get_orderbook(self, ticker: str) -> Orderbook: ...


@dataclass
class LiquidityStats:
    """Live counters of one liquidity run (read them for logs, tests and the operator API)."""

    mode: str
    steps: int = 0
    markets_added: int = 0
    orders_placed: int = 0
    orders_canceled: int = 0
    contracts_filled: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    cancel_misses: int = 0  # the order had already filled or expired: a benign race
    trades_replayed: int = 0
    replay_issues: list[ReplayIssue] = field(default_factory=list)
    fractional_dropped: Counter[str] = field(default_factory=Counter)  # level -> times seen
    determined: dict[str, str] = field(default_factory=dict)
    settled: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the most recent MAX_ERRORS
    error_count: int = 0
    finished: bool = False

    def note_error(self, message: str) -> None:
        """Record a problem the driver survived (bounded: a long run keeps the latest)."""
        self.error_count += 1
        self.errors.append(message)
        del self.errors[:-MAX_ERRORS]

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as plain JSON-able values."""
        data = asdict(self)
        data["rejects"] = dict(self.rejects)
        data["fractional_dropped"] = dict(self.fractional_dropped)
        data["replay_issues"] = [asdict(i) for i in self.replay_issues]
        return data


class LiquidityHandle:
    """A running liquidity task: ``stop()`` (thread-safe) ends it after the current step."""

    def __init__(self, mode: str, stats: LiquidityStats,
                 task: asyncio.Task[None] | None, stop_event: asyncio.Event | None,
                 loop: asyncio.AbstractEventLoop | None) -> None:
        self.mode = mode
        self.stats = stats
        self._task = task
        self._stop_event = stop_event
        self._loop = loop

    @property
    def running(self) -> bool:
        """Whether the background task is still going."""
        return self._task is not None and not self._task.done()

    def stop(self) -> None:
        """Ask the task to stop after its current step; safe from any thread."""
        if self._stop_event is None or self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._stop_event.set)

    async def wait(self) -> None:
        """Wait for the task to end; re-raise what ended it, if anything."""
        if self._task is not None:
            await self._task

    async def aclose(self) -> None:
        """Stop and wait."""
        self.stop()
        await self.wait()


# --- shared helpers -------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(milliseconds=1)  # exact, no float


def _utc(now_ms: int) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC)


async def _run(venue: LiquidityVenue, kind: str, args: dict[str, Any]) -> Any:
    # shielded: stopping or cancelling the driver must never abandon a command between the
    # engine and the log (the exchange applies first, then commits)
    return await asyncio.shield(venue.run(kind, args))


async def _add_market(venue: LiquidityVenue, spec: MarketSpec) -> None:
    await asyncio.shield(venue.add_market(spec))


async def _ensure_account(venue: LiquidityVenue, account_id: str, balance_cents: int) -> None:
    if account_id not in venue.account_ids():
        await _run(venue, "add_account", {"account_id": account_id, "balance_cents": balance_cents})


async def _apply_diff(venue: LiquidityVenue, account_id: str, diff: OrderDiff,
                      stats: LiquidityStats) -> None:
    """Cancel first (so a new quote never meets the one it replaces), then place, in batches."""
    if diff.cancel:
        results = await _run(venue, "cancel_batch", {"account_id": account_id,
                                                   "order_ids": list(diff.cancel)})
        for item in results:
            if isinstance(item, EngineReject):
                stats.cancel_misses += 1
            else:
                stats.orders_canceled += 1
    await _place(venue, diff.place, stats)


def _request_args(req: OrderRequest) -> dict[str, Any]:
    # the submit command's args (flat fields; dataclasses.asdict's deep copy is 10x slower)
    return {f.name: getattr(req, f.name) for f in fields(req)}


async def _place(venue: LiquidityVenue, requests: Iterable[OrderRequest],
                 stats: LiquidityStats) -> list[Order | EngineReject]:
    batch = [_request_args(r) for r in requests]
    if not batch:
        return []
    results: list[Order | EngineReject] = await _run(venue, "submit_batch", {"requests": batch})
    for item in results:
        if isinstance(item, EngineReject):
            stats.rejects[item.code] += 1
            log.info("liquidity order rejected: %s", item)
        else:
            stats.orders_placed += 1
            stats.contracts_filled += item.fill_count
    return results


def _inventory(engine: Engine, account_id: str) -> dict[str, int]:
    return {p.ticker: p.position for p in engine.positions(account_id)}


async def _finish_market(venue: LiquidityVenue, ticker: str, result: str,
                         stats: LiquidityStats) -> None:
    """Determine and settle one closed market through the exchange (two logged commands)."""
    status = venue.engine.market(ticker).status
    if status == "closed":
        await _run(venue, "determine", {"ticker": ticker, "result": result})
        stats.determined[ticker] = result
        status = venue.engine.market(ticker).status
    if status == "determined":
        await _run(venue, "settle", {"ticker": ticker})
        stats.settled.append(ticker)


# --- synthetic ------------------------------------------------------------------------------

class _SyntheticAgent:
    """Today's and tomorrow's events per series, a market maker per market, one noise taker."""

    def __init__(self, venue: LiquidityVenue, stats: LiquidityStats, *, seed: int = 0,
                 series: Iterable[str] | None = None, maker: MakerConfig | None = None,
                 taker: TakerConfig | None = None, requote_prob: float = 0.3,
                 settle_delay_s: float = 0.0,
                 balance_cents: int = SYSTEM_BALANCE_CENTS) -> None:
        self.venue, self.stats = venue, stats
        self.seed = seed
        self.series: tuple[SeriesInfo, ...] = (
            tuple(series_info(s) for s in series) if series is not None else SERIES)
        self.maker = maker or MakerConfig()
        self.taker = taker or TakerConfig(prob_per_step=0.05)
        if not 0.0 <= requote_prob <= 1.0:
            raise ValueError(f"requote_prob: must be in [0, 1] (got {requote_prob!r})")
        self.requote_prob = requote_prob
        self.settle_delay_ms = int(settle_delay_s * 1000)
        self.balance_cents = balance_cents
        self.rng = random.Random(seed)
        self.events: dict[str, SyntheticEvent] = {}
        self.done: set[str] = set()  # finalized events, never re-listed

    async def setup(self) -> None:
        for account in (MM_ACCOUNT, TAKER_ACCOUNT):
            await _ensure_account(self.venue, account, self.balance_cents)
        for info in self.series:
            self.venue.add_reference("series", info.series_ticker, series_dict(info))
        await self._roll(self.venue.clock())

    async def _roll(self, now_ms: int) -> None:
        as_of = _utc(now_ms)
        known: set[str] | None = None
        for info in self.series:
            today = climate_day_of(as_of, info.standard_offset_hours)
            for day in (today, today + timedelta(days=1)):
                name = event_ticker_for(info.series_ticker, day)
                if name in self.events or name in self.done:
                    continue
                event = seeded_event(self.seed, info, day, open_not_after=as_of)
                if known is None:
                    known = set(self.venue.market_tickers())
                payload = event_payload(event, as_of)
                self.venue.add_reference("event", event.event_ticker, payload["event"])
                for market, raw in zip(event.markets, payload["markets"], strict=True):
                    self.venue.add_reference("market", market.ticker, raw)
                    if market.ticker in known:
                        continue  # restart: the exchange replayed it from its log
                    await _add_market(self.venue, MarketSpec(
                        market.ticker, event.event_ticker, info.series_ticker,
                        _ms(event.open_time_utc), _ms(event.close_time_utc)))
                    self.stats.markets_added += 1
                self.events[event.event_ticker] = event

    async def step(self) -> None:
        now_ms = self.venue.clock()
        await self._roll(now_ms)
        engine = self.venue.engine
        as_of = _utc(now_ms)
        inventory = _inventory(engine, MM_ACCOUNT)
        resting: dict[str, list[Order]] = {}
        for order in engine.orders(MM_ACCOUNT, status="resting"):
            resting.setdefault(order.ticker, []).append(order)
        desired: list[OrderRequest] = []
        current: list[Order] = []
        takes: list[OrderRequest] = []
        finished: list[str] = []
        done_events: list[str] = []
        for event in self.events.values():
            forecast = forecast_at(event, as_of)
            results = settle_event(event)
            for market in event.markets:
                status = engine.market(market.ticker).status
                if status == "active":
                    mine = resting.get(market.ticker, [])
                    fair = cents_from_probability(bracket_probability(market, forecast))
                    quotes = maker_orders(MM_ACCOUNT, market.ticker, fair_cents=fair,
                                          inventory=inventory.get(market.ticker, 0),
                                          now_ms=now_ms, rng=self.rng, config=self.maker)
                    # requote at random (the book moves), and always when a quote was hit,
                    # is missing or is about to expire (the book stays two-sided)
                    due = (len(mine) != len(quotes) or self.rng.random() < self.requote_prob
                           or any(o.fill_count > 0 or (
                               o.expiration_ts_ms is not None
                               and o.expiration_ts_ms <= now_ms + self.maker.ttl_ms // 2)
                               for o in mine))
                    if due:
                        desired += quotes
                        current += mine
                    takes += taker_orders(TAKER_ACCOUNT, engine.book(market.ticker),
                                          rng=self.rng, config=self.taker)
                elif status in ("closed", "determined") and \
                        now_ms >= _ms(event.close_time_utc) + self.settle_delay_ms:
                    await _finish_market(self.venue, market.ticker, results[market.ticker],
                                         self.stats)
                if engine.market(market.ticker).status == "finalized":
                    finished.append(market.ticker)
            if all(t in finished for t in results):
                done_events.append(event.event_ticker)
        for ticker in done_events:
            del self.events[ticker]
            self.done.add(ticker)
        diff = diff_orders(desired, current, now_ms=now_ms,
                           refresh_before_ms=self.maker.ttl_ms // 2)
        await _apply_diff(self.venue, MM_ACCOUNT, diff, self.stats)
        await _place(self.venue, takes, self.stats)


# --- replay ---------------------------------------------------------------------------------

def _series_of(event_ticker: str) -> str:
    head = event_ticker.split("-", 1)[0].upper()
    return head if head.startswith("KX") else f"KX{head}"  # HIGHNY-24AUG16 is KXHIGHNY's


def load_recorded_event(data_dir: Path, event_ticker: str) -> dict[str, Any]:
    """Return the recorded ``GET /events`` line for ``event_ticker`` (``{"event", "markets"}``)."""
    path = data_dir / f"{_series_of(event_ticker)}_events.jsonl.gz"
    if not path.is_file():
        raise ValueError(f"event_ticker: no recorded events file {path} for {event_ticker!r}")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if f'"{event_ticker}"' not in line:
                continue
            record = json.loads(line)
            if record.get("event", {}).get("event_ticker") == event_ticker:
                return dict(record)
    raise ValueError(f"event_ticker: {event_ticker!r} not found in {path}")


def load_recorded_trades(data_dir: Path, series: str,
                         tickers: Iterable[str]) -> tuple[list[RecordedTrade], list[ReplayIssue]]:
    """Read the recorded trades of ``tickers`` in file order; bad rows become issues, not drops."""
    import pyarrow.parquet as pq  # heavy: imported only in replay mode

    path = data_dir / f"{series}_trades.parquet"
    if not path.is_file():
        raise ValueError(f"series: no recorded trades file {path} for {series!r}")
    table = pq.read_table(path, filters=[("ticker", "in", sorted(set(tickers)))])
    trades: list[RecordedTrade] = []
    issues: list[ReplayIssue] = []
    for row in table.to_pylist():
        created = row["created_time"]
        try:
            trades.append(RecordedTrade(str(row["trade_id"]), str(row["ticker"]),
                                        int(row["count"]), _ms(created),
                                        int(row["yes_price"]), row["taker_side"]))
        except (ValueError, TypeError) as exc:
            issues.append(ReplayIssue("invalid", str(row.get("trade_id")), str(exc)))
    return trades, issues


class _ReplayAgent:
    """Recorded trades of one event, replayed as IOC counter-orders on a simulated clock."""

    def __init__(self, venue: LiquidityVenue, stats: LiquidityStats, *,
                 data_dir: str | Path | None = None, event_ticker: str | None = None,
                 speed: int = 60, quote: bool = True,
                 maker: MakerConfig | None = None, gap_s: int = 6 * 3600,
                 recorded_start: datetime | None = None, seed: int = 0,
                 close_grace_s: float = 5.0,
                 balance_cents: int = SYSTEM_BALANCE_CENTS) -> None:
        self.venue, self.stats = venue, stats
        if data_dir is None or not Path(data_dir).is_dir():
            raise ValueError(f"data_dir: replay needs the recorded data directory "
                             f"(weather-events-2024-25), got {data_dir!r}")
        if not event_ticker:
            raise ValueError(f"event_ticker: replay needs a recorded event, e.g. "
                             f"KXHIGHNY-25MAY08 (got {event_ticker!r})")
        self.data_dir = Path(data_dir)
        self.event_ticker = event_ticker
        ReplayClock(0, 0, speed)  # validates speed now, not inside the background task
        self.speed = speed
        self.quote = quote
        self.maker = maker or MakerConfig(half_spread_cents=1, levels=1, noise_sd_cents=0.0)
        self.gap_ms = gap_s * 1000
        # a step submits what fell due since the last one, up to one step late in exchange time:
        # the paper market closes this much after the recorded close so the last trades still land
        self.close_grace_ms = int(close_grace_s * 1000)
        self.recorded_start = recorded_start
        self.rng = random.Random(seed)
        self.balance_cents = balance_cents
        self.markets: list[Market] = []
        self.ordered: list[RecordedTrade] = []
        self.cursor = 0
        self.last_price: dict[str, int] = {}
        self.clock: ReplayClock | None = None

    def _publish_series(self, series_ticker: str) -> None:
        # the recorded events carry no series object; without one GET /series/{t} has no
        # settlement source and a desk skips every market. Publish the station registry's
        # series object unless one was loaded (add-markets), which is kept.
        if self.venue.has_reference("series", series_ticker):
            return
        try:
            info = series_info(series_ticker)
        except ValueError:
            log.warning("replay %s: no series object for %s (not a known KXHIGH series); load "
                        "one with add-markets or a desk will skip its markets",
                        self.event_ticker, series_ticker)
            return
        self.venue.add_reference("series", series_ticker, series_dict(info))

    async def setup(self) -> None:
        # file reads off the event loop: the exchange keeps serving while a replay loads
        record = await asyncio.to_thread(load_recorded_event, self.data_dir, self.event_ticker)
        event = parse_event(record["event"], record.get("markets") or [])
        self.markets = list(event.markets)
        tickers = [m.ticker for m in self.markets]
        trades, bad = await asyncio.to_thread(load_recorded_trades, self.data_dir,
                                              event.series_ticker, tickers)
        self.ordered, issues = order_trades(trades, gap_ms=self.gap_ms)
        self.stats.replay_issues += bad + issues
        for issue in bad + issues:
            log.warning("replay %s: %s %s: %s", self.event_ticker, issue.kind, issue.trade_id,
                        issue.detail)
        if not self.ordered:
            raise ValueError(f"event_ticker: no recorded trades for {self.event_ticker!r}")
        now_ms = self.venue.clock()
        start = _ms(self.recorded_start) if self.recorded_start else self.ordered[0].ts_ms
        self.clock = ReplayClock(start, now_ms, self.speed)
        self.cursor = due_trades(self.ordered, 0, start - 1)[1]  # skip trades before the start
        for account in (REPLAY_ACCOUNT, MM_ACCOUNT):
            await _ensure_account(self.venue, account, self.balance_cents)
        known = set(self.venue.market_tickers())
        self._publish_series(event.series_ticker)
        self.venue.add_reference("event", event.event_ticker, dict(record["event"]))
        for market, raw in zip(self.markets, record["markets"], strict=True):
            descriptive = {k: v for k, v in raw.items()
                           if k not in ("result", "expiration_value", "settlement_value")}
            self.venue.add_reference("market", market.ticker, descriptive)
            if market.ticker in known:
                continue
            close_ms = max(self.clock.sim_ms(_ms(market.close_time)), now_ms) + \
                self.close_grace_ms
            await _add_market(self.venue, MarketSpec(market.ticker, event.event_ticker,
                                                   event.series_ticker, now_ms, close_ms))
            self.stats.markets_added += 1

    async def step(self) -> None:
        assert self.clock is not None
        now_ms = self.venue.clock()
        engine = self.venue.engine
        due, self.cursor = due_trades(self.ordered, self.cursor, self.clock.recorded_ms(now_ms))
        active = {m.ticker for m in self.markets
                  if engine.market(m.ticker).status == "active"}
        counter = [replay_order(REPLAY_ACCOUNT, t) for t in due if t.ticker in active]
        for trade in due:
            self.last_price[trade.ticker] = trade.yes_price_cents
        # the recorded takers first (in time order), then the quotes they leave behind
        await _place(self.venue, counter, self.stats)
        self.stats.trades_replayed += len(counter)
        if len(counter) != len(due):
            self.stats.note_error(f"{len(due) - len(counter)} recorded trades fell after "
                                  f"their market closed at the exchange")
        if self.quote:
            desired: list[OrderRequest] = []
            inventory = _inventory(engine, MM_ACCOUNT)
            for ticker in sorted(active & set(self.last_price)):
                desired += maker_orders(MM_ACCOUNT, ticker, fair_cents=self.last_price[ticker],
                                        inventory=inventory.get(ticker, 0), now_ms=now_ms,
                                        rng=self.rng, config=self.maker)
            resting = [o for o in engine.orders(MM_ACCOUNT, status="resting")
                       if o.ticker in active]
            await _apply_diff(self.venue, MM_ACCOUNT,
                              diff_orders(desired, resting, now_ms=now_ms,
                                          refresh_before_ms=self.maker.ttl_ms // 2), self.stats)
        if self.cursor >= len(self.ordered):
            for market in self.markets:
                status = engine.market(market.ticker).status
                if status in ("closed", "determined") and market.result in ("yes", "no"):
                    await _finish_market(self.venue, market.ticker, market.result, self.stats)
            # done when every market is settled, or closed without a recorded result
            self.stats.finished = all(
                engine.market(m.ticker).status == "finalized"
                or (m.result not in ("yes", "no") and engine.market(m.ticker).status == "closed")
                for m in self.markets)


# --- mirror ---------------------------------------------------------------------------------

def _strike(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _market_reference(market: Market) -> dict[str, Any]:
    # the descriptive fields the paper routes echo back; prices and times come from the engine
    return {
        "market_type": market.market_type, "title": market.title or "",
        "subtitle": market.subtitle or "", "yes_sub_title": market.yes_sub_title,
        "no_sub_title": market.no_sub_title, "strike_type": market.strike_type,
        "floor_strike": _strike(market.floor_strike), "cap_strike": _strike(market.cap_strike),
        "rules_primary": market.rules_primary, "rules_secondary": market.rules_secondary,
        "can_close_early": market.can_close_early,
        "settlement_timer_seconds": market.settlement_timer_seconds,
    }


class _MirrorAgent:
    """Copies public order books into the paper book as the mirror account's resting orders."""

    def __init__(self, venue: LiquidityVenue, stats: LiquidityStats, *,
                 tickers: Iterable[str] = (), base_url: str | None = None,
                 source: BookSource | None = None, ttl_s: float = 30.0,
                 max_level_count: int | None = None,
                 balance_cents: int = SYSTEM_BALANCE_CENTS) -> None:
        self.venue, self.stats = venue, stats
        self.tickers = list(tickers)
        if not self.tickers:
            raise ValueError("tickers: mirror needs at least one market ticker to copy")
        self._owned: KalshiClient | None = None
        if source is None:
            if not base_url:
                raise ValueError("base_url: mirror mode needs the source exchange's base URL")
            # public endpoints: no key, so no secret can leak from the mirror
            self._owned = KalshiClient(base_url, max_retries=1)
            source = self._owned
        self.source: BookSource = source
        self.ttl_ms = int(ttl_s * 1000)
        self.max_level_count = max_level_count
        self.balance_cents = balance_cents

    async def setup(self) -> None:
        await _ensure_account(self.venue, MIRROR_ACCOUNT, self.balance_cents)
        known = set(self.venue.market_tickers())
        for ticker in self.tickers:
            market = await asyncio.to_thread(self.source.get_market, ticker)
            self.venue.add_reference("market", market.ticker, _market_reference(market))
            if market.ticker in known:
                continue
            now_ms = self.venue.clock()
            await _add_market(self.venue, MarketSpec(
                market.ticker, market.event_ticker, _series_of(market.event_ticker),
                min(_ms(market.open_time), now_ms), _ms(market.close_time)))
            self.stats.markets_added += 1

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()

    async def step(self) -> None:
        engine = self.venue.engine
        for ticker in self.tickers:
            if engine.market(ticker).status != "active":
                continue
            try:
                wire_book = await asyncio.to_thread(self.source.get_orderbook, ticker)
                book = mirror_book(ticker, [(lv.price, lv.count) for lv in wire_book.yes],
                                   [(lv.price, lv.count) for lv in wire_book.no])
            except (KalshiError, MirrorError) as exc:  # unreachable source, bad or crossed book
                text = str(exc)
                self.stats.note_error(text if ticker in text else f"{ticker}: {text}")
                log.warning("mirror %s: book not copied: %s", ticker, exc)
                continue
            self.stats.fractional_dropped.update(book.fractional_dropped)
            now_ms = self.venue.clock()
            desired = mirror_orders(MIRROR_ACCOUNT, book, now_ms=now_ms, ttl_ms=self.ttl_ms,
                                    max_level_count=self.max_level_count)
            resting = engine.orders(MIRROR_ACCOUNT, status="resting", ticker=ticker)
            await _apply_diff(self.venue, MIRROR_ACCOUNT,
                              diff_orders(desired, resting, now_ms=now_ms,
                                          refresh_before_ms=self.ttl_ms // 2), self.stats)


# --- driver ---------------------------------------------------------------------------------

async def _drive(venue: LiquidityVenue, agent: _Agent, stats: LiquidityStats,
                 stop: asyncio.Event, interval_s: float) -> None:
    try:
        await _steps(venue, agent, stats, stop, interval_s)
    finally:
        close = getattr(agent, "close", None)
        if close is not None:
            close()


async def _steps(venue: LiquidityVenue, agent: _Agent, stats: LiquidityStats,
                 stop: asyncio.Event, interval_s: float) -> None:
    await agent.setup()
    while not stop.is_set():
        try:
            # the engine's clock first: a step must see markets closed/expired as of now
            await _run(venue, "advance", {})
            await agent.step()
        except StoreError as exc:  # the exchange stopped persisting: trading must stop too
            stats.note_error(f"store: {exc}")
            log.error("liquidity stopped: the exchange could not commit: %s", exc)
            return
        except EngineReject as exc:  # a single determine/settle refused; keep quoting
            stats.note_error(str(exc))
            log.warning("liquidity step: %s", exc)
        stats.steps += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


def _log_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("liquidity task ended with an error", exc_info=task.exception())


def start_liquidity(exchange: LiquidityVenue, mode: str, **opts: Any) -> LiquidityHandle:
    """Start ``mode`` liquidity against ``exchange`` in the running event loop.

    Options: ``interval_s`` (step period) and, per mode, synthetic: ``seed``, ``series``,
    ``maker`` (MakerConfig), ``taker`` (TakerConfig), ``requote_prob``, ``settle_delay_s``;
    replay: ``data_dir``, ``event_ticker``, ``speed``, ``quote``, ``gap_s``, ``recorded_start``,
    ``close_grace_s``;
    mirror: ``base_url`` or ``source``, ``tickers``, ``ttl_s``, ``max_level_count``.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)} (got {mode!r})")
    stats = LiquidityStats(mode)
    if mode == "none":
        return LiquidityHandle(mode, stats, None, None, None)
    interval_s = float(opts.pop("interval_s", 1.0 if mode != "mirror" else 2.0))
    if interval_s <= 0:
        raise ValueError(f"interval_s: must be > 0 (got {interval_s!r})")
    agent: _Agent
    if mode == "synthetic":
        agent = _SyntheticAgent(exchange, stats, **opts)
    elif mode == "replay":
        agent = _ReplayAgent(exchange, stats, **opts)
    else:
        agent = _MirrorAgent(exchange, stats, **opts)
    loop = asyncio.get_running_loop()  # RuntimeError outside the exchange's loop: by design
    stop = asyncio.Event()
    task = loop.create_task(_drive(exchange, agent, stats, stop, interval_s),
                            name=f"liquidity-{mode}")
    task.add_done_callback(_log_end)
    return LiquidityHandle(mode, stats, task, stop, loop)
