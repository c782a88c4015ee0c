"""Reconciliation I/O: read the exchange completely, compare with the ledger, import, verify.

Invariants:
- The ledger is changed only from a COMPLETE, consistent exchange snapshot: every read succeeded,
  every page was read, the balance did not move while reading, and each order's fill count
  matches its fills. Otherwise nothing is imported; trading is halted and the report says what
  could not be verified.
- Only explained differences are applied (fills and settlements are booked idempotently by the
  ledger store, order statuses move along their allowed transitions); unexplained ones halt.
- After applying, the ledger is compared again: what remains is reported, never hidden.
- Cash is checked against a baseline kept in the ledger (``heartbeats`` row
  ``reconcile:baseline``): the cash moved since then must equal what the fills and settlements
  booked since then explain. The baseline moves only after a clean run, or when an operator
  accepts a balance drift with a recorded reason (``eventdesk resume --accept-drift``).
- Resume after a drift halt runs ``drift_for_resume``: the same read and comparison, read-only
  (fills and settlements still to import are projected, not booked). An unexplained difference
  is acknowledged only by an explicit operator decision (``accept_differences``), recorded with
  who, when and why (a ``drift_accepted`` risk event each): an order placed outside the bot is
  imported as an ``external`` order (its fills then book against it); a cash drift becomes an
  external cash movement (the baseline shifts by exactly that amount); any other difference is
  remembered exactly as shown (``heartbeats`` row ``reconcile:accepted:<hash>``) and is explained
  while it stays identical. Unverified differences are never accepted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr
from sqlalchemy import Engine, func
from sqlmodel import col, select

from kalshi.client import KalshiClient
from kalshi.errors import KalshiError
from kalshi.wire import Order
from models.ledger import (
    Fill,
    Heartbeat,
    OrderEvent,
    OrderRecord,
    Position,
    RiskEvent,
    Settlement,
    ms_from_datetime,
)
from models.reconcile import (
    Acceptance,
    Difference,
    ExchangeFill,
    ExchangeOrder,
    ExchangeSettlement,
    ExchangeView,
    FillFlow,
    LedgerOrder,
    LedgerView,
    SettlementFlow,
    acceptance_refusal,
    apply_acceptances,
    check_balance,
    compare,
    difference_key,
    explained_cash_cents,
    unexplained,
)
from tasks.db import read_session, write_session
from tasks.gateway import fill_report
from tasks.ledger_store import FillReport, record_fill, record_settlement, transition_order
from tasks.safety import DriftStatus, exchange_client, halt_trading, safety_engine, send_alert
from tasks.settings import load_settings

__all__ = [
    "ACCEPTED_PREFIX",
    "BASELINE",
    "EXTERNAL",
    "ReconcileReport",
    "Snapshot",
    "accept_differences",
    "accepted_differences",
    "apply_differences",
    "balance_baseline",
    "check_drift",
    "drift_for_resume",
    "ledger_view",
    "read_snapshot",
    "reconcile_once",
    "reconcile_task",
]

log = logging.getLogger(__name__)

BASELINE: Final = "reconcile:baseline"
ACCEPTED_PREFIX: Final = "reconcile:accepted:"
EXTERNAL: Final = "external"  # strategy and category of orders placed outside the bot
_STATUS_OF_ACTION: Final = {"mark_canceled": "canceled", "mark_executed": "executed",
                            "mark_resting": "resting"}


@dataclass(frozen=True)
class Snapshot:
    """The exchange view plus what importing needs (fills in ledger units, raw orders)."""

    view: ExchangeView
    fill_reports: dict[str, FillReport]
    orders: dict[str, Order]
    settled_at: dict[str, datetime]
    resting_contracts: int


def _side_price(order: Order) -> tuple[str, int]:
    yes = int(order.yes_price_cents)
    return ("yes", yes) if order.book_side == "bid" else ("no", 100 - yes)


def _collateral(order: Order) -> int:
    price = order.yes_price if order.book_side == "bid" else order.no_price
    return int(Decimal(order.remaining_contracts) * price * 100)


def _read_once(client: KalshiClient) -> Snapshot:
    problems: list[str] = []

    def attempt(what: str, fn: Any) -> Any:
        try:
            return fn()
        except (KalshiError, ValueError) as exc:
            problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return None

    before = attempt("balance", client.get_balance)
    orders = attempt("orders", lambda: list(client.iter_orders())) or []
    fills = attempt("fills", lambda: list(client.iter_fills())) or []
    positions = attempt("positions", lambda: list(client.iter_positions())) or []
    settlements = attempt("settlements", lambda: list(client.iter_settlements())) or []
    after = attempt("balance (second read)", client.get_balance)
    if before is not None and after is not None and before.balance_cents != after.balance_cents:
        problems.append(f"balance moved while reading ({before.balance_cents}c -> "
                        f"{after.balance_cents}c): no consistent snapshot")
    by_id = {o.order_id: o for o in orders}
    reports: dict[str, FillReport] = {}
    ex_fills: list[ExchangeFill] = []
    for fill in fills:
        owner = by_id.get(fill.order_id)
        try:
            report = fill_report(fill, owner.client_order_id if owner else None)
        except ValueError as exc:
            problems.append(f"fill {fill.fill_id}: {exc}")
            continue
        reports[fill.fill_id] = report
        ex_fills.append(ExchangeFill(fill.fill_id, fill.order_id, fill.ticker, report.side,
                                     report.price_cents, report.count, report.fee_cents,
                                     report.ts_ms))
    ex_orders = []
    for order in orders:
        side, price = _side_price(order)
        ex_orders.append(ExchangeOrder(order.order_id, order.client_order_id, order.ticker, side,
                                       price, order.status, int(order.fill_count),
                                       int(order.remaining_count)))
    ex_settlements = [ExchangeSettlement(s.ticker, s.market_result,
                                         int(s.yes_count - s.no_count), s.revenue_cents,
                                         ms_from_datetime(s.settled_time)) for s in settlements]
    resting = [o for o in orders if o.status == "resting"]
    cash = None if after is None else after.balance_cents + sum(_collateral(o) for o in resting)
    view = ExchangeView(
        orders=tuple(ex_orders), fills=tuple(ex_fills),
        positions={p.ticker: p.position_contracts for p in positions if p.position != 0},
        settlements=tuple(ex_settlements), cash_cents=cash, problems=tuple(problems))
    return Snapshot(view, reports, by_id, {s.ticker: s.settled_time for s in settlements},
                    sum(o.remaining_contracts for o in resting))


def read_snapshot(client: KalshiClient, *, attempts: int = 3) -> Snapshot:
    """Read the exchange until one snapshot is consistent (at most `attempts` tries)."""
    snapshot = _read_once(client)
    for _ in range(attempts - 1):
        if not snapshot.view.problems:
            break
        snapshot = _read_once(client)
    return snapshot


def ledger_view(engine: Engine) -> LedgerView:
    """Return the ledger's orders, fill ids, positions and settled markets."""
    with read_session(engine) as session:
        orders = tuple(
            LedgerOrder(o.client_order_id, o.exchange_order_id, o.market_ticker, o.side, o.count,
                        o.filled_count, o.status, o.expiration_ts_ms)
            for o in session.exec(select(OrderRecord)))
        fill_ids = frozenset(session.exec(select(Fill.exchange_fill_id)))
        positions = {p.market_ticker: p.contracts for p in session.exec(select(Position))
                     if p.contracts != 0}
        settled = frozenset(session.exec(select(Settlement.market_ticker)))
    return LedgerView(orders, fill_ids, positions, settled)


