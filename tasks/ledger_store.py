"""Ledger reads and writes of the order path, each in one transaction.

Invariants:
- ``reserve_intents`` (and its one-item form ``reserve_and_record_intent``) reads the exposure
  state, asks the pure risk gate and writes the intents in ONE serialised write transaction
  (``tasks.db.write_session``): two processes racing for the same limit can never both pass it.
  Within a batch each intent is checked against the state read plus the intents approved before
  it. A rejection is recorded (``risk_events``), never raised.
- Recording is idempotent: the same ``client_order_id`` is reserved once (a retry gets the first
  record back), the same exchange fill id is booked once, a market settles once.
- Exposure counts in-flight money: the unfilled remainder of every active order (intent, sent,
  acknowledged, unknown, resting) plus fills the exchange reported but the ledger has not booked
  yet, plus the cost basis of positions. A fill moves its contracts from the order to the position
  in the same transaction, so nothing is counted twice or dropped in between.

Functions take an ``Engine`` and plain values and return plain frozen values; Prefect task wrappers
(retries, ``NO_CACHE``) belong to the gateway that calls them.

Batched forms do the same work for many orders in ONE transaction, with the same result per
item as calling the single form once per item, in order: ``reserve_intents`` checks each intent
against the state including the intents approved before it in the batch (a rejected one does not
stop the rest); ``transition_orders`` applies each status change (one ``order_events`` row per
change, as the single form) and reports a change the ledger refuses as a ``TransitionRefused``
instead of rolling the others back; ``record_fills`` checks each fill before it changes a row,
so a refused fill leaves nothing behind and the others are booked.

The order path, as the gateway uses it::

    state = read_risk_state(engine, equity_cents=..., as_of=...)         # planning snapshot
    cap = max_order_contracts(request, state, limits)                    # models.risk
    plan = plan_market(p, quote, params, ..., max_contracts=cap)         # models.edge
    key = client_order_id(strategy, ticker, side, slot)                  # models.orderkey
    reserve_intents(engine, [IntentRequest(key, ...), ...], ...)      # binding checks + intents
    transition_orders(engine, [Transition(key, "sent"), ...], ...)    # all sent, then the request
    transition_orders(engine, [Transition(key, "resting", ...), ...]) # acknowledgements (or
                            # "unknown" -> look the order up by key before anything is resent)
    record_fills(engine, [FillReport(...), ...])                      # idempotent by fill id
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Final

from sqlalchemy import Engine, func
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models.ledger import (
    ACTIVE_ORDER_STATUSES,
    DailyEquity,
    Decision,
    Fill,
    Halt,
    Heartbeat,
    LedgerError,
    NetPosition,
    OrderEvent,
    OrderRecord,
    Position,
    RiskEvent,
    Settlement,
    check_transition,
    ms_from_datetime,
    net_fill,
    settle_position,
)
from models.orderkey import CLIENT_ORDER_ID_PATTERN
from models.risk import (
    Approved,
    Holding,
    OrderRequest,
    Rejection,
    RiskLimits,
    RiskState,
    check_order,
)
from tasks.db import read_session, write_session

__all__ = [
    "DAILY_LOSS_HALT_PREFIX",
    "FillReport",
    "IntentRequest",
    "OrderSnapshot",
    "ReservedIntent",
    "Transition",
    "TransitionRefused",
    "active_halts",
    "clear_halt",
    "load_risk_state",
    "order_by_client_id",
    "read_risk_state",
    "record_decision",
    "record_fill",
    "record_fills",
    "record_heartbeat",
    "record_rejection",
    "record_rejections",
    "record_settlement",
    "record_start_of_day_equity",
    "reserve_and_record_intent",
    "reserve_intents",
    "set_halt",
    "transition_order",
    "transition_orders",
]

DAILY_LOSS_HALT_PREFIX: Final = "daily loss limit"
_TIME_IN_FORCE: Final = frozenset({"immediate_or_cancel", "good_till_canceled", "fill_or_kill"})
_IN_CHUNK: Final = 500  # keys per IN (...) query, well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class IntentRequest:
    """An order about to be sent, keyed by its deterministic ``client_order_id``."""

    client_order_id: str
    strategy: str
    order: OrderRequest
    time_in_force: str
    expiration_ts_ms: int | None
    decision_id: int | None = None


@dataclass(frozen=True)
class ReservedIntent:
    """The intent is in the ledger (``already_recorded``: by an earlier attempt with this key)."""

    client_order_id: str
    order_id: int
    status: str
    already_recorded: bool


@dataclass(frozen=True)
class OrderSnapshot:
    """An order's ledger row as plain values."""

    order_id: int
    client_order_id: str
    exchange_order_id: str | None
    market_ticker: str
    side: str
    price_cents: int
    count: int
    filled_count: int
    exchange_filled_count: int
    status: str
    expiration_ts_ms: int | None


