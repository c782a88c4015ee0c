"""The order gateway: the ONE path from desired orders to the exchange.

Invariants:
- Every order that adds exposure passes the risk gate and has its intent written in the ledger
  (``reserve_intents``: the cycle's intents in one transaction, each checked against the state
  including the ones before it) and is marked ``sent`` (one transaction per cycle) BEFORE it is
  sent; a rejection is recorded, never raised, and never stops the other markets of the cycle.
  The acknowledgements of one batch response are recorded in one transaction, as are the
  cancels of one batch cancel and the fills of one booking pass; an event row per change, as one
  by one.
- Keys are deterministic (``models.orderkey``): a retried task, flow or crashed process re-derives
  the same ``client_order_id``; an order whose outcome is unknown (timeout, 5xx after send,
  dropped acknowledgement, kill -9) is resolved by looking it up by ``client_order_id`` before
  anything is resent, and intents left unresolved by a dead run are resolved the same way at the
  start of the next cycle (``sync_exchange``).
- Every resting order carries ``expiration_time`` = decision time + ``order_ttl_s``, so the orders
  of a dead process expire at the exchange.
- Cancels are always allowed (also while halted); nothing here knows which venue it talks to.
- A fill the ledger cannot book (an order it does not know, in a market it holds nothing in)
  never stops the cycle: it is recorded as drift (an ``input`` risk event and a ``drift:`` halt,
  deduplicated) so new exposure stops until the reconciler imports it and a human resumes.
- Fill booking is incremental: a cycle asks the exchange only for fills at or after the
  watermark (the newest fill the ledger holds, by the exchange's own timestamps) minus
  ``FILL_OVERLAP_S``, so its cost does not grow with the account's history; the ledger dedupes
  by fill id. A fill that shows up later than the overlap with an older timestamp is not lost:
  the reconcile flow reads the whole history by cursor and imports it (``tasks.reconcile``).

Order changes map onto Kalshi's V2 endpoints: Place -> batch create; Cancel -> batch cancel;
Decrease (same price, smaller) -> decrease (keeps queue priority, adds no exposure); Amend (new
price or more contracts) -> cancel + re-create under a new key in the same round trips. Kalshi's
own amend keeps the exchange order id while the ledger books exposure per order row with fixed
terms (unique exchange id), so a replace is the representation that keeps the ledger exact; a
price change loses queue priority on Kalshi's amend as well.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Final

from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import col, select

from kalshi.client import KalshiClient, order_request
from kalshi.errors import KalshiError, OrderRejected, OutcomeUnknown, TransientError
from kalshi.wire import BatchCancelOrder, CreateOrderV2Request, DecreaseOrderV2Request, Fill, Order
from models.edge import DesiredOrder as EdgeOrder
from models.ledger import ACTIVE_ORDER_STATUSES, LedgerError, OrderRecord, ms_from_datetime
from models.ledger import Fill as LedgerFill
from models.money import fp_from_contracts
from models.orderkey import client_order_id
from models.orders import (
    Amend,
    BookOrder,
    Cancel,
    Decrease,
    Keep,
    Place,
    RestingOrder,
    diff_orders,
)
from models.risk import OrderRequest, Rejection, RiskLimits
from tasks.db import read_session
from tasks.ledger_store import (
    FillReport,
    IntentRequest,
    OrderSnapshot,
    ReservedIntent,
    Transition,
    TransitionRefused,
    record_fills,
    record_rejection,
    record_rejections,
    reserve_intents,
    transition_order,
    transition_orders,
)

__all__ = [
    "BATCH_SIZE",
    "DRIFT_HALT_PREFIX",
    "FILL_OVERLAP_S",
    "MAX_REVISIONS",
    "ExchangeSnapshot",
    "GatewayReport",
    "OrderOutcome",
    "Want",
    "apply_orders",
    "book_fills",
    "book_order",
    "fill_report",
    "fill_watermark_ms",
    "record_skip",
    "record_skips",
    "sync_exchange",
]

log = logging.getLogger(__name__)

BATCH_SIZE: Final = 20  # Kalshi's batch endpoints take at most 20 orders per call
MAX_REVISIONS: Final = 8  # replacements of one (market, side) within one decision slot
DRIFT_HALT_PREFIX: Final = "drift:"  # halts set for fills the ledger could not book
# how far before the ledger's newest fill a booking pass looks again: fills the exchange lists
# late (with an older timestamp) inside this window are still booked by the next cycle
FILL_OVERLAP_S: Final = 600
_EXCHANGE_STATUS: Final = {"resting": "resting", "executed": "executed", "canceled": "canceled"}


@dataclass(frozen=True)
class Want:
    """A desired order plus what the risk gate and the ledger need to know about it."""

    order: EdgeOrder
    event_ticker: str
    category: str
    avg_daily_volume: int | None
    decision_id: int | None = None


@dataclass(frozen=True)
class OrderOutcome:
    """What happened to one market's order change this cycle (one line of the report)."""

    market_ticker: str
    action: str  # place | replace | decrease | cancel | keep
    client_order_id: str | None
    status: str  # resting | executed | canceled | rejected | unknown | kept | skipped
    detail: str = ""