def apply_differences(client: KalshiClient, engine: Engine, snapshot: Snapshot,
                      differences: tuple[Difference, ...], *, as_of: datetime) -> list[str]:
    """Apply the explained differences (fills, then order statuses, then settlements)."""
    if snapshot.view.problems:
        raise ValueError("apply_differences: refusing to change the ledger from an incomplete "
                         f"snapshot ({'; '.join(snapshot.view.problems)})")
    applied: list[str] = []
    known = {o.client_order_id: o for o in ledger_view(engine).orders}
    events: dict[str, str] = {}
    for diff in differences:
        if not diff.explained or diff.action != "import_fill":
            continue
        report = snapshot.fill_reports[diff.subject]
        if report.client_order_id not in known:
            ticker = report.market_ticker
            if ticker not in events:
                events[ticker] = client.get_market(ticker).event_ticker
            report = FillReport(**{**asdict(report), "client_order_id": None,
                                   "event_ticker": events[ticker], "category": "unknown"})
        if record_fill(engine, report):
            applied.append(f"import_fill {diff.subject}")
    for diff in differences:
        status = _STATUS_OF_ACTION.get(diff.action)
        if not diff.explained or status is None:
            continue
        mine = known[diff.subject]
        found = next((o for o in snapshot.orders.values()
                      if o.client_order_id == diff.subject
                      or o.order_id == mine.exchange_order_id), None)
        filled = None if found is None else min(int(found.fill_count), mine.count)
        transition_order(engine, diff.subject, status, as_of=as_of,
                         exchange_order_id=None if found is None else found.order_id,
                         exchange_filled_count=filled, detail=f"reconcile: {diff.detail}"[:500])
        applied.append(f"{diff.action} {diff.subject}")
    for diff in differences:
        if diff.explained and diff.action == "import_settlement":
            result = next(s.result for s in snapshot.view.settlements if s.ticker == diff.subject)
            if record_settlement(engine, diff.subject, result,
                                 as_of=snapshot.settled_at[diff.subject]):
                applied.append(f"import_settlement {diff.subject}")
    return applied


