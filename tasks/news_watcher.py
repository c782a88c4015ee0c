"""The news watcher: conditional polling plus a local webhook, acting on rule firings at once.

Invariants:
- Every item (polled or pushed) is stored once before anything acts on it; a duplicate never
  acts twice, an update replaces its thread's shifts and a cancel removes them.
- Orders go only through ``tasks.gateway.apply_orders`` (risk gate, intent written before the
  send, deterministic ``client_order_id`` per item and market); the watcher manages only its own
  strategy's resting orders, so it never cancels another strategy's quotes.
- Nothing is sent while a halt is active, on a book thinner than ``min_depth_contracts`` on
  either side, or without a fresh model probability to shift; each of these is recorded as a
  ``news_actions`` row with the reason, as is every order outcome with its latency.
- One worker thread acts, in arrival order; pollers and the webhook only parse, store and queue.
  The webhook binds to 127.0.0.1 and, when a token is configured, refuses requests without it.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kalshi.client import KalshiClient
from kalshi.errors import KalshiError
from kalshi.wire import Market, Order, Orderbook
from models.edge import EdgeParams, Quote, plan_market
from models.ledger import (
    Decision,
    NewsAction,
    NewsItemRecord,
    OrderRecord,
    datetime_from_ms,
    ms_from_datetime,
)
from models.money import MoneyError, price_cents_from_dollars
from models.news import NewsParseError, item_from_json, novelty, parse_push
from models.news_rules import (
    ActiveShift,
    Firing,
    RuleSet,
    apply_firings,
    match_item,
    shift_probability,
    thin_book_reason,
    total_shift,
)
from models.orders import RestingOrder
from models.risk import OrderRequest, RiskLimits, RiskState, max_order_contracts
from tasks.db import read_session
from tasks.gateway import ExchangeSnapshot, Want, apply_orders, fill_report
from tasks.ledger_store import active_halts, read_risk_state, record_decision, record_fill
from tasks.news import (
    FeedSource,
    StoredItem,
    news_session,
    poll_source,
    record_news_actions,
    store_items,
)

__all__ = [
    "MODEL_VERSION",
    "NewsWatcher",
    "WatcherConfig",
    "WatcherStats",
    "webhook_app",
]

log = logging.getLogger(__name__)

MODEL_VERSION: Final = "news-shift-v0"
_MAX_QUEUE: Final = 10_000

RefreshFn = Callable[[Sequence[str], datetime], str]


@dataclass(frozen=True)
class WatcherConfig:
    """How the watcher acts (plain values; build from Settings and flow parameters)."""

    strategy: str = "news-v0"
    min_depth_contracts: int = 10
    max_model_age_s: float = 6 * 3600.0
    order_ttl_s: int = 900
    webhook_token: str | None = None
    order_group_limit: int | None = None  # Settings.order_group_contracts_limit; None: no group

    def __post_init__(self) -> None:
        if self.min_depth_contracts < 1:
            raise ValueError(f"min_depth_contracts: expected >= 1, got {self.min_depth_contracts}")
        if self.max_model_age_s <= 0:
            raise ValueError(f"max_model_age_s: expected > 0, got {self.max_model_age_s}")


@dataclass
class WatcherStats:
    """Counters and reaction times of one watcher run (read after ``stop``)."""

    received: int = 0
    duplicates: int = 0
    refused: int = 0
    fired: int = 0
    orders_acked: int = 0
    reaction_ms: list[float] = field(default_factory=list)  # item arrival -> exchange ack
    # per acknowledged order: intake (store + queue), reads (exchange + ledger, concurrent),
    # plan (model shift, sizing, decision row), gateway (risk gate, intent, send, ack)
    stages_ms: list[dict[str, float]] = field(default_factory=list)
    poll_errors: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


_NO_EQUITY: Final = -1  # read the risk state before the balance arrives (``_with_equity``)


def _with_equity(state: RiskState, equity_cents: int) -> RiskState:
    # the state was read concurrently with GET /portfolio/balance: put the equity in, and use it
    # as the start of day when the ledger has none yet (what read_risk_state would have done).
    # Sizing only: the binding check re-reads everything inside the intent's transaction.
    start = state.start_of_day_equity_cents
    return replace(state, equity_cents=equity_cents,
                   start_of_day_equity_cents=equity_cents if start == _NO_EQUITY else start)


class NewsWatcher:
    """Pollers, a webhook and one acting worker around the ledger and one exchange client."""

    def __init__(self, *, engine: Engine, client: KalshiClient, rules: RuleSet,
                 sources: Sequence[FeedSource] = (), config: WatcherConfig | None = None,
                 limits: RiskLimits | None = None, params: EdgeParams | None = None,
                 refresh: RefreshFn | None = None, user_agent: str = "eventdesk-news/0.1",
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine, self.client, self.rules = engine, client, rules
        self.sources = tuple(sources)
        self.config = config or WatcherConfig()
        self.limits = limits or RiskLimits()
        self.params = params or EdgeParams()
        self.refresh = refresh
        self.user_agent = user_agent
        self.now = now
        self.stats = WatcherStats()
        self.shifts: tuple[ActiveShift, ...] = ()
        self._queue: queue.Queue[tuple[float, StoredItem] | None] = queue.Queue(_MAX_QUEUE)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Condition()
        self._pending = 0
        self._categories: dict[str, str] = {}
        self._actions: list[NewsAction] = []
        self._pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="news-io")
        self._fills: queue.Queue[tuple[str, ...] | None] = queue.Queue()

    # -- intake ----------------------------------------------------------------------------------
    def accept(self, stored: Sequence[StoredItem], arrival: float) -> None:
        """Queue the non-duplicate stored items for the worker (arrival: perf_counter)."""
        for item in stored:
            with self._idle:  # pollers and webhook threads count concurrently
                self.stats.received += 1
                if item.novelty == "duplicate":
                    self.stats.duplicates += 1
                    continue
                self._pending += 1
            self._queue.put((arrival, item))

    def push(self, body: bytes) -> dict[str, Any]:
        """Handle one webhook body: parse, store, queue; return the response document."""
        arrival = time.perf_counter()
        parsed = parse_push(body)
        stored = store_items(self.engine, parsed.items, as_of=self.now())
        with self._idle:
            self.stats.refused += len(parsed.refused)
        self.accept(stored, arrival)
        return {
            "accepted": [s.item.item_id for s in stored if s.novelty != "duplicate"],
            "duplicates": [s.item.item_id for s in stored if s.novelty == "duplicate"],
            "refused": [{"id": r.where, "reason": r.reason} for r in parsed.refused],
        }

    def _poll_loop(self, source: FeedSource) -> None:
        with news_session(self.user_agent) as session:
            while not self._stop.is_set():
                started = time.monotonic()
                arrival = time.perf_counter()
                try:
                    fetched, stored = poll_source(session, self.engine, source, as_of=self.now())
                except Exception as exc:  # noqa: BLE001 - a poller must outlive a bad poll
                    log.exception("news poller %s failed", source.name)
                    self.stats.poll_errors.append(f"{source.name}: {type(exc).__name__}: {exc}")
                else:
                    if fetched.error is not None:
                        self.stats.poll_errors.append(fetched.error)
                    if fetched.parsed is not None:
                        self.stats.refused += len(fetched.parsed.refused)
                    self.accept(stored, arrival)
                wait = source.interval_s - (time.monotonic() - started)
                self._stop.wait(max(wait, 0.0))

    # -- acting ----------------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            arrival, stored = entry
            try:
                self.handle(stored, arrival)
            except Exception:  # noqa: BLE001 - one bad item must not stop the watcher
                log.exception("news watcher: handling %s/%s failed", stored.item.source,
                              stored.item.item_id)
                self._record(stored, None, "", "error", "handler failed; see the log")
            finally:
                try:
                    self._flush()
                except Exception:  # noqa: BLE001 - keep watching; the log has the reason
                    log.exception("news watcher: recording actions of %s failed",
                                  stored.item.item_id)
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _record(self, stored: StoredItem, firing: Firing | None, series: str, outcome: str,
                detail: str, *, ticker: str | None = None, key: str | None = None,
                latency_ms: float | None = None) -> None:
        # buffered: written in one transaction when the item is done (``_flush``)
        self.stats.count(outcome)
        self._actions.append(NewsAction(
            news_item_id=stored.row_id, rule_id=firing.rule_id if firing else "",
            effect=firing.effect if firing else "", series=series, market_ticker=ticker,
            outcome=outcome, detail=detail[:500], client_order_id=key,
            latency_ms=None if latency_ms is None else round(latency_ms),
            ts_ms=ms_from_datetime(self.now())))

    def _flush(self) -> None:
        actions, self._actions = self._actions, []
        record_news_actions(self.engine, actions)

    def handle(self, stored: StoredItem, arrival: float) -> None:
        """Act on one stored, non-duplicate item (called by the worker, in arrival order)."""
        as_of = self.now()
        firings = match_item(stored.item, self.rules)
        self.shifts = apply_firings(self.shifts, firings, thread_id=stored.thread_id,
                                    kind=stored.novelty, as_of=as_of)
        if not firings:
            return
        self.stats.fired += len(firings)
        if stored.novelty == "cancel":
            # re-price without the thread's shifts: news orders left resting are canceled
            # (cancels are allowed while halted; with no shift in force nothing is placed)
            for firing in firings:
                self._record(stored, firing, ",".join(firing.series), "canceled",
                             f"alert thread {stored.thread_id} canceled: its shifts removed")
                if firing.effect == "shift":
                    for series in firing.series:
                        self._shift(stored, firing, series, as_of, arrival, cancel_only=True)
            return
        halts = active_halts(self.engine)
        if halts:
            for firing in firings:
                self._record(stored, firing, ",".join(firing.series), "halted",
                             f"trading halted: {'; '.join(halts)}")
            return
        # shifts first (the fast path), then model refreshes (a whole pricing cycle each)
        for firing in sorted(firings, key=lambda f: f.effect != "shift"):
            if firing.effect == "refresh":
                self._refresh(stored, firing, as_of)
            else:
                for series in firing.series:
                    self._shift(stored, firing, series, as_of, arrival)

    def _refresh(self, stored: StoredItem, firing: Firing, as_of: datetime) -> None:
        if self.refresh is None:
            self._record(stored, firing, ",".join(firing.series), "skipped",
                         "no model refresh configured for this watcher")
            return
        try:
            summary = self.refresh(firing.series, as_of)
        except Exception as exc:  # noqa: BLE001 - a failed refresh must not stop the watcher
            log.exception("news watcher: refresh of %s failed", ",".join(firing.series))
            self._record(stored, firing, ",".join(firing.series), "refresh_failed",
                         f"{type(exc).__name__}: {exc}")
            return
        self._record(stored, firing, ",".join(firing.series), "refreshed", summary)

    def replay_shifts(self, as_of: datetime) -> int:
        """Rebuild the shifts in force from the items stored in the last 7 days (crash-only:
        a restarted watcher holds the same shifts as the one that died); return their count."""
        since = ms_from_datetime(as_of - timedelta(days=7))  # the longest ttl a rule may have
        with read_session(self.engine) as session:
            rows = list(session.exec(select(NewsItemRecord)
                                     .where(col(NewsItemRecord.first_seen_ts_ms) >= since)
                                     .order_by(col(NewsItemRecord.id))))
        shifts: tuple[ActiveShift, ...] = ()
        for row in rows:
            try:
                item = item_from_json(json.loads(row.payload_json))
            except (NewsParseError, ValueError) as exc:
                log.warning("news watcher: stored item %s not replayed: %s", row.id, exc)
                continue
            shifts = apply_firings(shifts, match_item(item, self.rules), thread_id=row.thread_id,
                                   kind=novelty(item, seen_before=False),
                                   as_of=datetime_from_ms(row.first_seen_ts_ms))
        self.shifts = tuple(s for s in shifts
                            if (as_of - s.start).total_seconds() < s.ttl_s)
        return len(self.shifts)

    def _category(self, series: str) -> str:
        if series not in self._categories:
            self._categories[series] = self.client.get_series(series).category
        return self._categories[series]

    def _base_probability(self, ticker: str, as_of: datetime) -> tuple[float, int] | None:
        # the latest model probability of `ticker` (not one of ours) and its decision id
        cutoff = ms_from_datetime(as_of - timedelta(seconds=self.config.max_model_age_s))
        with read_session(self.engine) as session:
            row = session.exec(
                select(Decision).where(col(Decision.market_ticker) == ticker,
                                       col(Decision.model_version) != MODEL_VERSION,
                                       col(Decision.decided_ts_ms) >= cutoff)
                .order_by(col(Decision.decided_ts_ms).desc(), col(Decision.id).desc())
            ).first()
        if row is None or row.id is None:
            return None
        return row.prob_yes, row.id

    def _own_keys(self, keys: Sequence[str]) -> set[str]:
        with read_session(self.engine) as session:
            rows = session.exec(select(OrderRecord.client_order_id).where(
                col(OrderRecord.client_order_id).in_(list(keys)),
                col(OrderRecord.strategy) == self.config.strategy))
            return set(rows)

    def _snapshot(self, tickers: Sequence[str]) -> ExchangeSnapshot:
        # our strategy's orders on these markets only: the gateway must not touch other quotes
        orders: list[Order] = []
        for ticker in tickers:
            orders += list(self.client.iter_orders(ticker=ticker))
        own = self._own_keys([o.client_order_id for o in orders if o.client_order_id])
        mine = tuple(o for o in orders if o.client_order_id in own)
        resting = tuple(
            RestingOrder(o.order_id, o.client_order_id, o.ticker, o.book_side, o.yes_price_cents,
                         o.remaining_contracts, int(o.fill_count))
            for o in mine if o.status == "resting" and o.remaining_contracts > 0)
        return ExchangeSnapshot(mine, resting, 0, ())

    def _shift(self, stored: StoredItem, firing: Firing, series: str, as_of: datetime,
               arrival: float, *, cancel_only: bool = False) -> None:
        # independent reads run concurrently (one round trip of latency instead of four)
        tagged = list(firing.tickers)
        started = time.perf_counter()
        try:
            balance_f = self._pool.submit(self.client.get_balance)
            state_f = self._pool.submit(read_risk_state, self.engine, equity_cents=_NO_EQUITY,
                                        as_of=as_of)
            category_f = self._pool.submit(self._category, series)
            if tagged:  # vendor-tagged markets: fetch just those (still in this series)
                found_f = self._pool.submit(self.client.get_markets, tickers=tagged,
                                            status="open")
                books_f = self._pool.submit(self.client.get_orderbooks, tagged[:100])
                snapshot_f = self._pool.submit(self._snapshot, tagged)
                found = found_f.result()
            else:
                found = self.client.get_markets(series_ticker=series, status="open")
            markets = [m for m in found if m.ticker.startswith(series + "-")
                       and (not tagged or m.ticker in tagged)]
            if not markets:
                self._record(stored, firing, series, "no_markets", "no open market to act on")
                return
            if not tagged:
                names = [m.ticker for m in markets][:100]
                books_f = self._pool.submit(self.client.get_orderbooks, names)
                snapshot_f = self._pool.submit(self._snapshot, names)
            balance = balance_f.result()
            category = category_f.result()
            books = books_f.result()
            snapshot = snapshot_f.result()
        except KalshiError as exc:
            self._record(stored, firing, series, "exchange_error", f"{type(exc).__name__}: {exc}")
            return
        if not category:
            self._record(stored, firing, series, "skipped", f"series {series} has no category: "
                         "the category exposure limit cannot be applied")
            return
        equity = balance.balance_cents + (balance.portfolio_value_cents or 0)
        read_done = time.perf_counter()
        state = _with_equity(state_f.result(), equity)
        if cancel_only:  # no book or model gates: only our orders where no shift is left
            wants: list[Want] = []
            tickers = [m.ticker for m in markets
                       if total_shift(self.shifts, series, m.ticker, as_of) == 0.0]
        else:
            wants, tickers = self._wants(stored, firing, series, markets, books, category,
                                         equity, state, as_of)
        if not tickers:
            return
        try:
            planned = time.perf_counter()
            report = apply_orders(
                self.client, self.engine, wants, managed_tickers=tickers, snapshot=snapshot,
                strategy=self.config.strategy, slot=f"news-item:{stored.row_id}", as_of=as_of,
                equity_cents=equity, limits=self.limits, ttl_s=self.config.order_ttl_s,
                order_group_limit=self.config.order_group_limit)
        except KalshiError as exc:
            self._record(stored, firing, series, "exchange_error", f"{type(exc).__name__}: {exc}")
            return
        acked_ms = (time.perf_counter() - arrival) * 1000
        for outcome in report.outcomes:
            acked = outcome.status in ("resting", "executed") or (
                outcome.status == "canceled" and outcome.action == "place")
            if acked:
                self.stats.orders_acked += 1
                self.stats.reaction_ms.append(acked_ms)
                self.stats.stages_ms.append({
                    "intake": (started - arrival) * 1000, "reads": (read_done - started) * 1000,
                    "plan": (planned - read_done) * 1000,
                    "gateway": acked_ms - (planned - arrival) * 1000})
            self._record(stored, firing, series, "ordered" if acked else outcome.status,
                         f"{outcome.action}: {outcome.status} {outcome.detail}".strip(),
                         ticker=outcome.market_ticker, key=outcome.client_order_id,
                         latency_ms=acked_ms if acked else None)
        if wants:
            self._fills.put(tuple(tickers))  # booked by the bookkeeper thread, off the fast path

    def _bookkeeper(self) -> None:
        while True:
            tickers = self._fills.get()
            try:
                if tickers is None:
                    return
                self._book_fills(tickers)
            finally:
                self._fills.task_done()

    def _book_fills(self, tickers: Sequence[str]) -> None:
        # book the fills of the markets just traded, so positions and exposure are current for
        # the next item (record_fill is idempotent by exchange fill id)
        try:
            for ticker in tickers:
                fills = list(self.client.iter_fills(ticker=ticker))
                ids = [f.order_id for f in fills]
                with read_session(self.engine) as session:
                    owners = dict(session.exec(
                        select(OrderRecord.exchange_order_id, OrderRecord.client_order_id)
                        .where(col(OrderRecord.exchange_order_id).in_(ids))).all())
                for fill in fills:
                    record_fill(self.engine, fill_report(fill, owners.get(fill.order_id)))
        except KalshiError as exc:
            log.warning("news watcher: fills of %s not booked yet (%s); the next sync books them",
                        ",".join(tickers), exc)

    def _wants(self, stored: StoredItem, firing: Firing, series: str, markets: Sequence[Market],
               books: dict[str, Orderbook], category: str, equity: int, state: RiskState,
               as_of: datetime) -> tuple[list[Want], list[str]]:
        # (orders wanted, markets whose news orders are managed: a managed market without a
        # want gets its resting news orders canceled)
        wants: list[Want] = []
        managed: list[str] = []
        for market in markets:
            book = books.get(market.ticker)
            if book is None:
                self._record(stored, firing, series, "skipped", "no order book returned",
                             ticker=market.ticker)
                continue
            thin = thin_book_reason([int(lv.count) for lv in book.yes],
                                    [int(lv.count) for lv in book.no],
                                    min_depth_contracts=self.config.min_depth_contracts)
            if thin is not None:
                self._record(stored, firing, series, "thin_book", thin, ticker=market.ticker)
                continue
            base = self._base_probability(market.ticker, as_of)
            if base is None:
                self._record(stored, firing, series, "no_model",
                             f"no model probability younger than {self.config.max_model_age_s}s",
                             ticker=market.ticker)
                continue
            base_prob, base_decision = base
            shift = total_shift(self.shifts, series, market.ticker, as_of)
            managed.append(market.ticker)
            if shift == 0.0:  # no news in force: the model's own strategy trades this market
                continue
            prob = shift_probability(base_prob, shift)
            try:
                quote = Quote(market.ticker, *(
                    None if p is None else price_cents_from_dollars(p, field="book price")
                    for p in (book.best_yes_bid, book.best_yes_ask)))
            except MoneyError as exc:  # e.g. a sub-penny top of book: not priced, said so
                self._record(stored, firing, series, "skipped", str(exc), ticker=market.ticker)
                continue
            volume = int(market.volume_24h)

            def cap(side: str, price: int, m: Market = market, adv: int = volume) -> int:
                probe = OrderRequest(m.ticker, m.event_ticker, category, side, price, 1, adv)
                return max_order_contracts(probe, state, self.limits)

            bankroll = max(equity, 0)
            held = sum(h.contracts for h in state.holdings if h.market_ticker == market.ticker)
            plan = plan_market(prob, quote, self.params, as_of=as_of, bankroll_cents=bankroll,
                               max_contracts=max(cap("yes", 1), cap("no", 1)),
                               held_contracts=held)
            if plan.orders:
                tight = cap(plan.orders[0].side, plan.orders[0].price_cents)
                if tight < plan.orders[0].count:
                    plan = plan_market(prob, quote, self.params, as_of=as_of,
                                       bankroll_cents=bankroll, max_contracts=tight,
                                       held_contracts=held)
            chosen = plan.orders[0] if plan.orders else None
            inputs = {"model": MODEL_VERSION, "item": f"{stored.item.source}/{stored.item.item_id}",
                      "thread": stored.thread_id, "rule": firing.rule_id,
                      "rules_version": self.rules.version, "rules_digest": self.rules.digest,
                      "base_prob": round(base_prob, 6), "base_decision_id": base_decision,
                      "log_odds_shift": round(shift, 6)}
            decision_id = record_decision(self.engine, Decision(
                strategy=self.config.strategy, market_ticker=market.ticker,
                event_ticker=market.event_ticker, model_version=MODEL_VERSION,
                model_inputs_json=json.dumps(inputs, sort_keys=True), prob_yes=prob,
                yes_bid_cents=quote.yes_bid_cents, yes_ask_cents=quote.yes_ask_cents,
                edge_cents=plan.edge_cents, action=plan.action,
                intended_side=chosen.side if chosen else None,
                intended_price_cents=chosen.price_cents if chosen else None,
                intended_count=chosen.count if chosen else None, reason=plan.reason,
                decided_ts_ms=ms_from_datetime(as_of)))
            if chosen is None:
                self._record(stored, firing, series, "no_edge", plan.reason, ticker=market.ticker)
                continue
            wants.append(Want(chosen, market.event_ticker, category, volume, decision_id))
        return wants, managed

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Rebuild the shifts in force, then start the worker and one poller per source."""
        self.replay_shifts(self.now())
        self._threads.append(threading.Thread(target=self._worker, name="news-worker",
                                              daemon=True))
        self._threads.append(threading.Thread(target=self._bookkeeper, name="news-fills",
                                              daemon=True))
        for source in self.sources:
            self._threads.append(threading.Thread(target=self._poll_loop, args=(source,),
                                                  name=f"news-poll-{source.name}", daemon=True))
        for thread in self._threads:
            thread.start()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every queued item was handled and its fills booked; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        while self._fills.unfinished_tasks > 0:  # and the fills of what it sent are booked
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop pollers, let the worker finish the queue, and join the threads."""
        self._stop.set()
        self._queue.put(None)
        for thread in self._threads:
            if thread.name == "news-fills":
                continue
            thread.join(timeout_s)
        self._fills.put(None)  # after the worker: every acknowledged order's fills get booked
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()
        self._pool.shutdown(wait=True)

    @contextmanager
    def running(self) -> Iterator[NewsWatcher]:
        """Run the watcher for the duration of a ``with`` block."""
        self.start()
        try:
            yield self
        finally:
            self.stop()


def webhook_app(watcher: NewsWatcher) -> Starlette:
    """Return the push endpoint: ``POST /news`` (JSON item(s) or NWS alert GeoJSON)."""
    token = watcher.config.webhook_token

    async def push(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("X-Eventdesk-Token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"error": "missing or wrong X-Eventdesk-Token"},
                                    status_code=401)
        body = await request.body()
        try:
            result = await run_in_threadpool(watcher.push, body)
        except NewsParseError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result, status_code=202)

    async def health(request: Request) -> Response:
        stats = watcher.stats
        return JSONResponse({"received": stats.received, "orders_acked": stats.orders_acked,
                             "rules_version": watcher.rules.version})

    return Starlette(routes=[Route("/news", push, methods=["POST"]),
                             Route("/health", health, methods=["GET"])])