@dataclass(frozen=True)
class FillReport:
    """One execution as the exchange reports it, in ledger units (outcome side, its price)."""

    exchange_fill_id: str
    market_ticker: str
    side: str  # outcome bought: yes | no
    price_cents: int  # per contract of `side`
    count: int
    fee_cents: int
    is_taker: bool
    ts_ms: int
    client_order_id: str | None = None
    exchange_order_id: str | None = None
    event_ticker: str | None = None  # needed only for fills of orders the ledger does not know
    category: str | None = None


@dataclass(frozen=True)
class Transition:
    """One status change of the order recorded under `client_order_id` (see ``transition_order``
    for the meaning of the optional fields)."""

    client_order_id: str
    status: str
    exchange_order_id: str | None = None
    exchange_filled_count: int | None = None
    detail: str | None = None


@dataclass(frozen=True)
class TransitionRefused:
    """A change ``transition_orders`` did not apply; `reason` is the ``LedgerError`` message the
    single ``transition_order`` would have raised. The order's row is unchanged."""

    client_order_id: str
    status: str
    reason: str


def _snapshot(row: OrderRecord) -> OrderSnapshot:
    assert row.id is not None
    return OrderSnapshot(
        order_id=row.id,
        client_order_id=row.client_order_id,
        exchange_order_id=row.exchange_order_id,
        market_ticker=row.market_ticker,
        side=row.side,
        price_cents=row.price_cents,
        count=row.count,
        filled_count=row.filled_count,
        exchange_filled_count=row.exchange_filled_count,
        status=row.status,
        expiration_ts_ms=row.expiration_ts_ms,
    )


def _day_of(as_of: datetime) -> date:
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise LedgerError(f"as_of: naive datetime {as_of.isoformat()!r}; pass an aware datetime")
    return as_of.astimezone(UTC).date()


def _active_halt_reasons(session: Session) -> list[str]:
    active = select(Halt).where(col(Halt.cleared_ts_ms).is_(None)).order_by(col(Halt.id))
    rows = session.exec(active)
    return [f"#{h.id} {h.reason} (by {h.set_by})" for h in rows]


def _start_of_day(session: Session, day: date, equity_cents: int, ts_ms: int, *,
                  record: bool = True) -> int:
    query = select(DailyEquity).where(DailyEquity.trading_day == day.isoformat())
    row = session.exec(query).first()
    if row is not None:
        return row.start_equity_cents
    if not record:
        return equity_cents
    session.add(DailyEquity(trading_day=day.isoformat(), start_equity_cents=equity_cents,
                            recorded_ts_ms=ts_ms))
    session.flush()
    return equity_cents


def _holdings(session: Session) -> tuple[Holding, ...]:
    remaining = col(OrderRecord.count) - col(OrderRecord.filled_count)
    unbooked = col(OrderRecord.exchange_filled_count) - col(OrderRecord.filled_count)
    by_market: dict[str, list[int | str]] = {}
    active = session.execute(
        sa_select(
            col(OrderRecord.market_ticker),
            col(OrderRecord.event_ticker),
            col(OrderRecord.category),
            func.sum(remaining * col(OrderRecord.price_cents)),
            func.sum(remaining),
        )
        .where(col(OrderRecord.status).in_(sorted(ACTIVE_ORDER_STATUSES)))
        .group_by(OrderRecord.market_ticker, OrderRecord.event_ticker, OrderRecord.category)
    )
    for ticker, event, category, cents, contracts in active:
        entry = by_market.setdefault(ticker, [event, category, 0, 0])
        entry[2] = int(entry[2]) + int(cents or 0)
        entry[3] = int(entry[3]) + int(contracts or 0)
    # terminal orders whose reported fills are not booked yet still hold money at risk
    pending = session.execute(
        sa_select(
            col(OrderRecord.market_ticker),
            col(OrderRecord.event_ticker),
            col(OrderRecord.category),
            func.sum(unbooked * col(OrderRecord.price_cents)),
            func.sum(unbooked),
        )
        .where(col(OrderRecord.status).not_in(sorted(ACTIVE_ORDER_STATUSES)))
        .where(col(OrderRecord.exchange_filled_count) > col(OrderRecord.filled_count))
        .group_by(OrderRecord.market_ticker, OrderRecord.event_ticker, OrderRecord.category)
    )
    for ticker, event, category, cents, contracts in pending:
        entry = by_market.setdefault(ticker, [event, category, 0, 0])
        entry[2] = int(entry[2]) + int(cents or 0)
        entry[3] = int(entry[3]) + int(contracts or 0)
    positions = session.exec(
        select(Position).where((Position.contracts != 0) | (Position.cost_cents != 0))
    )
    for pos in positions:
        entry = by_market.setdefault(pos.market_ticker, [pos.event_ticker, pos.category, 0, 0])
        entry[2] = int(entry[2]) + max(pos.cost_cents, 0)
        entry[3] = int(entry[3]) + abs(pos.contracts)
    return tuple(
        Holding(ticker, str(e[0]), str(e[1]), int(e[2]), int(e[3]))
        for ticker, e in sorted(by_market.items())
    )