def balance_baseline(engine: Engine) -> dict[str, int] | None:
    """Return the stored cash baseline (cash_cents, fill_id, settlement_id), if any."""
    with read_session(engine) as session:
        row = session.get(Heartbeat, BASELINE)
    return None if row is None or not row.detail else dict(json.loads(row.detail))


def _flows_since(engine: Engine, baseline: dict[str, int]) -> tuple[list[FillFlow],
                                                                     list[SettlementFlow],
                                                                     dict[str, int]]:
    with read_session(engine) as session:
        fills = [FillFlow(f.market_ticker, f.side, f.price_cents, f.count, f.fee_cents, f.ts_ms)
                 for f in session.exec(select(Fill).where(col(Fill.id) > baseline["fill_id"]))]
        settlements = [SettlementFlow(s.market_ticker, s.contracts, s.revenue_cents,
                                      s.settled_ts_ms)
                       for s in session.exec(select(Settlement).where(
                           col(Settlement.id) > baseline["settlement_id"]))]
        positions = {p.market_ticker: p.contracts for p in session.exec(select(Position))}
    return fills, settlements, positions


def _store_baseline(engine: Engine, snapshot: Snapshot, as_of: datetime) -> None:
    ids = set(snapshot.fill_reports)
    with write_session(engine) as session:
        fill_id = session.exec(select(func.max(Fill.id)).where(
            col(Fill.exchange_fill_id).in_(sorted(ids)))).one() if ids else None
        if fill_id is None:
            fill_id = 0
        settlement_id = session.exec(select(func.max(Settlement.id))).one() or 0
        detail = json.dumps({"cash_cents": snapshot.view.cash_cents, "fill_id": int(fill_id),
                             "settlement_id": int(settlement_id)})
        row = session.get(Heartbeat, BASELINE)
        ts_ms = ms_from_datetime(as_of)
        if row is None:
            row = Heartbeat(component=BASELINE, ts_ms=ts_ms, detail=detail)
        else:
            row.ts_ms, row.detail = ts_ms, detail
        session.add(row)