@dataclass(frozen=True)
class ExchangeSnapshot:
    """Our orders as the exchange reports them, after the ledger was brought up to date."""

    orders: tuple[Order, ...]
    resting: tuple[RestingOrder, ...]
    fills_booked: int
    resolved: tuple[str, ...]  # client_order_ids whose unresolved intents were settled

    def by_client_id(self) -> dict[str, Order]:
        """Return the exchange orders keyed by ``client_order_id``."""
        return {o.client_order_id: o for o in self.orders if o.client_order_id}


@dataclass
class GatewayReport:
    """Outcomes of one ``apply_orders`` call, and the round trips it took."""

    outcomes: list[OrderOutcome] = field(default_factory=list)
    calls: int = 0

    def count(self, action: str, status: str | None = None) -> int:
        """Return how many outcomes have `action` (and `status`, if given)."""
        return sum(1 for o in self.outcomes
                   if o.action == action and (status is None or o.status == status))


def book_order(order: EdgeOrder) -> BookOrder:
    """Map an edge order (outcome side, its price) to the YES book (bid/ask, YES price)."""
    return BookOrder(order.market_ticker, order.book_side, order.yes_price_cents, order.count)


def _cents_ceil(dollars: Decimal | None) -> int:
    # the ledger books whole cents; a sub-penny fee is rounded up (cost is never understated)
    if dollars is None:
        return 0
    return int((dollars * 100).to_integral_value(rounding=ROUND_CEILING))


def _price_cents(dollars: Decimal, what: str) -> int:
    cents = dollars * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{what}: sub-penny price {dollars} is not supported by the ledger")
    return int(cents)


def fill_report(fill: Fill, client_id: str | None) -> FillReport:
    """Map an exchange fill to ledger units: the outcome bought and the price paid for it."""
    side = "yes" if fill.book_side == "bid" else "no"
    price = fill.yes_price if side == "yes" else fill.no_price
    ts_ms = ms_from_datetime(fill.created_time) if fill.created_time is not None else 0
    return FillReport(
        exchange_fill_id=fill.fill_id, market_ticker=fill.ticker, side=side,
        price_cents=_price_cents(price, f"fill {fill.fill_id} price"),
        count=fill.count_contracts, fee_cents=_cents_ceil(fill.fee_cost),
        is_taker=fill.is_taker, ts_ms=ts_ms, client_order_id=client_id,
        exchange_order_id=fill.order_id,
    )


_IN_CHUNK: Final = 500  # values per IN (...) query, well under SQLite's bound-parameter limit


def _ledger_orders_by_key(engine: Engine, keys: Iterable[str]) -> dict[str, OrderRecord]:
    # only the rows a cycle needs: the ledger keeps every order it ever saw
    wanted = sorted(set(keys))
    rows: dict[str, OrderRecord] = {}
    with read_session(engine) as session:
        for start in range(0, len(wanted), _IN_CHUNK):
            query = select(OrderRecord).where(
                col(OrderRecord.client_order_id).in_(wanted[start:start + _IN_CHUNK]))
            rows.update((row.client_order_id, row) for row in session.exec(query))
    return rows


def _unresolved_orders(engine: Engine) -> list[OrderRecord]:
    # active rows, and finished rows that never learnt their exchange id (a fill can finish an
    # order in the ledger before its acknowledgement is resolved)
    with read_session(engine) as session:
        query = select(OrderRecord).where(
            col(OrderRecord.status).in_(sorted(ACTIVE_ORDER_STATUSES))
            | col(OrderRecord.exchange_order_id).is_(None))
        return list(session.exec(query.order_by(col(OrderRecord.id))))