def load_risk_state(
    session: Session, *, equity_cents: int, as_of: datetime, trading_day: date | None = None
) -> RiskState:
    """Read halts, start-of-day equity (`equity_cents` if the day has none yet) and holdings.

    Call it inside ``write_session`` for the day's first equity to be kept.
    """
    day = trading_day or _day_of(as_of)
    start = _start_of_day(session, day, equity_cents, ms_from_datetime(as_of))
    return RiskState(
        equity_cents=equity_cents,
        start_of_day_equity_cents=start,
        holdings=_holdings(session),
        halts=tuple(_active_halt_reasons(session)),
    )


def read_risk_state(
    engine: Engine, *, equity_cents: int, as_of: datetime, trading_day: date | None = None
) -> RiskState:
    """Return the risk state for planning (sizing caps) without writing anything.

    The binding check is the one inside ``reserve_and_record_intent``; this snapshot may be stale
    by the time an intent is written.
    """
    day = trading_day or _day_of(as_of)
    with read_session(engine) as session:
        start = _start_of_day(session, day, equity_cents, ms_from_datetime(as_of), record=False)
        return RiskState(
            equity_cents=equity_cents,
            start_of_day_equity_cents=start,
            holdings=_holdings(session),
            halts=tuple(_active_halt_reasons(session)),
        )


def _add_event(events: list[dict[str, object]], order: OrderRecord, status: str,
               detail: str | None, ts_ms: int) -> None:
    # buffered: `_write_events` inserts a transaction's events in one statement, in this order
    assert order.id is not None
    events.append({"order_id": order.id, "status": status, "detail": detail, "ts_ms": ts_ms})


def _write_events(session: Session, events: list[dict[str, object]]) -> None:
    session.flush()  # the orders' rows first (foreign key)
    if events:
        session.execute(sa_insert(OrderEvent), events)


def _record_rejection(session: Session, rejection: Rejection, client_order_id: str | None,
                      ts_ms: int) -> None:
    session.add(RiskEvent(kind="rejection", limit_name=rejection.limit,
                          market_ticker=rejection.market_ticker, client_order_id=client_order_id,
                          reason=rejection.reason, ts_ms=ts_ms))


def _same_terms(row: OrderRecord, request: IntentRequest) -> bool:
    order = request.order
    return (row.market_ticker, row.side, row.price_cents, row.count, row.strategy) == (
        order.market_ticker, order.side, order.price_cents, order.count, request.strategy)


def _with_intent(state: RiskState, order: OrderRequest) -> RiskState | None:
    # `state` with one more intent of `order` counted the way `_holdings` reads it back (all of
    # it unfilled), or None when only a re-read can say: the market is held under another event
    # or category, so which one `_holdings` shows depends on the database's grouping
    cents, contracts = order.count * order.price_cents, order.count
    holdings = list(state.holdings)
    for n, held in enumerate(holdings):
        if held.market_ticker == order.market_ticker:
            if (held.event_ticker, held.category) != (order.event_ticker, order.category):
                return None
            holdings[n] = replace(held, exposure_cents=held.exposure_cents + cents,
                                  contracts=held.contracts + contracts)
            break
    else:
        holdings.append(Holding(order.market_ticker, order.event_ticker, order.category, cents,
                                contracts))
        holdings.sort(key=lambda h: h.market_ticker)
    return replace(state, holdings=tuple(holdings))