def _balance_difference(engine: Engine, snapshot: Snapshot,
                        pending: tuple[Difference, ...]) -> Difference | None:
    # cash moved since the baseline vs what the booked (and `pending`, still to be imported)
    # fills and settlements explain; None without a baseline
    baseline = balance_baseline(engine)
    if baseline is None:
        return None
    fills, settlements, positions = _flows_since(engine, baseline)
    for diff in pending:
        if diff.action == "import_fill":
            r = snapshot.fill_reports[diff.subject]
            fills.append(FillFlow(r.market_ticker, r.side, r.price_cents, r.count, r.fee_cents,
                                  r.ts_ms))
            signed = r.count if r.side == "yes" else -r.count
            positions[r.market_ticker] = positions.get(r.market_ticker, 0) + signed
    for diff in pending:
        if diff.action == "import_settlement":
            settled = next(x for x in snapshot.view.settlements if x.ticker == diff.subject)
            settlements.append(SettlementFlow(settled.ticker, settled.contracts,
                                              settled.revenue_cents, settled.ts_ms))
            positions[settled.ticker] = 0
    return check_balance(baseline["cash_cents"], snapshot.view.cash_cents,
                         explained_cash_cents(fills, settlements, positions),
                         tolerance_cents=2 * snapshot.resting_contracts)


@dataclass(frozen=True)
class ReconcileReport:
    """One reconciliation: differences found, applied, remaining, and the halt it caused."""

    as_of: datetime
    complete: bool
    differences: tuple[Difference, ...]
    applied: tuple[str, ...]
    remaining: tuple[Difference, ...]
    halt_id: int | None

    @property
    def unexplained(self) -> tuple[Difference, ...]:
        """Differences that halted (or would halt) trading."""
        return unexplained(self.differences)

    def as_rows(self) -> list[dict[str, Any]]:
        """One row per difference (the run's artifact table)."""
        applied = {a.split(" ", 1)[1] for a in self.applied}
        return [{**asdict(d), "applied": d.subject in applied} for d in self.differences]


def reconcile_once(client: KalshiClient, engine: Engine, *, now: datetime,
                   webhook: SecretStr | str | None = None,
                   set_by: str = "reconcile") -> ReconcileReport:
    """Compare, import the explained, halt on the unexplained or unverifiable, then verify."""
    snapshot = read_snapshot(client)
    view = snapshot.view
    now_ms = ms_from_datetime(now)
    differences = compare(view, ledger_view(engine), now_ms=now_ms)
    if view.problems:
        text = "could not verify: " + "; ".join(view.problems)
        halt_id = halt_trading(engine, f"reconcile: {text}"[:500], set_by=set_by, as_of=now,
                               webhook=webhook, dedupe_prefix="reconcile:")
        return ReconcileReport(now, False, differences, (), differences, halt_id)
    accepted = accepted_differences(engine)
    differences = apply_acceptances(differences, accepted)
    applied = apply_differences(client, engine, snapshot, differences, as_of=now)
    drift = _balance_difference(engine, snapshot, ())
    if drift is not None:
        differences = (*differences, drift)
    remaining = apply_acceptances(compare(view, ledger_view(engine), now_ms=now_ms), accepted)
    remaining = (*remaining, *(d for d in differences if d.kind == "balance_drift"))
    bad = unexplained(differences)
    halt_id = None
    news = [d for d in differences if d.action != "accepted"]  # acknowledged ones alerted once
    if news:
        send_alert(webhook, "drift", f"{len(news)} differences ({len(bad)} unexplained), "
                   f"{len(applied)} applied: " + "; ".join(
                       f"{d.kind} {d.subject}" for d in news[:10]),
                   {"differences": [asdict(d) for d in news[:50]]})
    if bad:
        text = "; ".join(f"{d.kind} {d.subject}: {d.detail}" for d in bad)
        halt_id = halt_trading(engine, f"reconcile: unexplained drift: {text}"[:500],
                               set_by=set_by, as_of=now, webhook=webhook,
                               dedupe_prefix="reconcile:")
    else:
        _store_baseline(engine, snapshot, now)
    log.info("reconcile: %d differences, %d applied, %d unexplained", len(differences),
             len(applied), len(bad))
    return ReconcileReport(now, True, differences, tuple(applied), remaining, halt_id)


# --- resume after drift: the read-only check and explicit acknowledgements ------------------