def _resolve(engine: Engine, row: OrderRecord, found: Order | None, *, as_of: datetime,
             why: str) -> str:
    # bring one ledger order to what the exchange says; return its new status
    if found is None:
        if row.status in ("intent", "sent", "unknown"):
            transition_order(engine, row.client_order_id, "canceled", as_of=as_of,
                             detail=f"{why}: not at the exchange; never accepted")
            return "canceled"
        return row.status
    status = _EXCHANGE_STATUS[found.status]
    filled = int(found.fill_count)
    if status == row.status and filled <= row.exchange_filled_count and (
            row.exchange_order_id == found.order_id):
        return status
    if row.status not in ACTIVE_ORDER_STATUSES and status != row.status:
        record_skip(engine, row.market_ticker,
                    f"{row.client_order_id}: ledger says {row.status}, exchange says {status} "
                    f"({found.order_id}); needs review", as_of=as_of)
        return row.status
    transition_order(engine, row.client_order_id, status, as_of=as_of,
                     exchange_order_id=found.order_id,
                     exchange_filled_count=min(filled, row.count), detail=why)
    return status


def fill_watermark_ms(engine: Engine) -> int | None:
    """Return the exchange timestamp (ms) of the newest fill the ledger holds (None: none)."""
    with read_session(engine) as session:  # an index lookup (fills.ts_ms is indexed)
        newest = session.exec(select(func.max(LedgerFill.ts_ms))).one()
    return None if newest is None else int(newest)