def _rows_by_key(session: Session, keys: Sequence[object]) -> dict[str, OrderRecord]:
    wanted = sorted({k for k in keys if isinstance(k, str)})
    rows: dict[str, OrderRecord] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        query = select(OrderRecord).where(
            col(OrderRecord.client_order_id).in_(wanted[start:start + _IN_CHUNK]))
        rows.update((row.client_order_id, row) for row in session.exec(query))
    return rows


@dataclass
class _Reservation:
    # one reserve_intents transaction: its session, inputs, and the state as it evolves
    session: Session
    rows: dict[str, OrderRecord]
    equity_cents: int
    as_of: datetime
    limits: RiskLimits
    trading_day: date | None
    ts_ms: int
    state: RiskState | None = None

    def current_state(self) -> RiskState:
        if self.state is None:
            self.state = load_risk_state(self.session, equity_cents=self.equity_cents,
                                         as_of=self.as_of, trading_day=self.trading_day)
        return self.state

    def reserve(self, request: IntentRequest) -> ReservedIntent | Rejection | OrderRecord:
        # the result of one request; an approved one is its new (unflushed) row
        session, ts_ms = self.session, self.ts_ms
        coid = request.client_order_id
        if not isinstance(coid, str) or not CLIENT_ORDER_ID_PATTERN.fullmatch(coid):
            rejection = Rejection(request.order.market_ticker, "invalid",
                                  f"invalid order: client_order_id: not a Kalshi id {coid!r}")
            _record_rejection(session, rejection, None, ts_ms)
            return rejection
        if request.time_in_force not in _TIME_IN_FORCE:
            rejection = Rejection(request.order.market_ticker, "invalid",
                                  f"invalid order: time_in_force: {request.time_in_force!r}")
            _record_rejection(session, rejection, coid, ts_ms)
            return rejection
        existing = self.rows.get(coid)
        if existing is not None:
            if existing.id is None:  # reserved earlier in this batch, not flushed yet
                session.flush()
            assert existing.id is not None
            if _same_terms(existing, request):
                return ReservedIntent(coid, existing.id, existing.status, already_recorded=True)
            rejection = Rejection(
                request.order.market_ticker, "duplicate_key",
                f"client_order_id {coid} already names {existing.count} {existing.side} "
                f"{existing.market_ticker} at {existing.price_cents}c",
            )
            _record_rejection(session, rejection, coid, ts_ms)
            return rejection
        state = self.current_state()
        verdict = check_order(request.order, state, self.limits)
        if isinstance(verdict, Rejection):
            _record_rejection(session, verdict, coid, ts_ms)
            if verdict.limit == "daily_loss":
                session.add(Halt(reason=f"{DAILY_LOSS_HALT_PREFIX}: {verdict.reason}",
                                 set_by="risk-gate", set_ts_ms=ts_ms))
                session.flush()  # the halt stops the rest of the batch, as it would one by one
                self.state = replace(state, halts=tuple(_active_halt_reasons(session)))
            return verdict
        assert isinstance(verdict, Approved)
        order = request.order
        row = OrderRecord(
            client_order_id=coid, decision_id=request.decision_id, strategy=request.strategy,
            market_ticker=order.market_ticker, event_ticker=order.event_ticker,
            category=order.category, side=order.side, price_cents=order.price_cents,
            count=order.count, status="intent", time_in_force=request.time_in_force,
            expiration_ts_ms=request.expiration_ts_ms, created_ts_ms=ts_ms, updated_ts_ms=ts_ms,
        )
        session.add(row)  # flushed with the batch's other intents (`finish`)
        self.rows[coid] = row
        self.state = _with_intent(state, order)  # None: re-read before the next check
        return row

    def finish(self, results: list[ReservedIntent | Rejection | OrderRecord]
               ) -> list[ReservedIntent | Rejection]:
        # write the new intents (one flush) and their events; return the results with ids
        self.session.flush()
        events: list[dict[str, object]] = []
        done: list[ReservedIntent | Rejection] = []
        for result in results:
            if isinstance(result, OrderRecord):
                assert result.id is not None
                _add_event(events, result, "intent", None, self.ts_ms)
                result = ReservedIntent(result.client_order_id, result.id, "intent",
                                        already_recorded=False)
            done.append(result)
        _write_events(self.session, events)
        return done