def accepted_differences(engine: Engine) -> dict[str, Acceptance]:
    """Return the acknowledged differences by ``difference_key``."""
    out: dict[str, Acceptance] = {}
    with read_session(engine) as session:
        rows = session.exec(select(Heartbeat).where(
            col(Heartbeat.component).startswith(ACCEPTED_PREFIX)))
        for row in rows:
            doc = json.loads(row.detail or "{}")
            note = Acceptance(doc["kind"], doc["subject"], doc["detail"], doc["by"],
                              doc["reason"], row.ts_ms)
            out[difference_key(Difference(note.kind, note.subject, note.detail, False))] = note
    return out


def check_drift(client: KalshiClient, engine: Engine, *,
                now: datetime) -> tuple[ReconcileReport, Snapshot]:
    """Compare the exchange with the ledger exactly as a reconciliation does, read-only.

    Nothing is imported, halted or moved: fills and settlements a reconciliation would import
    are listed (explained) and projected into the cash check.
    """
    snapshot = read_snapshot(client)
    view = snapshot.view
    differences = apply_acceptances(compare(view, ledger_view(engine),
                                            now_ms=ms_from_datetime(now)),
                                    accepted_differences(engine))
    if view.problems:
        return ReconcileReport(now, False, differences, (), differences, None), snapshot
    pending = tuple(d for d in differences
                    if d.explained and d.action in ("import_fill", "import_settlement"))
    drift = _balance_difference(engine, snapshot, pending)
    if drift is not None:
        differences = (*differences, drift)
    return ReconcileReport(now, True, differences, (), differences, None), snapshot


def _line(diff: Difference) -> str:
    return f"{diff.kind} {diff.subject}: {diff.detail}"


def _import_external_order(client: KalshiClient, engine: Engine, snapshot: Snapshot,
                           order_id: str, *, note: str, as_of: datetime) -> str:
    # an order placed outside the bot becomes a ledger order of strategy "external"; fills of it
    # already booked (unlinked) are linked to it, later ones book against it
    order = snapshot.orders[order_id]
    side, price = _side_price(order)
    cid = (order.client_order_id or f"{EXTERNAL}-{order.order_id}")[:64]
    event_ticker = client.get_market(order.ticker).event_ticker
    fill_ids = sorted(f.fill_id for f in snapshot.view.fills if f.order_id == order_id)
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        booked = list(session.exec(select(Fill).where(col(Fill.exchange_fill_id).in_(fill_ids))))
        filled = int(order.fill_count)
        count = (filled + order.remaining_contracts if order.status == "resting"
                 else max(filled, int(order.initial_count or 0)))  # terminal: as placed
        row = OrderRecord(
            client_order_id=cid, exchange_order_id=order.order_id, strategy=EXTERNAL,
            market_ticker=order.ticker, event_ticker=event_ticker, category=EXTERNAL, side=side,
            price_cents=price, count=count,
            filled_count=sum(f.count for f in booked), exchange_filled_count=filled,
            status=order.status, time_in_force="unknown",
            expiration_ts_ms=(None if order.expiration_time is None
                              else ms_from_datetime(order.expiration_time)),
            created_ts_ms=(ts_ms if order.created_time is None
                           else ms_from_datetime(order.created_time)),
            updated_ts_ms=ts_ms, detail=note[:500])
        session.add(row)
        session.flush()
        for fill in booked:
            fill.order_id, fill.client_order_id = row.id, cid
            session.add(fill)
        assert row.id is not None
        session.add(OrderEvent(order_id=row.id, status=order.status, detail=note[:500],
                               ts_ms=ts_ms))
    return cid


def _shift_baseline(engine: Engine, cents: int, ts_ms: int) -> None:
    # an accepted cash drift is an external cash movement: the baseline moves by exactly it
    with write_session(engine) as session:
        row = session.get(Heartbeat, BASELINE)
        if row is None or not row.detail:
            raise ValueError("balance_drift: no cash baseline to shift")
        doc = json.loads(row.detail)
        doc["cash_cents"] = int(doc["cash_cents"]) + cents
        row.detail, row.ts_ms = json.dumps(doc), ts_ms
        session.add(row)