def book_fills(client: KalshiClient, engine: Engine, *, as_of: datetime,
               owners: dict[str, str] | None = None,
               webhook: SecretStr | str | None = None,
               overlap_s: int | None = FILL_OVERLAP_S) -> int:
    """Book the exchange fills the ledger lacks (idempotent); return how many were new.

    Only fills at or after the ledger's watermark minus `overlap_s` seconds are read (the whole
    history when the ledger has no fill yet, or with `overlap_s` None); older late fills are the
    reconciler's (it reads everything by cursor).
    `owners` maps exchange order ids to client order ids; the exchange's order list is read
    only when a new fill's order is not in it (or `owners` is omitted).
    A fill the ledger refuses is recorded as drift (risk event + deduplicated ``drift:`` halt,
    alerted to `webhook`) for the reconciler; the other fills are still booked.
    """
    if overlap_s is not None and overlap_s < 0:
        raise ValueError(f"overlap_s: must be >= 0 seconds (got {overlap_s})")
    min_ts: int | None = None  # Unix seconds, as Kalshi's GET /portfolio/fills takes it
    if overlap_s is not None:
        newest_ms = fill_watermark_ms(engine)
        if newest_ms is not None:
            min_ts = max(newest_ms // 1000 - overlap_s, 0)
    fills = list(client.iter_fills(min_ts=min_ts, limit=200))
    ids = sorted({f.fill_id for f in fills})
    seen: set[str] = set()
    with read_session(engine) as session:  # only the ids at hand: the ledger keeps every fill
        for start in range(0, len(ids), _IN_CHUNK):
            seen.update(session.exec(select(LedgerFill.exchange_fill_id).where(
                col(LedgerFill.exchange_fill_id).in_(ids[start:start + _IN_CHUNK]))))
    new = [f for f in fills if f.fill_id not in seen]
    if any(f.order_id not in (owners or {}) for f in new):  # ask only when one is missing
        owners = (owners or {}) | {o.order_id: o.client_order_id
                                   for o in client.iter_orders(limit=200)}
    reports = [fill_report(fill, (owners or {}).get(fill.order_id)) for fill in new]
    booked = 0
    # one transaction; a fill the ledger refuses changes nothing and does not stop the others
    for fill, result in zip(new, record_fills(engine, reports) if reports else [], strict=True):
        if isinstance(result, LedgerError):  # e.g. a fill of an order placed outside eventdesk
            _record_fill_drift(engine, fill, result, as_of=as_of, webhook=webhook)
        else:
            booked += result
    return booked


def _record_fill_drift(engine: Engine, fill: Fill, exc: LedgerError, *, as_of: datetime,
                       webhook: SecretStr | str | None) -> None:
    # the exchange holds exposure the ledger does not: record it, and halt new exposure until
    # the reconciler has imported it (it books unknown-order fills with their event)
    from tasks.safety import halt_trading  # tasks.safety imports the client factory

    text = f"fill {fill.fill_id} ({fill.ticker}, order {fill.order_id}) not booked: {exc}"
    record_skip(engine, fill.ticker, text[:500], as_of=as_of)
    halt_trading(engine, f"{DRIFT_HALT_PREFIX} {text}; run reconcile"[:500], set_by="gateway",
                 as_of=as_of, webhook=webhook, dedupe_prefix=DRIFT_HALT_PREFIX)


def sync_exchange(client: KalshiClient, engine: Engine, *, as_of: datetime,
                  resolve_after_s: float | None = 30.0,
                  webhook: SecretStr | str | None = None) -> ExchangeSnapshot:
    """Book every exchange fill, resolve unresolved intents by key, and return our orders.

    Intents younger than `resolve_after_s` (None: all) are left alone when the exchange does not
    know them (another live run may be about to send them); older ones were never accepted.
    """
    orders = tuple(client.iter_orders(limit=200))
    by_id = {o.order_id: o for o in orders}
    by_cid = {o.client_order_id: o for o in orders if o.client_order_id}
    booked = book_fills(client, engine, as_of=as_of,
                        owners={o.order_id: o.client_order_id for o in orders},
                        webhook=webhook)
    resolved: list[str] = []
    cutoff_ms = (None if resolve_after_s is None
                 else ms_from_datetime(as_of - timedelta(seconds=resolve_after_s)))
    for row in _unresolved_orders(engine):
        found = by_cid.get(row.client_order_id)
        if found is None and row.exchange_order_id is not None:
            found = by_id.get(row.exchange_order_id)
        if found is None and (row.status not in ACTIVE_ORDER_STATUSES or cutoff_ms is None
                              or row.updated_ts_ms > cutoff_ms):
            continue
        before = row.status
        after = _resolve(engine, row, found, as_of=as_of, why="resolved at cycle start")
        if before in ("intent", "sent", "unknown") and after != before:
            resolved.append(row.client_order_id)
    resting = tuple(
        RestingOrder(o.order_id, o.client_order_id, o.ticker, o.book_side, o.yes_price_cents,
                     o.remaining_contracts, int(o.fill_count))
        for o in orders if o.status == "resting" and o.remaining_contracts > 0
    )
    return ExchangeSnapshot(orders, resting, booked, tuple(resolved))


@dataclass(frozen=True)
class _Pending:
    want: Want
    key: str
    request: CreateOrderV2Request
    action: str


class _Gateway:
    def __init__(self, client: KalshiClient, engine: Engine, *, strategy: str, slot: str,
                 as_of: datetime, equity_cents: int, limits: RiskLimits, ttl_s: int,
                 known: dict[str, Order], order_group_id: str | None = None) -> None:
        self.client, self.engine = client, engine
        self.strategy, self.slot, self.as_of = strategy, slot, as_of
        self.equity_cents, self.limits, self.ttl_s = equity_cents, limits, ttl_s
        self.known = known
        self.order_group_id = order_group_id  # the strategy's exchange order group (or None)
        self.report = GatewayReport()
        self.owners: dict[str, str] = {}  # exchange order id -> client order id, as acknowledged
        self.ledger_keys: dict[str, OrderRecord] = {}  # rows of the keys in `loaded`
        self.loaded: set[str] = set()

    def load_keys(self, cancels: Sequence[tuple[RestingOrder, str]],
                  places: Sequence[tuple[Want, str]]) -> None:
        """Read the ledger rows of the keys this call touches (one query, not the ledger):
        the resting orders' and each place's first key of the slot (later revisions are read
        by ``_key`` only when the ones before them are spent)."""
        keys = {r.client_order_id for r, _ in cancels if r.client_order_id}
        keys.update(client_order_id(self.strategy, w.order.market_ticker, w.order.side,
                                    self.slot, 0) for w, _ in places)
        self._load(keys)

    def _load(self, keys: Iterable[str]) -> None:
        wanted = set(keys)
        self.ledger_keys.update(_ledger_orders_by_key(self.engine, wanted))
        self.loaded |= wanted

    def outcome(self, ticker: str, action: str, key: str | None, status: str,
                detail: str = "") -> None:
        self.report.outcomes.append(OrderOutcome(ticker, action, key, status, detail))
        log.info("gateway %s %s client_order_id=%s -> %s %s", action, ticker, key, status, detail)

    # -- cancels --------------------------------------------------------------------------------
    def cancel(self, items: Sequence[tuple[RestingOrder, str]]) -> set[str]:
        """Cancel `items` in batches; return the exchange ids that are gone."""
        gone: set[str] = set()
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start:start + BATCH_SIZE]
            requests = [BatchCancelOrder(order_id=r.order_id, market_ticker=r.ticker)
                        for r, _ in chunk]
            self.report.calls += 1
            try:
                results = {i.order_id: i for i in self.client.batch_cancel_orders(requests)}
            except KalshiError as exc:
                for resting, action in chunk:
                    self.outcome(resting.ticker, action, resting.client_order_id, "unknown",
                                 f"cancel failed: {type(exc).__name__}: {exc}")
                continue
            canceled: list[tuple[RestingOrder, str]] = []
            for resting, action in chunk:
                item = results.get(resting.order_id)
                if item is not None and item.error is not None:
                    self.outcome(resting.ticker, action, resting.client_order_id, "rejected",
                                 f"cancel refused: {item.error.code}: {item.error.message}")
                    continue
                gone.add(resting.order_id)
                canceled.append((resting, action))
            refused = self._book_cancels([r for r, _ in canceled])  # one transaction
            for resting, action in canceled:
                detail = refused.get(resting.client_order_id, "")
                self.outcome(resting.ticker, action, resting.client_order_id, "canceled",
                             detail and f"cancel not recorded in the ledger: {detail}")
        return gone

    def _book_cancels(self, gone: Sequence[RestingOrder]) -> dict[str, str]:
        # the ledger side of one batch cancel; returns the changes it refused (key -> reason)
        changes = []
        for resting in gone:
            row = self.ledger_keys.get(resting.client_order_id)
            if row is None or row.status not in ACTIVE_ORDER_STATUSES:
                continue
            changes.append(Transition(resting.client_order_id, "canceled", resting.order_id,
                                      min(resting.fill_count, row.count),
                                      "canceled by the gateway"))
        return {r.client_order_id: r.reason for r in self._transition(changes)
                if isinstance(r, TransitionRefused)}

    def _transition(self, changes: Sequence[Transition]) -> list[OrderSnapshot |
                                                                 TransitionRefused]:
        # one ledger transaction for `changes`; a refused change is logged (the caller reports it)
        if not changes:
            return []
        results = transition_orders(self.engine, changes, as_of=self.as_of)
        for result in results:
            if isinstance(result, TransitionRefused):
                log.warning("gateway: ledger refused %s -> %s: %s", result.client_order_id,
                            result.status, result.reason)
        return results

    # -- decreases ------------------------------------------------------------------------------
    def decrease(self, change: Decrease) -> None:
        resting = change.resting
        self.report.calls += 1
        try:
            self.client.decrease_order(resting.order_id, DecreaseOrderV2Request(
                reduce_to=fp_from_contracts(change.reduce_to), market_ticker=resting.ticker))
        except KalshiError as exc:
            status = "unknown" if isinstance(exc, TransientError) else "rejected"
            self.outcome(resting.ticker, "decrease", resting.client_order_id, status,
                         f"{type(exc).__name__}: {exc}")
            return
        self.outcome(resting.ticker, "decrease", resting.client_order_id, "resting",
                     f"remaining {resting.remaining_count} -> {change.reduce_to}")

    # -- places ---------------------------------------------------------------------------------
    def _key(self, want: Want) -> str | None:
        # the first revision of this slot's key that is not spent; None when all are spent
        order = want.order
        for revision in range(MAX_REVISIONS):
            key = client_order_id(self.strategy, order.market_ticker, order.side, self.slot,
                                  revision)
            if key not in self.loaded:
                self._load([key])
            row = self.ledger_keys.get(key)
            if row is None or row.status in ACTIVE_ORDER_STATUSES:
                return key
            if row.exchange_order_id is not None:
                return None  # this slot's order reached the exchange: one per slot and side
        return None

    def reserve(self, items: Sequence[tuple[Want, str]]) -> list[_Pending]:
        """Reserve the intents of `items` (want, action) in ONE ledger transaction, in order;
        return what is to be sent. Outcomes of the rest (rejected, resolved) are reported."""
        keyed: list[tuple[Want, str, str, int | None]] = []
        intents: list[IntentRequest] = []
        for want, action in items:
            order = want.order
            key = self._key(want)
            if key is None:
                self.outcome(order.market_ticker, action, None, "skipped",
                             f"an order of decision slot {self.slot} already reached the "
                             f"exchange")
                continue
            request = OrderRequest(order.market_ticker, want.event_ticker, want.category,
                                   order.side, order.price_cents, order.count,
                                   want.avg_daily_volume)
            expiration_ms = None
            if order.time_in_force == "good_till_canceled":
                expiration_ms = ms_from_datetime(self.as_of + timedelta(seconds=self.ttl_s))
            keyed.append((want, action, key, expiration_ms))
            intents.append(IntentRequest(key, self.strategy, request, order.time_in_force,
                                         expiration_ms, want.decision_id))
        if not intents:
            return []
        verdicts = reserve_intents(self.engine, intents, equity_cents=self.equity_cents,
                                   as_of=self.as_of, limits=self.limits)
        pending: list[_Pending] = []
        for (want, action, key, expiration_ms), verdict in zip(keyed, verdicts, strict=True):
            try:
                item = self._pending(want, action, key, expiration_ms, verdict)
            except KalshiError as exc:
                self.outcome(want.order.market_ticker, action, None, "skipped",
                             f"{type(exc).__name__}: {exc}")
                continue
            if item is not None:
                pending.append(item)
        return pending

    def _pending(self, want: Want, action: str, key: str, expiration_ms: int | None,
                 verdict: ReservedIntent | Rejection) -> _Pending | None:
        # what one reservation means: send it, or report why not (rejected, resolved by key)
        order = want.order
        if isinstance(verdict, Rejection):
            self.outcome(order.market_ticker, action, key, "rejected",
                         f"risk {verdict.limit}: {verdict.reason}")
            return None
        assert isinstance(verdict, ReservedIntent)
        if verdict.already_recorded and verdict.status not in ("intent", "sent", "unknown"):
            self.outcome(order.market_ticker, action, key, verdict.status,
                         "already recorded under this key")
            return None
        found = self.known.get(key)
        if found is not None:  # accepted by an earlier attempt: resolve, never resend
            row = self._row(key)
            status = _resolve(self.engine, row, found, as_of=self.as_of, why="found by key")
            self.outcome(order.market_ticker, action, key, status, "resolved by lookup")
            return None
        wire = order_request(
            order.market_ticker, order.book_side, order.count, order.yes_price_cents,
            client_order_id=key, time_in_force=order.time_in_force,
            expiration_ts=None if expiration_ms is None else expiration_ms // 1000,
            order_group_id=self.order_group_id)
        return _Pending(want, key, wire, action)

    def _row(self, key: str) -> OrderRecord:
        self._load([key])
        return self.ledger_keys[key]

    def send(self, pending: Sequence[_Pending]) -> None:
        # every order is `sent` in the ledger (one transaction) before any request leaves
        marked = self._transition([Transition(p.key, "sent") for p in pending])
        ready: list[_Pending] = []
        for item, mark in zip(pending, marked, strict=True):
            if isinstance(mark, TransitionRefused):  # e.g. resolved meanwhile by another run
                self.outcome(item.want.order.market_ticker, item.action, item.key, "skipped",
                             f"not sent: {mark.reason}")
                continue
            ready.append(item)
        for start in range(0, len(ready), BATCH_SIZE):
            chunk = ready[start:start + BATCH_SIZE]
            self.report.calls += 1
            try:
                results = self.client.batch_create_orders([p.request for p in chunk])
            except KalshiError as exc:
                log.warning("gateway batch create failed (%s); resolving %d orders by key",
                            type(exc).__name__, len(chunk))
                self._resolve_batch(chunk, exc)
                continue
            acks: list[tuple[_Pending, Transition]] = []
            for item, result in zip(chunk, results, strict=True):
                if result.error is not None:
                    detail = f"{result.error.code}: {result.error.message}"
                    acks.append((item, Transition(item.key, "rejected", detail=detail[:500])))
                    continue
                assert result.order_id is not None
                acks.append((item, self._ack_change(item, result.order_id, result.fill_count,
                                                    result.remaining_count, "")))
            self._record_acks(acks)  # the batch response in one transaction

    def _resolve_batch(self, chunk: Sequence[_Pending], exc: KalshiError) -> None:
        # the batch may have been (partly) accepted: look every key up BEFORE resending any;
        # a key is reusable once its order is done, so a blind resend could duplicate a fill
        try:
            found = {o.client_order_id: o for o in self.client.iter_orders(limit=200)}
        except KalshiError as lookup_exc:
            why = f"batch {type(exc).__name__}; lookup {type(lookup_exc).__name__}"
            self._record_acks([(item, Transition(item.key, "unknown", detail=why))
                               for item in chunk],
                              detail="outcome unknown; resolved by key next cycle")
            return
        self.report.calls += 1
        for item in chunk:
            order = found.get(item.key)
            if order is None:
                self._send_one(item)
                continue
            row = self._row(item.key)
            status = _resolve(self.engine, row, order, as_of=self.as_of, why="found by key")
            self.outcome(item.want.order.market_ticker, item.action, item.key, status,
                         "resolved by lookup")

    def _send_one(self, item: _Pending) -> None:
        self.report.calls += 1
        try:
            ack = self.client.create_order(item.request)  # resolves 409/unknown by lookup
        except OrderRejected as exc:
            self._record_acks([(item, Transition(item.key, "rejected", detail=str(exc)[:500]))],
                              detail=str(exc))
            return
        except (OutcomeUnknown, TransientError, KalshiError) as exc:
            self._record_acks([(item, Transition(item.key, "unknown",
                                                 detail=f"{type(exc).__name__}: {exc}"[:500]))],
                              detail="outcome unknown; resolved by key next cycle")
            return
        self._acknowledge(item, ack.order_id, ack.fill_count, ack.remaining_count,
                          "resolved by lookup" if ack.resolved_by_lookup else "")

    def _ack_change(self, item: _Pending, order_id: str, fill_count: Decimal | None,
                    remaining: Decimal | None, detail: str) -> Transition:
        # the ledger change an acknowledgement means
        order = item.want.order
        filled = int(fill_count or 0)
        left = int(remaining) if remaining is not None else order.count - filled
        if left > 0 and order.time_in_force == "good_till_canceled":
            status = "resting"
        elif filled >= order.count:
            status = "executed"
        else:  # an immediate-or-cancel remainder is canceled by the exchange (fills are kept)
            status = "canceled"
        return Transition(item.key, status, order_id, min(filled, order.count), detail or None)

    def _acknowledge(self, item: _Pending, order_id: str, fill_count: Decimal | None,
                     remaining: Decimal | None, detail: str) -> None:
        self._record_acks([(item, self._ack_change(item, order_id, fill_count, remaining,
                                                   detail))])

    def _record_acks(self, acks: Sequence[tuple[_Pending, Transition]],
                     detail: str | None = None) -> None:
        # record what the exchange answered for `acks` in one transaction and report each;
        # `detail` replaces the ledger detail in the report (default: the change's own)
        results = self._transition([change for _, change in acks])
        for (item, change), result in zip(acks, results, strict=True):
            if change.exchange_order_id is not None:
                self.owners[change.exchange_order_id] = change.client_order_id
            text = (change.detail or "") if detail is None else detail
            if isinstance(result, TransitionRefused):
                text = f"{text}; not recorded in the ledger: {result.reason}".lstrip("; ")
            self.outcome(item.want.order.market_ticker, item.action, item.key, change.status,
                         text)