def reserve_intents(
    engine: Engine,
    requests: Sequence[IntentRequest],
    *,
    equity_cents: int,
    as_of: datetime,
    limits: RiskLimits,
    trading_day: date | None = None,
) -> list[ReservedIntent | Rejection]:
    """Check each of `requests` against the limits and write its intent, all in ONE transaction.

    The result per request (same order) is what ``reserve_and_record_intent`` would return had it
    been called once per request in this order: each is checked against the state including the
    intents approved before it, and a rejected one is recorded and does not stop the rest.
    """
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        batch = _Reservation(session, _rows_by_key(session, [r.client_order_id for r in requests]),
                             equity_cents, as_of, limits, trading_day, ts_ms)
        return batch.finish([batch.reserve(request) for request in requests])


def reserve_and_record_intent(
    engine: Engine,
    request: IntentRequest,
    *,
    equity_cents: int,
    as_of: datetime,
    limits: RiskLimits,
    trading_day: date | None = None,
) -> ReservedIntent | Rejection:
    """Check `request` against the limits and write its intent, in one transaction.

    `equity_cents` is the account's current marked-to-market equity; the first call of a trading
    day (default: the UTC date of `as_of`) also records it as that day's start-of-day equity.
    A repeated `client_order_id` returns the first reservation unchanged (a retry), or a
    ``duplicate_key`` rejection if the terms differ. A daily-loss rejection also sets a halt.
    """
    (result,) = reserve_intents(engine, [request], equity_cents=equity_cents, as_of=as_of,
                                limits=limits, trading_day=trading_day)
    return result


def record_rejection(
    engine: Engine, rejection: Rejection, *, as_of: datetime, client_order_id: str | None = None
) -> None:
    """Record a rejection decided outside the ledger transaction (e.g. by the planner)."""
    record_rejections(engine, [rejection], as_of=as_of, client_order_id=client_order_id)


def record_rejections(
    engine: Engine, rejections: Sequence[Rejection], *, as_of: datetime,
    client_order_id: str | None = None,
) -> None:
    """Record `rejections` (in order) in one transaction, as ``record_rejection`` would each."""
    if not rejections:
        return
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        for rejection in rejections:
            _record_rejection(session, rejection, client_order_id, ts_ms)


def record_decision(engine: Engine, decision: Decision) -> int:
    """Store one decision and return its id (orders link to it through ``decision_id``)."""
    with write_session(engine) as session:
        row = Decision.model_validate(decision.model_dump(exclude={"id"}))
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def order_by_client_id(engine: Engine, client_order_id: str) -> OrderSnapshot | None:
    """Return the order recorded under `client_order_id`, if any."""
    with read_session(engine) as session:
        row = session.exec(
            select(OrderRecord).where(OrderRecord.client_order_id == client_order_id)
        ).first()
        return None if row is None else _snapshot(row)


def _refusal(row: OrderRecord | None, change: Transition, owners: dict[str, str]) -> str | None:
    # why the ledger cannot apply `change` to `row` (the LedgerError message), or None;
    # `owners`: the client order id holding each exchange order id the changes name
    coid = change.client_order_id
    if row is None:
        return f"client_order_id: no order recorded as {coid!r}"
    try:
        check_transition(row.status, change.status)
    except LedgerError as exc:
        return str(exc)
    if change.exchange_order_id is not None and row.exchange_order_id not in (
            None, change.exchange_order_id):
        return (f"exchange_order_id: {coid} is {row.exchange_order_id!r}, "
                f"the exchange now says {change.exchange_order_id!r}")
    owner = owners.get(change.exchange_order_id or "")
    if owner is not None and owner != coid:
        return (f"exchange_order_id: {change.exchange_order_id!r} for {coid} already names "
                f"order {owner}")
    filled = change.exchange_filled_count
    if filled is not None and not 0 <= filled <= row.count:
        return f"exchange_filled_count: {filled} outside 0..{row.count} for {coid}"
    return None


def _exchange_id_owners(session: Session, ids: Sequence[str | None]) -> dict[str, str]:
    wanted = sorted({i for i in ids if i})
    owners: dict[str, str] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        query = sa_select(col(OrderRecord.exchange_order_id), col(OrderRecord.client_order_id)
                          ).where(col(OrderRecord.exchange_order_id).in_(
                              wanted[start:start + _IN_CHUNK]))
        owners.update((str(xid), str(coid)) for xid, coid in session.execute(query))
    return owners