def accept_differences(client: KalshiClient, engine: Engine, snapshot: Snapshot,
                       differences: tuple[Difference, ...], *, by: str, reason: str,
                       as_of: datetime) -> list[str]:
    """Record the operator's acknowledgement of every unexplained difference; return them.

    Refuses (ValueError naming the difference) if the snapshot is incomplete, no reason is
    given, or any difference cannot be accepted; then nothing is recorded.
    """
    if snapshot.view.problems:
        raise ValueError("accept: the exchange view is incomplete: "
                         + "; ".join(snapshot.view.problems))
    if not reason.strip() or not by.strip():
        raise ValueError(f"accept: by and reason are required (got {by!r}, {reason!r})")
    bad = unexplained(differences)
    refusals = [r for r in (acceptance_refusal(d) for d in bad) if r is not None]
    if refusals:
        raise ValueError("accept: " + "; ".join(refusals))
    ts_ms = ms_from_datetime(as_of)
    note = f"accepted by {by}: {reason}"
    lines = []
    for diff in bad:
        what = _line(diff)
        if diff.kind == "unknown_order":
            cid = _import_external_order(client, engine, snapshot, diff.subject,
                                         note=f"{EXTERNAL} order, {note}", as_of=as_of)
            what += f" -> imported as {EXTERNAL} order {cid}"
        elif diff.kind == "balance_drift" and diff.cents is not None:
            _shift_baseline(engine, diff.cents, ts_ms)
            what += f" -> external cash movement {diff.cents:+d}c"
        else:
            key = difference_key(diff)
            digest = hashlib.sha256(key.encode()).hexdigest()[:32]
            with write_session(engine) as session:
                session.merge(Heartbeat(component=f"{ACCEPTED_PREFIX}{digest}", ts_ms=ts_ms,
                                        detail=json.dumps({"kind": diff.kind,
                                                           "subject": diff.subject,
                                                           "detail": diff.detail, "by": by,
                                                           "reason": reason})))
        ticker = snapshot.orders[diff.subject].ticker if diff.subject in snapshot.orders else (
            diff.subject if diff.kind in ("position_mismatch", "missing_settlement") else None)
        with write_session(engine) as session:
            session.add(RiskEvent(kind="drift_accepted", limit_name="reconcile",
                                  market_ticker=ticker, reason=f"{what}; {note}"[:1000],
                                  ts_ms=ts_ms))
        lines.append(what)
    log.warning("drift accepted by %s (%s): %s", by, reason, lines)
    return lines


def drift_for_resume(client: KalshiClient, engine: Engine, *, now: datetime, accept: bool,
                     by: str, reason: str) -> DriftStatus:
    """Run the read-only reconciliation for resume; with `accept`, acknowledge what it finds
    (when every difference can be accepted) and check again."""
    report, snapshot = check_drift(client, engine, now=now)
    accepted: list[str] = []
    bad = report.unexplained
    if accept and report.complete and bad and all(acceptance_refusal(d) is None for d in bad):
        accepted = accept_differences(client, engine, snapshot, report.differences, by=by,
                                      reason=reason, as_of=now)
        report, snapshot = check_drift(client, engine, now=now)
    lines = []
    for diff in report.unexplained:
        refusal = acceptance_refusal(diff)
        lines.append(_line(diff) + ("" if refusal is None else " (cannot be accepted)"))
    pending = tuple(_line(d) for d in report.differences
                    if d.explained and d.action != "accepted")
    return DriftStatus(now, report.complete, tuple(lines), tuple(accepted), pending)


@task(name="reconcile-ledger", cache_policy=NO_CACHE)
def reconcile_task(as_of: datetime) -> ReconcileReport:
    """Reconcile the configured exchange account with the ledger once."""
    settings = load_settings()
    engine = safety_engine(settings)
    with exchange_client(settings, engine) as client:
        return reconcile_once(client, engine, now=as_of, webhook=settings.alert_webhook_url)
