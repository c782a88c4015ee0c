"""Safety actions: cancel-all, halt and resume, alerts, API-call and link records, guard runs.

Invariants:
- A halt is written BEFORE orders are cancelled, so no trading run can place an order between the
  cancel and the halt; the gateway's risk gate rejects every new order while a halt is active.
  Every halt and every clear is a ledger record with reason, author and time (``halts``,
  ``risk_events``), and every halt, breaker trip and drift sends a webhook alert.
- Cancel-all lists what rests at the exchange, triggers every strategy's order group (one call
  per strategy, ``tasks.order_groups``), cancels what still rests in batches, falls back to the
  exchange's cancel-all, lists again and reports what (if anything) is still resting: success
  is what the exchange shows afterwards, never what we asked for. ``cancel_strategy`` does the
  same for one strategy; resume resets the groups after the halts are cleared.
- Resume is explicit (a reason is required), recorded, and refused while any breaker trips or,
  when a drift halt (``reconcile:``/``drift:``) is active, while a fresh read-only reconciliation
  still finds an unexplained difference; acknowledging drift is explicit and recorded
  (``tasks.reconcile.drift_for_resume``).
- API call outcomes and the link state live in the ledger (``heartbeats`` rows named
  ``api:<minute>``, ``link:down-since``, ``link:outage``), counted by ``RecordingTransport``
  (``tasks.api_calls``: buffered, link changes written at once), so the guard judges error rate
  and outages across processes and restarts.
- Alerts never carry the webhook URL, keys or signatures; a failed alert is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import col, select

from kalshi.client import KalshiClient
from kalshi.errors import KalshiError
from kalshi.wire import Balance, BatchCancelOrder, Order
from models.breakers import (
    Breaker,
    BreakerLimits,
    FillCounts,
    GuardInputs,
    evaluate_breakers,
    tripped,
)
from models.ledger import (
    ACTIVE_ORDER_STATUSES,
    Halt,
    Heartbeat,
    OrderGroupRecord,
    OrderRecord,
    Position,
    datetime_from_ms,
    ms_from_datetime,
)
from tasks.api_calls import (
    API_BUCKET_PREFIX,
    RecordingTransport,
    api_call_counts,
    forget_outage,
    link_observation,
    note_link,
    prune_api_buckets,
    record_api_call,
    safety_client,
)
from tasks.db import ledger_engine, read_session, upgrade_ledger
from tasks.kalshi_client import kalshi_auth
from tasks.ledger_store import clear_halt, record_start_of_day_equity, set_halt, transition_order
from tasks.order_groups import reset_groups, strategy_groups, trigger_groups
from tasks.settings import Settings, load_settings

__all__ = [
    "API_BUCKET_PREFIX",
    "DEFAULT_FEEDS",
    "DEFAULT_HEARTBEATS",
    "CancelReport",
    "ExchangeState",
    "GuardReport",
    "HaltInfo",
    "RecordingTransport",
    "DRIFT_HALT_PREFIXES",
    "DriftStatus",
    "ResumeRefused",
    "api_call_counts",
    "breaker_limits",
    "exchange_client",
    "guard_task",
    "kill_task",
    "resume_task",
    "safety_engine",
    "cancel_all",
    "cancel_all_task",
    "cancel_strategy",
    "equity_of",
    "evaluate",
    "fill_counts",
    "halt_trading",
    "heartbeat_times",
    "kill",
    "link_observation",
    "list_halts",
    "note_link",
    "read_exchange_state",
    "reset_order_groups",
    "record_api_call",
    "is_drift_halt",
    "resume_checked",
    "resume_trading",
    "run_guard",
    "safety_client",
    "send_alert",
    "status_report",
]

log = logging.getLogger(__name__)

DEFAULT_HEARTBEATS: Final[Mapping[str, float]] = {"trade-weather": 1800.0}
DEFAULT_FEEDS: Final[Mapping[str, float]] = {"feed:market-data": 900.0,
                                             "feed:forecast": 6 * 3600.0}
_BATCH: Final = 20


# --- records of API calls and the exchange link (tasks.api_calls; names kept importable here) --

_forget_outage = forget_outage
_prune_api_buckets = prune_api_buckets


# --- alerts ---------------------------------------------------------------------------------

def send_alert(url: SecretStr | str | None, kind: str, text: str,
               details: Mapping[str, Any] | None = None, *, timeout_s: float = 5.0) -> bool:
    """POST a Slack-compatible ``{"text": ...}`` alert; return whether it was delivered."""
    if url is None:
        log.warning("alert (no webhook configured) %s: %s", kind, text)
        return False
    target = url.get_secret_value() if isinstance(url, SecretStr) else url
    body = {"text": f"[eventdesk] {kind}: {text}", "kind": kind, "details": dict(details or {})}
    try:
        response = httpx.post(target, json=body, timeout=timeout_s)
    except httpx.HTTPError as exc:
        log.warning("alert %s not delivered: %s", kind, type(exc).__name__)
        return False
    if response.status_code >= 300:
        log.warning("alert %s not delivered: webhook answered %d", kind, response.status_code)
        return False
    return True


# --- halts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HaltInfo:
    """An active halt."""

    halt_id: int
    reason: str
    set_by: str
    set_at: datetime


def list_halts(engine: Engine) -> list[HaltInfo]:
    """Return the active halts, oldest first."""
    with read_session(engine) as session:
        rows = session.exec(select(Halt).where(col(Halt.cleared_ts_ms).is_(None))
                            .order_by(col(Halt.id)))
        return [HaltInfo(h.id or 0, h.reason, h.set_by, datetime_from_ms(h.set_ts_ms))
                for h in rows]


def halt_trading(engine: Engine, reason: str, *, set_by: str, as_of: datetime,
                 webhook: SecretStr | str | None = None, dedupe_prefix: str | None = None
                 ) -> int | None:
    """Halt trading (unless an active halt starts with `dedupe_prefix`); return the new halt id."""
    if dedupe_prefix is not None and any(h.reason.startswith(dedupe_prefix)
                                         for h in list_halts(engine)):
        return None
    halt_id = set_halt(engine, reason, set_by=set_by, as_of=as_of)
    log.warning("halt #%d by %s: %s", halt_id, set_by, reason)
    send_alert(webhook, "halt", f"#{halt_id} by {set_by}: {reason}",
               {"halt_id": halt_id, "set_by": set_by, "at": as_of.isoformat()})
    return halt_id


class ResumeRefused(RuntimeError):
    """Resume refused: a breaker still trips, drift remains, or no reason was given; the message
    says which (each breaker, each unexplained difference)."""


DRIFT_HALT_PREFIXES: Final = ("reconcile:", "drift:")  # set by tasks.reconcile, tasks.gateway


def is_drift_halt(reason: str) -> bool:
    """Return whether a halt was set for drift (reconciliation, or a fill the ledger refused)."""
    return reason.startswith(DRIFT_HALT_PREFIXES)


@dataclass(frozen=True)
class DriftStatus:
    """A fresh, read-only reconciliation's verdict for resume (``tasks.reconcile``).

    ``unexplained`` and ``accepted`` are lines ``kind subject: detail`` (ledger vs exchange);
    ``pending`` are explained differences the next reconciliation imports.
    """

    checked_at: datetime
    complete: bool
    unexplained: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()


def _refusal(reason: str, breakers: Sequence[Breaker]) -> str | None:
    if not reason or not reason.strip():
        return "resume: a reason is required"
    trips = tripped(breakers)
    if trips:
        return ("resume refused, breaker(s) still tripping: "
                + "; ".join(f"{b.name}: {b.reason}" for b in trips))
    return None


def _drift_refusal(halts: Sequence[HaltInfo], drift: DriftStatus | None) -> str | None:
    held = [h for h in halts if is_drift_halt(h.reason)]
    if not held:
        return None
    ids = ", ".join(f"#{h.halt_id}" for h in held)
    if drift is None:
        return (f"resume refused: halt(s) {ids} are drift halts and no fresh reconciliation "
                f"was run; resume runs one (it must find the ledger equal to the exchange)")
    if not drift.complete:
        return (f"resume refused: drift halt(s) {ids}; the reconciliation could not verify the "
                f"account: " + "; ".join(drift.unexplained))
    if drift.unexplained:
        return (f"resume refused: drift halt(s) {ids}; {len(drift.unexplained)} unexplained "
                f"difference(s) between ledger and exchange remain:\n"
                + "\n".join(f"  - {line}" for line in drift.unexplained)
                + "\nonce explained, acknowledge them with --accept-drift (accept_drift=true), "
                  "or let reconciliation import them")
    return None


def resume_trading(engine: Engine, reason: str, *, by: str, as_of: datetime,
                   breakers: Sequence[Breaker], webhook: SecretStr | str | None = None,
                   drift: DriftStatus | None = None) -> list[int]:
    """Clear every active halt unless a breaker trips or drift remains; return the cleared ids.

    A drift halt (``is_drift_halt``) is cleared only with a complete `drift` check that found no
    unexplained difference; other halts need only the breakers to be quiet.
    """
    halts = list_halts(engine)  # judged and cleared as one set: a halt set later stays
    refusal = _refusal(reason, breakers) or _drift_refusal(halts, drift)
    if refusal is not None:
        raise ResumeRefused(refusal)
    cleared = []
    for halt in halts:
        clear_halt(engine, halt.halt_id, cleared_by=f"{by}: {reason}"[:200], as_of=as_of)
        cleared.append(halt.halt_id)
    details: dict[str, Any] = {"cleared": cleared, "by": by, "at": as_of.isoformat()}
    if drift is not None:
        details.update(drift_checked_at=drift.checked_at.isoformat(),
                       accepted=list(drift.accepted), pending=list(drift.pending))
    log.warning("resume by %s (%s): cleared %s%s", by, reason, cleared,
                f"; accepted drift: {list(drift.accepted)}" if drift and drift.accepted else "")
    send_alert(webhook, "resume", f"halts {cleared} cleared by {by}: {reason}"
               + (f" (accepted drift: {'; '.join(drift.accepted)})"
                  if drift and drift.accepted else ""), details)
    return cleared


def resume_checked(client: KalshiClient, engine: Engine, reason: str, *, by: str,
                   as_of: datetime, breakers: Sequence[Breaker], accept_drift: bool = False,
                   webhook: SecretStr | str | None = None) -> list[int]:
    """Resume with the policy: reason, quiet breakers, and, when a drift halt is active, a fresh
    reconciliation (acknowledging what it finds only with `accept_drift`); return cleared ids."""
    refusal = _refusal(reason, breakers)
    if refusal is not None:  # before any acknowledgement is recorded
        raise ResumeRefused(refusal)
    drift = None
    if any(is_drift_halt(h.reason) for h in list_halts(engine)):
        from tasks.reconcile import drift_for_resume  # tasks.reconcile imports this module

        drift = drift_for_resume(client, engine, now=as_of, accept=accept_drift, by=by,
                                 reason=reason)
    return resume_trading(engine, reason, by=by, as_of=as_of, breakers=breakers,
                          webhook=webhook, drift=drift)


# --- the exchange ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ExchangeState:
    """Balance, resting orders and positions as the exchange reports them now."""

    balance_cents: int
    portfolio_value_cents: int
    resting: tuple[Order, ...]
    positions: Mapping[str, int]

    @property
    def collateral_cents(self) -> int:
        """Cash held by resting orders (remaining x the price of the side they buy)."""
        total = 0
        for order in self.resting:
            price = order.yes_price if order.book_side == "bid" else order.no_price
            total += int(Decimal(order.remaining_contracts) * price * 100)
        return total

    @property
    def equity_cents(self) -> int:
        """Marked-to-market equity: cash + resting collateral + positions at the best bid."""
        return self.balance_cents + self.collateral_cents + self.portfolio_value_cents


def _resting_of(orders: Iterable[Order]) -> tuple[Order, ...]:
    return tuple(o for o in orders if o.status == "resting" and o.remaining_contracts > 0)


def read_exchange_state(client: KalshiClient) -> ExchangeState:
    """Read balance, resting orders and positions (raises KalshiError when unreachable)."""
    balance = client.get_balance()
    resting = _resting_of(client.iter_orders(status="resting"))
    positions = {p.ticker: p.position_contracts for p in client.iter_positions()
                 if p.position_contracts != 0}
    return ExchangeState(balance.balance_cents, balance.portfolio_value_cents or 0, resting,
                         positions)


def equity_of(balance: Balance, orders: Iterable[Order]) -> int:
    """Return ``ExchangeState.equity_cents`` from `balance` and a complete listing of our orders
    read AFTER it (``read_exchange_state``'s reads in its order; positions are not part of
    equity), so a caller that has just listed every order need not list resting ones again."""
    return ExchangeState(balance.balance_cents, balance.portfolio_value_cents or 0,
                         _resting_of(orders), {}).equity_cents


@dataclass(frozen=True)
class CancelReport:
    """What cancel-all did: exchange ids cancelled, and what still rests afterwards."""

    canceled: tuple[str, ...]
    still_resting: tuple[str, ...]
    errors: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """True when nothing of ours rests at the exchange any more."""
        return not self.still_resting


def _book_cancels(engine: Engine, orders: Iterable[Order], as_of: datetime, why: str) -> None:
    by_cid = {o.client_order_id: o for o in orders if o.client_order_id}
    if not by_cid:
        return
    with read_session(engine) as session:
        rows = list(session.exec(select(OrderRecord).where(
            col(OrderRecord.client_order_id).in_(sorted(by_cid)))))
    for row in rows:
        if row.status not in ACTIVE_ORDER_STATUSES:
            continue
        order = by_cid[row.client_order_id]
        transition_order(engine, row.client_order_id, "canceled", as_of=as_of,
                         exchange_order_id=order.order_id,
                         exchange_filled_count=min(int(order.fill_count), row.count), detail=why)


def _resting(client: KalshiClient) -> list[Order]:
    return [o for o in client.iter_orders(status="resting") if o.status == "resting"]


def _batch_cancel(client: KalshiClient, orders: Sequence[Order], errors: list[str]) -> None:
    # cancel `orders` in batches; what is gone is judged by listing afterwards, not from here
    for start in range(0, len(orders), _BATCH):
        chunk = orders[start:start + _BATCH]
        try:
            items = client.batch_cancel_orders(
                [BatchCancelOrder(order_id=o.order_id, market_ticker=o.ticker) for o in chunk])
        except KalshiError as exc:
            errors.append(f"batch cancel: {type(exc).__name__}: {exc}")
            continue
        for item in items:
            if item.error is not None:
                errors.append(f"cancel {item.order_id}: {item.error.code}: {item.error.message}")


def cancel_all(client: KalshiClient, engine: Engine, *, as_of: datetime,
               reason: str, keep_groups_triggered: bool = False) -> CancelReport:
    """Cancel every resting order of ours and verify at the exchange that none is left.

    Every strategy's order group is triggered first (one call per strategy cancels all of its
    orders at once); what still rests (orders outside a group, e.g. placed by hand) is cancelled
    in batches, then with the exchange's cancel-all. The groups this call triggered are reset
    afterwards unless `keep_groups_triggered` (the kill switch: they refuse orders until resume).
    """
    errors: list[str] = []
    resting = _resting(client)
    known = {g.order_group_id for g in strategy_groups(engine) if g.triggered_at is not None}
    groups = trigger_groups(client, engine, as_of=as_of, reason=f"cancel-all: {reason}"[:200])
    errors.extend(groups.errors)
    _batch_cancel(client, _resting(client) if groups.groups else resting, errors)
    left = _resting(client)
    if left:
        try:
            client.cancel_all_orders()
        except KalshiError as exc:
            errors.append(f"cancel-all: {type(exc).__name__}: {exc}")
        left = _resting(client)
    gone = [o for o in resting if o.order_id not in {x.order_id for x in left}]
    _book_cancels(engine, gone, as_of, f"cancel-all: {reason}"[:200])
    if not keep_groups_triggered:  # groups already known triggered keep their halt's state
        for group_id in groups.groups:
            if group_id in known:
                continue
            reset = reset_groups(client, engine, as_of=as_of, group_id=group_id,
                                 reason=f"cancel-all done: {reason}"[:200])
            errors.extend(reset.errors)
    report = CancelReport(tuple(o.order_id for o in gone), tuple(o.order_id for o in left),
                          tuple(errors))
    log.warning("cancel-all (%s): %d groups triggered, %d cancelled, %d still resting", reason,
                len(groups.groups), len(report.canceled), len(report.still_resting))
    return report


def _strategy_orders(engine: Engine, strategy: str, orders: Iterable[Order]) -> list[Order]:
    # a strategy's orders: in one of its groups (current or retired), or booked under its name
    orders = list(orders)
    with read_session(engine) as session:
        group_ids = set(session.exec(select(OrderGroupRecord.order_group_id).where(
            OrderGroupRecord.strategy == strategy)))
        keys = set(session.exec(select(OrderRecord.client_order_id).where(
            OrderRecord.strategy == strategy).where(col(OrderRecord.client_order_id).in_(
                sorted({o.client_order_id for o in orders if o.client_order_id})))))
    return [o for o in orders if o.order_group_id in group_ids or o.client_order_id in keys]


def cancel_strategy(client: KalshiClient, engine: Engine, strategy: str, reason: str, *,
                    as_of: datetime) -> CancelReport:
    """Cancel `strategy`'s resting orders through its order group (one call) and verify.

    Lists the exchange afterwards: a strategy order still resting (placed outside its group) is
    cancelled in batches and listed again. Cancels are booked in the ledger. The group stays
    triggered, refusing the strategy's orders at the exchange, until a resume resets it; other
    strategies' orders are not touched.
    """
    if not strategy or not strategy.strip():
        raise ValueError(f"strategy: a non-empty name is required (got {strategy!r})")
    mine = _strategy_orders(engine, strategy, _resting(client))
    groups = trigger_groups(client, engine, as_of=as_of, strategy=strategy,
                            reason=f"cancel {strategy}: {reason}"[:200])
    errors = list(groups.errors)
    ids = {o.order_id for o in mine}
    left = [o for o in _resting(client) if o.order_id in ids]
    if left:
        _batch_cancel(client, left, errors)
        left = [o for o in _resting(client) if o.order_id in ids]
    gone = [o for o in mine if o.order_id not in {x.order_id for x in left}]
    _book_cancels(engine, gone, as_of, f"cancel {strategy}: {reason}"[:200])
    log.warning("cancel %s (%s): %d groups triggered, %d cancelled, %d still resting", strategy,
                reason, len(groups.groups), len(gone), len(left))
    return CancelReport(tuple(o.order_id for o in gone), tuple(o.order_id for o in left),
                        tuple(errors))


def kill(client: KalshiClient, engine: Engine, reason: str, *, by: str, as_of: datetime,
         webhook: SecretStr | str | None = None, strategy: str | None = None
         ) -> tuple[int | None, CancelReport | None]:
    """Kill switch: halt first, then cancel everything; return (halt id, cancel report).

    With `strategy`, only that strategy's orders are cancelled (through its order group); the
    halt names the strategy and, like every halt, blocks all new orders until resume.
    """
    text = reason.strip() or "kill switch"
    head = "kill switch" if strategy is None else f"kill switch [strategy {strategy}]"
    halt_id = halt_trading(engine, f"{head}: {text}", set_by=by, as_of=as_of,
                           webhook=webhook)
    try:
        if strategy is None:
            report = cancel_all(client, engine, as_of=as_of, reason=f"{head}: {text}",
                                keep_groups_triggered=True)
        else:
            report = cancel_strategy(client, engine, strategy, f"{head}: {text}", as_of=as_of)
    except KalshiError as exc:
        send_alert(webhook, "kill", f"halted but the exchange is unreachable ({exc}); resting "
                   f"orders expire at their TTL")
        return halt_id, None
    if not report.complete:
        send_alert(webhook, "kill", f"{len(report.still_resting)} orders still resting after "
                   f"cancel-all: {list(report.still_resting)}")
    return halt_id, report


def reset_order_groups(client: KalshiClient, engine: Engine, *, as_of: datetime, reason: str,
                       webhook: SecretStr | str | None = None) -> tuple[str, ...]:
    """Reset every strategy's order group after a resume (orders are accepted again); return
    the groups reset. A failure is alerted, not raised: the halts are already cleared, and a
    group still triggered only makes the next trading run halt again."""
    report = reset_groups(client, engine, as_of=as_of, reason=reason)
    if report.errors:
        send_alert(webhook, "resume", f"order groups not reset: {'; '.join(report.errors)}")
    return report.groups


# --- guard ----------------------------------------------------------------------------------

def fill_counts(engine: Engine, *, now: datetime, lookback_s: float) -> FillCounts:
    """Return contracts offered at the exchange and filled, for orders created in the lookback."""
    since = ms_from_datetime(now - timedelta(seconds=lookback_s))
    with read_session(engine) as session:
        offered, filled = session.execute(
            select(func.coalesce(func.sum(OrderRecord.count), 0),
                   func.coalesce(func.sum(func.max(OrderRecord.filled_count,
                                                   OrderRecord.exchange_filled_count)), 0))
            .where(col(OrderRecord.created_ts_ms) >= since)
            .where(col(OrderRecord.exchange_order_id).is_not(None))
        ).one()
    return FillCounts(int(offered), int(filled))


def heartbeat_times(engine: Engine, names: Iterable[str]) -> dict[str, datetime | None]:
    """Return the last heartbeat of each component (None if never seen)."""
    wanted = sorted(set(names))
    with read_session(engine) as session:
        rows = {h.component: h.ts_ms for h in session.exec(
            select(Heartbeat).where(col(Heartbeat.component).in_(wanted)))}
    return {n: datetime_from_ms(rows[n]) if n in rows else None for n in wanted}


@dataclass(frozen=True)
class GuardReport:
    """One guard run: every breaker, the trips, the halt and the cancel it caused."""

    as_of: datetime
    breakers: tuple[Breaker, ...]
    halt_id: int | None
    cancel: CancelReport | None
    equity_cents: int | None
    start_equity_cents: int | None
    exchange_error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def trips(self) -> tuple[Breaker, ...]:
        """The breakers that tripped."""
        return tripped(self.breakers)

    def as_rows(self) -> list[dict[str, Any]]:
        """Return one row per breaker (the run's artifact table)."""
        return [asdict(b) for b in self.breakers]


def _inputs(client: KalshiClient, engine: Engine, *, now: datetime, limits: BreakerLimits,
            heartbeats: Mapping[str, float], feeds: Mapping[str, float]
            ) -> tuple[GuardInputs, ExchangeState | None, str | None]:
    state: ExchangeState | None = None
    error: str | None = None
    try:
        state = read_exchange_state(client)
    except KalshiError as exc:
        error = f"{type(exc).__name__}: {exc}"
    note_link(engine, up=state is not None, as_of=now)
    start = None
    if state is not None:
        start = record_start_of_day_equity(engine, now.astimezone(UTC).date(),
                                           state.equity_cents, as_of=now)
    beats = heartbeat_times(engine, [*heartbeats, *feeds])
    inputs = GuardInputs(
        start_equity_cents=start,
        equity_cents=None if state is None else state.equity_cents,
        api=api_call_counts(engine, now=now, window_s=limits.error_window_s),
        fills=fill_counts(engine, now=now, lookback_s=limits.fill_lookback_s),
        link=link_observation(engine, up=state is not None, detail=error or ""),
        feeds={n: (beats[n], age) for n, age in feeds.items()},
        heartbeats={n: (beats[n], age) for n, age in heartbeats.items()},
        resting_orders=None if state is None else len(state.resting),
    )
    return inputs, state, error


def evaluate(client: KalshiClient, engine: Engine, *, now: datetime, limits: BreakerLimits,
             heartbeats: Mapping[str, float] = DEFAULT_HEARTBEATS,
             feeds: Mapping[str, float] = DEFAULT_FEEDS) -> tuple[Breaker, ...]:
    """Return every breaker's verdict now without halting or cancelling (``status``,
    ``resume``); like every guard read it records the link state and the day's first equity."""
    inputs, _state, _error = _inputs(client, engine, now=now, limits=limits,
                                     heartbeats=heartbeats, feeds=feeds)
    return evaluate_breakers(inputs, limits, now)


def run_guard(client: KalshiClient, engine: Engine, *, now: datetime, limits: BreakerLimits,
              heartbeats: Mapping[str, float] = DEFAULT_HEARTBEATS,
              feeds: Mapping[str, float] = DEFAULT_FEEDS,
              webhook: SecretStr | str | None = None, set_by: str = "guard") -> GuardReport:
    """Evaluate every breaker; on any trip halt trading, cancel everything, and alert."""
    inputs, state, error = _inputs(client, engine, now=now, limits=limits,
                                   heartbeats=heartbeats, feeds=feeds)
    breakers = evaluate_breakers(inputs, limits, now)
    trips = tripped(breakers)
    halt_id: int | None = None
    report: CancelReport | None = None
    notes: list[str] = []
    for trip in trips:
        send_alert(webhook, "breaker", f"{trip.name}: {trip.reason}",
                   {"breaker": trip.name, "at": now.isoformat()})
        new = halt_trading(engine, f"breaker {trip.name}: {trip.reason}", set_by=set_by,
                           as_of=now, webhook=webhook, dedupe_prefix=f"breaker {trip.name}:")
        halt_id = halt_id or new
    if trips and state is not None:
        try:
            report = cancel_all(client, engine, as_of=now,
                                reason=", ".join(t.name for t in trips))
        except KalshiError as exc:
            notes.append(f"cancel-all failed: {type(exc).__name__}: {exc}")
        if report is not None and report.complete:
            _forget_outage(engine)  # acted on: the dead man's switch fired
    elif trips:
        notes.append("exchange unreachable: halted; cancel-all when it returns")
    elif state is not None:
        _forget_outage(engine)  # a short outage: nothing to do
    _prune_api_buckets(engine, before=now - timedelta(days=1))
    return GuardReport(now, breakers, halt_id, report, inputs.equity_cents,
                       inputs.start_equity_cents, error, tuple(notes))


def status_report(client: KalshiClient, engine: Engine, *, now: datetime,
                  limits: BreakerLimits, heartbeats: Mapping[str, float] = DEFAULT_HEARTBEATS,
                  feeds: Mapping[str, float] = DEFAULT_FEEDS) -> dict[str, Any]:
    """Return halt state, every breaker, resting orders, positions, today's P&L and the
    strategies' order groups (JSON-able)."""
    inputs, state, error = _inputs(client, engine, now=now, limits=limits,
                                   heartbeats=heartbeats, feeds=feeds)
    breakers = evaluate_breakers(inputs, limits, now)
    with read_session(engine) as session:
        ledger_positions = {p.market_ticker: p.contracts for p in session.exec(
            select(Position).where(Position.contracts != 0))}
    halts = list_halts(engine)
    pnl = None
    if inputs.equity_cents is not None and inputs.start_equity_cents is not None:
        pnl = inputs.equity_cents - inputs.start_equity_cents
    return {
        "as_of": now.isoformat(),
        "halted": bool(halts),
        "halts": [{"id": h.halt_id, "reason": h.reason, "set_by": h.set_by,
                   "set_at": h.set_at.isoformat()} for h in halts],
        "breakers": [asdict(b) for b in breakers],
        "exchange_error": error,
        "resting_orders": [] if state is None else [
            {"order_id": o.order_id, "client_order_id": o.client_order_id, "ticker": o.ticker,
             "book_side": o.book_side, "yes_price_cents": int(o.yes_price_cents),
             "remaining": o.remaining_contracts} for o in state.resting],
        "positions": {"ledger": ledger_positions,
                      "exchange": None if state is None else dict(state.positions)},
        "equity_cents": inputs.equity_cents,
        "start_of_day_equity_cents": inputs.start_equity_cents,
        "pnl_today_cents": pnl,
        "order_groups": [
            {"strategy": g.strategy, "order_group_id": g.order_group_id,
             "contracts_limit": g.contracts_limit, "created_at": g.created_at.isoformat(),
             "triggered_at": None if g.triggered_at is None else g.triggered_at.isoformat()}
            for g in strategy_groups(engine)],
    }


# --- settings-built resources and Prefect tasks (the flows' building blocks) ----------------

@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    upgrade_ledger(url)  # idempotent; creates the schema on first use
    return ledger_engine(url)


def safety_engine(settings: Settings | None = None) -> Engine:
    """Return the ledger engine of the settings, migrated to the current schema."""
    return _engine((settings or load_settings()).ledger_url)


@contextmanager
def exchange_client(settings: Settings, engine: Engine) -> Iterator[KalshiClient]:
    """Yield a recorded, short-timeout client for the configured exchange."""
    client = safety_client(settings.base_url, kalshi_auth(settings), engine,
                           timeout_s=min(settings.kalshi_timeout_s, 5.0))
    try:
        yield client
    finally:
        client.close()


def breaker_limits(settings: Settings, **overrides: Any) -> BreakerLimits:
    """Return the breaker limits: the daily loss fraction from settings, the rest as given."""
    values: dict[str, Any] = {"daily_loss_fraction": Decimal(settings.daily_loss_fraction)}
    for name, value in overrides.items():
        if value is None:
            continue
        values[name] = Decimal(str(value)) if isinstance(value, float) else value
    return BreakerLimits(**values)


@task(name="guard-breakers", cache_policy=NO_CACHE)
def guard_task(as_of: datetime, heartbeats: dict[str, float], feeds: dict[str, float],
               limits: dict[str, Any]) -> GuardReport:
    """Evaluate every breaker; on a trip halt, cancel everything and alert."""
    settings = load_settings()
    engine = safety_engine(settings)
    with exchange_client(settings, engine) as client:
        return run_guard(client, engine, now=as_of, limits=breaker_limits(settings, **limits),
                         heartbeats=heartbeats, feeds=feeds, webhook=settings.alert_webhook_url)


@task(name="kill-switch", cache_policy=NO_CACHE)
def kill_task(reason: str, by: str, as_of: datetime,
              strategy: str | None = None) -> dict[str, Any]:
    """Halt trading and cancel every resting order (or, with `strategy`, only that strategy's,
    through its order group); return what happened."""
    settings = load_settings()
    engine = safety_engine(settings)
    with exchange_client(settings, engine) as client:
        halt_id, report = kill(client, engine, reason, by=by, as_of=as_of,
                               webhook=settings.alert_webhook_url, strategy=strategy or None)
    return {"halt_id": halt_id, "halts": [h.halt_id for h in list_halts(engine)],
            "canceled": [] if report is None else list(report.canceled),
            "still_resting": None if report is None else list(report.still_resting),
            "errors": [] if report is None else list(report.errors),
            "exchange_reached": report is not None}


@task(name="resume-trading", cache_policy=NO_CACHE)
def resume_task(reason: str, by: str, as_of: datetime, heartbeats: dict[str, float],
                feeds: dict[str, float], limits: dict[str, Any],
                accept_drift: bool = False) -> list[int]:
    """Clear every halt unless a breaker trips or drift remains (raises ResumeRefused)."""
    settings = load_settings()
    engine = safety_engine(settings)
    with exchange_client(settings, engine) as client:
        breakers = evaluate(client, engine, now=as_of, limits=breaker_limits(settings, **limits),
                            heartbeats=heartbeats, feeds=feeds)
        cleared = resume_checked(client, engine, reason, by=by, as_of=as_of, breakers=breakers,
                                 accept_drift=accept_drift, webhook=settings.alert_webhook_url)
        reset_order_groups(client, engine, as_of=as_of, reason=f"resume by {by}: {reason}",
                           webhook=settings.alert_webhook_url)  # after the halts are cleared
        return cleared


@task(name="cancel-all", cache_policy=NO_CACHE)
def cancel_all_task(reason: str, as_of: datetime) -> dict[str, Any]:
    """Cancel every resting order (no halt) and verify at the exchange; alert either way."""
    settings = load_settings()
    engine = safety_engine(settings)
    with exchange_client(settings, engine) as client:
        report = cancel_all(client, engine, as_of=as_of, reason=reason)
    send_alert(settings.alert_webhook_url, "cancel-all",
               f"{reason}: {len(report.canceled)} cancelled, {len(report.still_resting)} still "
               f"resting", {"errors": list(report.errors)})
    return {"canceled": list(report.canceled), "still_resting": list(report.still_resting),
            "errors": list(report.errors)}