def _apply_transition(session: Session, events: list[dict[str, object]], row: OrderRecord,
                      change: Transition, ts_ms: int) -> OrderSnapshot:
    if change.exchange_order_id is not None:
        row.exchange_order_id = change.exchange_order_id
    filled = change.exchange_filled_count
    if change.status == "executed" and filled is None:
        filled = row.count
    if filled is not None:
        row.exchange_filled_count = max(row.exchange_filled_count, filled)
    row.status = change.status
    row.updated_ts_ms = ts_ms
    if change.detail is not None:
        row.detail = change.detail
    session.add(row)
    _add_event(events, row, change.status, change.detail, ts_ms)
    return _snapshot(row)


def transition_orders(
    engine: Engine, changes: Sequence[Transition], *, as_of: datetime
) -> list[OrderSnapshot | TransitionRefused]:
    """Apply `changes` in order in ONE transaction; return the order's snapshot after each change,
    or a ``TransitionRefused`` (row unchanged, nothing recorded) where ``transition_order`` would
    have raised. Each applied change writes one ``order_events`` row, as the single form does."""
    ts_ms = ms_from_datetime(as_of)
    results: list[OrderSnapshot | TransitionRefused] = []
    events: list[dict[str, object]] = []
    with write_session(engine) as session:
        rows = _rows_by_key(session, [c.client_order_id for c in changes])
        owners = _exchange_id_owners(session, [c.exchange_order_id for c in changes])
        for change in changes:
            row = rows.get(change.client_order_id)
            reason = _refusal(row, change, owners)
            if reason is not None:
                results.append(TransitionRefused(change.client_order_id, change.status, reason))
                continue
            assert row is not None
            results.append(_apply_transition(session, events, row, change, ts_ms))
            if change.exchange_order_id is not None:
                owners[change.exchange_order_id] = change.client_order_id
        _write_events(session, events)
    return results


def transition_order(
    engine: Engine,
    client_order_id: str,
    status: str,
    *,
    as_of: datetime,
    exchange_order_id: str | None = None,
    exchange_filled_count: int | None = None,
    detail: str | None = None,
) -> OrderSnapshot:
    """Move an order to `status` (sent, acknowledged, unknown, resting, executed, canceled,
    rejected), recording the exchange's order id and reported fill count when given."""
    (result,) = transition_orders(
        engine, [Transition(client_order_id, status, exchange_order_id, exchange_filled_count,
                            detail)], as_of=as_of)
    if isinstance(result, TransitionRefused):
        raise LedgerError(result.reason)
    return result


def _check_fill(fill: FillReport) -> None:
    if not isinstance(fill.exchange_fill_id, str) or not fill.exchange_fill_id:
        raise LedgerError(f"exchange_fill_id: expected a non-empty string, got "
                          f"{fill.exchange_fill_id!r}")
    if fill.side not in ("yes", "no"):
        raise LedgerError(f"side: expected 'yes' or 'no', got {fill.side!r}")
    if not 1 <= fill.price_cents <= 99:
        raise LedgerError(f"price_cents: expected 1..99, got {fill.price_cents!r}")
    if fill.count <= 0:
        raise LedgerError(f"count: expected > 0, got {fill.count!r}")
    if fill.fee_cents < 0:
        raise LedgerError(f"fee_cents: expected >= 0, got {fill.fee_cents!r}")


def record_fills(engine: Engine, fills: Sequence[FillReport]) -> list[bool | LedgerError]:
    """Book `fills` in order in ONE transaction; per fill return what ``record_fill`` would: True
    (booked), False (already booked), or the ``LedgerError`` it would have raised (nothing of
    that fill is kept; the others are booked). Every check runs before a fill changes a row."""
    results: list[bool | LedgerError] = []
    with write_session(engine) as session:
        book = _FillBook.load(session, fills)
        for fill in fills:
            try:
                _check_fill(fill)
                results.append(book.book(fill))
            except LedgerError as exc:
                results.append(exc)
        book.write()
    return results


def record_fill(engine: Engine, fill: FillReport) -> bool:
    """Book one fill into its order and position; return False if it was already booked."""
    _check_fill(fill)
    (result,) = record_fills(engine, [fill])
    if isinstance(result, LedgerError):
        raise result
    return result