def apply_orders(
    client: KalshiClient,
    engine: Engine,
    wants: Sequence[Want],
    *,
    managed_tickers: Iterable[str],
    snapshot: ExchangeSnapshot,
    strategy: str,
    slot: str,
    as_of: datetime,
    equity_cents: int,
    limits: RiskLimits,
    ttl_s: int,
    order_group_limit: int | None = None,
) -> GatewayReport:
    """Turn the resting orders of `managed_tickers` into `wants` (no want there: cancel).

    Cancels go first (they free exposure), then decreases, then risk-gated creates; every step
    is recorded per market and a failure in one market never stops the others.
    With `order_group_limit` (``Settings.order_group_contracts_limit``) every create carries the
    strategy's exchange order group (``tasks.order_groups``; no creates if it cannot be had), and
    a create refused because the group is triggered halts trading instead of being resent.
    """
    managed = set(managed_tickers)
    by_key = {(w.order.market_ticker, w.order.book_side): w for w in wants}
    unmanaged = sorted({w.order.market_ticker for w in wants} - managed)
    if unmanaged:
        raise ValueError(f"wants: markets {unmanaged} are not in managed_tickers")
    resting = [r for r in snapshot.resting if r.ticker in managed]
    gateway = _Gateway(client, engine, strategy=strategy, slot=slot, as_of=as_of,
                       equity_cents=equity_cents, limits=limits, ttl_s=ttl_s,
                       known=snapshot.by_client_id())
    actions = diff_orders([book_order(w.order) for w in wants], resting)
    cancels: list[tuple[RestingOrder, str]] = []
    places: list[tuple[Want, str]] = []
    decreases: list[Decrease] = []
    for action in actions:
        if isinstance(action, Cancel):
            cancels.append((action.resting, "cancel"))
        elif isinstance(action, Place):
            places.append((by_key[(action.desired.ticker, action.desired.side)], "place"))
        elif isinstance(action, Amend):
            cancels.append((action.resting, "replace"))
            places.append((by_key[(action.desired.ticker, action.desired.side)], "replace"))
        elif isinstance(action, Decrease):
            decreases.append(action)
        elif isinstance(action, Keep):
            gateway.outcome(action.resting.ticker, "keep", action.resting.client_order_id,
                            "kept")
    gateway.load_keys(cancels, places)
    gone = gateway.cancel(cancels)
    for change in decreases:
        gateway.decrease(change)
    replaced = {r.ticker for r, a in cancels if a == "replace" and r.order_id not in gone}
    if places and order_group_limit is not None:
        from tasks.order_groups import strategy_group

        gateway.report.calls += 1
        try:
            gateway.order_group_id = strategy_group(client, engine, strategy,
                                                    contracts_limit=order_group_limit,
                                                    as_of=as_of)
        except KalshiError as exc:  # never send a strategy's orders outside its group
            for want, kind in places:
                gateway.outcome(want.order.market_ticker, kind, None, "skipped",
                                f"order group of {strategy} unavailable: "
                                f"{type(exc).__name__}: {exc}")
            places = []
    reservable: list[tuple[Want, str]] = []
    for want, kind in places:
        if want.order.market_ticker in replaced:
            gateway.outcome(want.order.market_ticker, kind, None, "skipped",
                            "the order it replaces could not be canceled")
            continue
        reservable.append((want, kind))
    pending = gateway.reserve(reservable)  # the cycle's intents: one ledger transaction
    if pending:
        sent_from = len(gateway.report.outcomes)
        gateway.send(pending)
        _halt_on_group_rejection(engine, gateway.report.outcomes[sent_from:], strategy, as_of)
        # orders that executed on arrival: their fills go into the ledger in this cycle
        if any(o.status in ("executed", "canceled") and o.action in ("place", "replace")
               for o in gateway.report.outcomes):
            gateway.report.calls += 1
            try:
                book_fills(client, engine, as_of=as_of, owners=gateway.owners)
            except KalshiError as exc:  # booked by the next cycle's sync instead
                log.warning("gateway: fills not booked this cycle (%s)", type(exc).__name__)
    return gateway.report


def _halt_on_group_rejection(engine: Engine, sent: Sequence[OrderOutcome], strategy: str,
                             as_of: datetime) -> None:
    # a triggered group refuses every order of the strategy until reset: halt, never resend
    from tasks.order_groups import is_group_rejection, record_group_triggered
    from tasks.settings import load_settings

    refused = [o for o in sent if o.status == "rejected" and is_group_rejection(o.detail)]
    if refused:
        record_group_triggered(engine, strategy, f"{len(refused)} orders refused: "
                               f"{refused[0].detail}"[:300], as_of=as_of,
                               webhook=load_settings().alert_webhook_url)


def record_skip(engine: Engine, ticker: str, reason: str, *, as_of: datetime) -> None:
    """Record why a market was left out of a cycle (bad input; never raised)."""
    record_rejection(engine, Rejection(ticker, "input", reason), as_of=as_of)


def record_skips(engine: Engine, skips: Sequence[tuple[str, str]], *, as_of: datetime) -> None:
    """Record (ticker, reason) of every market left out of a cycle, in one transaction."""
    record_rejections(engine, [Rejection(t, "input", r) for t, r in skips], as_of=as_of)