@dataclass
class _FillBook:
    # one record_fills transaction: the rows its fills touch, read up front in three queries
    session: Session
    seen: set[str]
    by_client_id: dict[str, OrderRecord]
    by_exchange_id: dict[str, OrderRecord]
    positions: dict[str, Position]
    events: list[dict[str, object]]
    new_fills: list[dict[str, object]]

    @classmethod
    def load(cls, session: Session, fills: Sequence[FillReport]) -> _FillBook:
        def strings(values: Sequence[object]) -> list[str]:
            return sorted({v for v in values if isinstance(v, str) and v})

        fill_ids = strings([f.exchange_fill_id for f in fills])
        client_ids = strings([f.client_order_id for f in fills])
        exchange_ids = strings([f.exchange_order_id for f in fills])
        tickers = strings([f.market_ticker for f in fills])
        seen: set[str] = set()
        orders: list[OrderRecord] = []
        positions: dict[str, Position] = {}
        for start in range(0, max(len(fill_ids), len(client_ids), len(exchange_ids),
                                  len(tickers)), _IN_CHUNK):
            part = slice(start, start + _IN_CHUNK)
            if fill_ids[part]:
                seen.update(session.exec(select(Fill.exchange_fill_id).where(
                    col(Fill.exchange_fill_id).in_(fill_ids[part]))))
            if client_ids[part] or exchange_ids[part]:
                orders += session.exec(select(OrderRecord).where(
                    col(OrderRecord.client_order_id).in_(client_ids[part])
                    | col(OrderRecord.exchange_order_id).in_(exchange_ids[part])))
            if tickers[part]:
                positions.update((p.market_ticker, p) for p in session.exec(
                    select(Position).where(col(Position.market_ticker).in_(tickers[part]))))
        by_exchange_id: dict[str, OrderRecord] = {}
        for order in sorted(orders, key=lambda o: o.id or 0):  # first row wins, as .first()
            if order.exchange_order_id is not None:
                by_exchange_id.setdefault(order.exchange_order_id, order)
        return cls(session, seen, {o.client_order_id: o for o in orders}, by_exchange_id,
                   positions, [], [])

    def order_for(self, fill: FillReport) -> OrderRecord | None:
        order = None
        if fill.client_order_id:
            order = self.by_client_id.get(fill.client_order_id)
        if order is None and fill.exchange_order_id:
            order = self.by_exchange_id.get(fill.exchange_order_id)
        if order is not None and (order.market_ticker, order.side) != (fill.market_ticker,
                                                                       fill.side):
            raise LedgerError(
                f"exchange_fill_id {fill.exchange_fill_id}: fill is {fill.side} "
                f"{fill.market_ticker} but order {order.client_order_id} is {order.side} "
                f"{order.market_ticker}"
            )
        return order

    def book(self, fill: FillReport) -> bool:
        # check everything first, then change the order, the position and add the fill
        if fill.exchange_fill_id in self.seen:
            return False
        order = self.order_for(fill)
        position = self.positions.get(fill.market_ticker)
        if position is None:
            event_ticker = order.event_ticker if order is not None else fill.event_ticker
            category = order.category if order is not None else fill.category
            if not event_ticker or not category:
                raise LedgerError(
                    f"exchange_fill_id {fill.exchange_fill_id}: fill of an order the ledger does "
                    f"not know in a new market {fill.market_ticker!r}; pass event_ticker and "
                    f"category"
                )
            position = Position(market_ticker=fill.market_ticker, event_ticker=event_ticker,
                                category=category, updated_ts_ms=fill.ts_ms)
        if order is not None and order.filled_count + fill.count > order.count:
            raise LedgerError(
                f"count: fill {fill.exchange_fill_id} of {fill.count} would overfill "
                f"{order.client_order_id} ({order.filled_count}/{order.count} filled)"
            )
        netted = net_fill(
            NetPosition(position.contracts, position.cost_cents, position.realized_pnl_cents),
            fill.side, fill.price_cents, fill.count,
        )
        if order is not None:
            order.filled_count += fill.count
            order.exchange_filled_count = max(order.exchange_filled_count, order.filled_count)
            order.updated_ts_ms = max(order.updated_ts_ms, fill.ts_ms)
            # a late fill of a canceled order is booked but does not reopen or re-status it
            if order.filled_count == order.count and order.status in ACTIVE_ORDER_STATUSES:
                order.status = "executed"
                _add_event(self.events, order, "executed", f"filled by {fill.exchange_fill_id}",
                           fill.ts_ms)
            self.session.add(order)
        position.contracts = netted.contracts
        position.cost_cents = netted.cost_cents
        position.realized_pnl_cents = netted.realized_pnl_cents
        position.fees_cents += fill.fee_cents
        position.updated_ts_ms = max(position.updated_ts_ms, fill.ts_ms)
        self.session.add(position)
        self.positions[fill.market_ticker] = position
        self.seen.add(fill.exchange_fill_id)
        self.new_fills.append({
            "exchange_fill_id": fill.exchange_fill_id,
            "order_id": None if order is None else order.id,
            "client_order_id": fill.client_order_id or (None if order is None
                                                        else order.client_order_id),
            "market_ticker": fill.market_ticker, "side": fill.side,
            "price_cents": fill.price_cents, "count": fill.count, "fee_cents": fill.fee_cents,
            "is_taker": fill.is_taker, "ts_ms": fill.ts_ms,
        })
        return True

    def write(self) -> None:
        # orders and positions (one flush), then the fills and events in one statement each
        self.session.flush()
        if self.new_fills:
            self.session.execute(sa_insert(Fill), self.new_fills)
        _write_events(self.session, self.events)


def record_settlement(engine: Engine, market_ticker: str, result: str, *, as_of: datetime) -> bool:
    """Settle our position in `market_ticker` (result yes|no); False if already settled."""
    if result not in ("yes", "no"):
        raise LedgerError(f"result: expected 'yes' or 'no', got {result!r}")
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        done = session.exec(
            select(Settlement.id).where(Settlement.market_ticker == market_ticker)
        ).first()
        if done is not None:
            return False
        position = session.get(Position, market_ticker)
        before = NetPosition() if position is None else NetPosition(
            position.contracts, position.cost_cents, position.realized_pnl_cents)
        after, revenue = settle_position(before, result)
        pnl = after.realized_pnl_cents - before.realized_pnl_cents
        session.add(Settlement(market_ticker=market_ticker, result=result,
                               contracts=before.contracts, revenue_cents=revenue,
                               cost_cents=before.cost_cents, realized_pnl_cents=pnl,
                               settled_ts_ms=ts_ms))
        if position is not None:
            position.realized_pnl_cents = after.realized_pnl_cents
            position.contracts = 0
            position.cost_cents = 0
            position.updated_ts_ms = ts_ms
            session.add(position)
        return True


def record_start_of_day_equity(engine: Engine, day: date, equity_cents: int, *,
                               as_of: datetime) -> int:
    """Record `day`'s start-of-day equity unless one exists; return the day's recorded value."""
    with write_session(engine) as session:
        return _start_of_day(session, day, equity_cents, ms_from_datetime(as_of))


def set_halt(engine: Engine, reason: str, *, set_by: str, as_of: datetime) -> int:
    """Halt all trading until cleared; return the halt's id."""
    if not reason or not set_by:
        raise LedgerError(f"halt: reason and set_by are required (got {reason!r}, {set_by!r})")
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        halt = Halt(reason=reason, set_by=set_by, set_ts_ms=ts_ms)
        session.add(halt)
        session.add(RiskEvent(kind="halt", limit_name="halt", reason=reason, ts_ms=ts_ms))
        session.flush()
        assert halt.id is not None
        return halt.id


def clear_halt(engine: Engine, halt_id: int, *, cleared_by: str, as_of: datetime) -> None:
    """Clear one active halt, recording who cleared it and when."""
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        halt = session.get(Halt, halt_id)
        if halt is None or halt.cleared_ts_ms is not None:
            raise LedgerError(f"halt_id: no active halt #{halt_id}")
        halt.cleared_by = cleared_by
        halt.cleared_ts_ms = ts_ms
        session.add(halt)
        session.add(RiskEvent(kind="clear", limit_name="halt",
                              reason=f"halt #{halt_id} cleared by {cleared_by}", ts_ms=ts_ms))


def active_halts(engine: Engine) -> list[str]:
    """Return the active halts as readable lines."""
    with read_session(engine) as session:
        return _active_halt_reasons(session)


def record_heartbeat(engine: Engine, component: str, *, as_of: datetime,
                     detail: str | None = None) -> None:
    """Record that `component` is alive at `as_of`."""
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        beat = session.get(Heartbeat, component)
        if beat is None:
            beat = Heartbeat(component=component, ts_ms=ts_ms, detail=detail)
        else:
            beat.ts_ms = max(beat.ts_ms, ts_ms)
            beat.detail = detail
        session.add(beat)
