"""Reconciliation, pure: compare the exchange's view of our account with the ledger's.

Invariant: every difference is classified (kind, subject, explained or not, the action that
brings the ledger to the exchange), and an incomplete exchange view yields only ``unverified``
differences with no action, so nothing is ever "fixed" from a partial picture. The exchange is
authoritative for what happened (fills, cancels, settlements); the ledger is authoritative for
what we intended. Explained differences are the ones the ledger can import exactly (a fill the
ledger missed, a settlement, an order cancelled or expired at the exchange); unexplained ones
(an order we never placed, a live order the ledger thinks is closed, a position or cash amount
that no booked event explains) must halt trading.

An operator can acknowledge an unexplained difference once explained (``Acceptance``, recorded
with who, when and why): the acknowledged difference, exactly as it was shown (kind, subject,
detail), is then explained; anything that changes it makes it unexplained again. An
``unverified`` difference can never be acknowledged (nothing is accepted from a partial view).

Units: sides are the outcome bought (``yes``/``no``) and prices that outcome's price in cents;
positions are signed contracts (YES > 0); cash is integer cents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ACTIONS",
    "KINDS",
    "Acceptance",
    "Difference",
    "ExchangeFill",
    "ExchangeOrder",
    "ExchangeSettlement",
    "ExchangeView",
    "FillFlow",
    "LedgerOrder",
    "LedgerView",
    "SettlementFlow",
    "acceptance_refusal",
    "apply_acceptances",
    "check_balance",
    "difference_key",
    "compare",
    "explained_cash_cents",
    "unexplained",
]

KINDS: Final = ("missing_fill", "unknown_order", "cancelled_outside", "status_mismatch",
                "position_mismatch", "missing_settlement", "balance_drift", "unverified")
ACTIONS: Final = ("import_fill", "import_settlement", "mark_canceled", "mark_executed",
                  "mark_resting", "accepted", "none")
_ACTIVE: Final = frozenset({"intent", "sent", "acknowledged", "unknown", "resting"})
_UNSENT: Final = frozenset({"intent", "sent", "unknown"})


@dataclass(frozen=True)
class ExchangeOrder:
    """One of our orders at the exchange (outcome side and its price)."""

    order_id: str
    client_order_id: str
    ticker: str
    side: str
    price_cents: int
    status: str  # resting | canceled | executed
    fill_count: int
    remaining_count: int


@dataclass(frozen=True)
class ExchangeFill:
    """One of our fills at the exchange."""

    fill_id: str
    order_id: str
    ticker: str
    side: str
    price_cents: int
    count: int
    fee_cents: int
    ts_ms: int


@dataclass(frozen=True)
class ExchangeSettlement:
    """One settled market of ours at the exchange."""

    ticker: str
    result: str  # yes | no | scalar | void
    contracts: int  # signed position settled (yes_count - no_count)
    revenue_cents: int
    ts_ms: int


@dataclass(frozen=True)
class ExchangeView:
    """What the exchange says, and what could not be read completely (``problems``)."""

    orders: tuple[ExchangeOrder, ...]
    fills: tuple[ExchangeFill, ...]
    positions: Mapping[str, int]
    settlements: tuple[ExchangeSettlement, ...]
    cash_cents: int | None  # available balance + collateral of resting orders
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class LedgerOrder:
    """An order row of the ledger, as reconciliation needs it."""

    client_order_id: str
    exchange_order_id: str | None
    ticker: str
    side: str
    count: int
    filled_count: int
    status: str
    expiration_ts_ms: int | None


@dataclass(frozen=True)
class LedgerView:
    """What the ledger says."""

    orders: tuple[LedgerOrder, ...]
    fill_ids: frozenset[str]
    positions: Mapping[str, int]
    settled: frozenset[str]


@dataclass(frozen=True)
class Difference:
    """One classified difference between exchange and ledger."""

    kind: str
    subject: str  # fill id, order id or ticker
    detail: str
    explained: bool
    action: str = "none"
    cents: int | None = None  # the unexplained amount of a ``balance_drift``


@dataclass(frozen=True)
class FillFlow:
    """A booked fill as a cash movement (outcome side, price, fee)."""

    ticker: str
    side: str
    price_cents: int
    count: int
    fee_cents: int
    ts_ms: int


@dataclass(frozen=True)
class SettlementFlow:
    """A booked settlement as a cash movement (our signed position then, the payout)."""

    ticker: str
    contracts: int
    revenue_cents: int
    ts_ms: int


def _signed(side: str, count: int) -> int:
    return count if side == "yes" else -count


def _order_differences(view: ExchangeView, ledger: LedgerView, now_ms: int) -> list[Difference]:
    out: list[Difference] = []
    by_cid = {o.client_order_id: o for o in ledger.orders}
    by_eid = {o.exchange_order_id: o for o in ledger.orders if o.exchange_order_id}
    filled_by_order: dict[str, int] = defaultdict(int)
    for fill in view.fills:
        filled_by_order[fill.order_id] += fill.count
    seen: set[str] = set()
    for order in view.orders:
        mine = by_cid.get(order.client_order_id) if order.client_order_id else None
        mine = mine or by_eid.get(order.order_id)
        if filled_by_order[order.order_id] != order.fill_count:
            out.append(Difference(
                "unverified", order.order_id,
                f"order reports {order.fill_count} filled but the fills list has "
                f"{filled_by_order[order.order_id]}", False))
        if mine is None:
            out.append(Difference(
                "unknown_order", order.order_id,
                f"{order.status} {order.side} {order.ticker} "
                f"x{order.fill_count + order.remaining_count} @ {order.price_cents}c "
                f"client_order_id={order.client_order_id!r} is not in the "
                f"ledger (placed outside the bot?)", False))
            continue
        seen.add(mine.client_order_id)
        out += _status_difference(order, mine, now_ms)
    for mine in ledger.orders:
        if mine.client_order_id in seen or mine.status not in _ACTIVE:
            continue
        if mine.status in _UNSENT:
            out.append(Difference(
                "status_mismatch", mine.client_order_id,
                f"ledger {mine.status}, not at the exchange: the gateway resolves it by key",
                True))
        else:
            out.append(Difference(
                "status_mismatch", mine.client_order_id,
                f"ledger says {mine.status} ({mine.exchange_order_id}) but the exchange has no "
                f"such order", False))
    return out


def _status_difference(order: ExchangeOrder, mine: LedgerOrder, now_ms: int) -> list[Difference]:
    subject = mine.client_order_id
    if order.status == "resting":
        if mine.status in _ACTIVE:
            if mine.status == "resting":
                return []
            return [Difference("status_mismatch", subject,
                               f"ledger {mine.status}, exchange resting", True, "mark_resting")]
        return [Difference("status_mismatch", subject,
                           f"ledger {mine.status} but the order is live at the exchange "
                           f"({order.remaining_count} resting)", False)]
    if mine.status not in _ACTIVE:
        return []  # both terminal; fills are compared separately
    if order.status == "executed":
        return [Difference("status_mismatch", subject,
                           f"ledger {mine.status}, exchange executed", True, "mark_executed")]
    expired = mine.expiration_ts_ms is not None and now_ms >= mine.expiration_ts_ms
    if expired:
        return [Difference("status_mismatch", subject,
                           f"expired at the exchange (TTL) with {order.fill_count} filled; "
                           f"ledger {mine.status}", True, "mark_canceled")]
    return [Difference("cancelled_outside", subject,
                       f"canceled at the exchange with {order.fill_count} filled while the ledger "
                       f"has it {mine.status} (cancelled outside the bot)", True,
                       "mark_canceled")]


def compare(view: ExchangeView, ledger: LedgerView, *, now_ms: int) -> tuple[Difference, ...]:
    """Classify every difference between `view` and `ledger` (``unverified`` only if partial)."""
    if view.problems:
        return tuple(Difference("unverified", "exchange", p, False) for p in view.problems)
    out: list[Difference] = []
    for fill in view.fills:
        if fill.fill_id not in ledger.fill_ids:
            out.append(Difference(
                "missing_fill", fill.fill_id,
                f"{fill.side} {fill.ticker} x{fill.count} @ {fill.price_cents}c (order "
                f"{fill.order_id}) is not in the ledger", True, "import_fill"))
    out += _order_differences(view, ledger, now_ms)
    projected = dict(ledger.positions)
    for fill in view.fills:
        if fill.fill_id not in ledger.fill_ids:
            projected[fill.ticker] = projected.get(fill.ticker, 0) + _signed(fill.side, fill.count)
    for settlement in view.settlements:
        if settlement.ticker in ledger.settled:
            continue
        importable = settlement.result in ("yes", "no")
        out.append(Difference(
            "missing_settlement", settlement.ticker,
            f"settled {settlement.result} with {settlement.contracts} contracts, revenue "
            f"{settlement.revenue_cents}c; not in the ledger"
            + ("" if importable else " (result cannot be booked)"),
            importable, "import_settlement" if importable else "none"))
        projected[settlement.ticker] = 0
    for ticker in sorted(set(projected) | set(view.positions)):
        ours, theirs = projected.get(ticker, 0), view.positions.get(ticker, 0)
        if ours != theirs:
            out.append(Difference(
                "position_mismatch", ticker,
                f"ledger (after imports) {ours} contracts, exchange {theirs}", False))
    return tuple(out)


def explained_cash_cents(fills: Sequence[FillFlow], settlements: Sequence[SettlementFlow],
                         positions_now: Mapping[str, int]) -> int:
    """Return the cash change that `fills` and `settlements` (all since one baseline) explain.

    A fill costs price x count + fee, and returns 100c per YES+NO pair it closes (Kalshi nets);
    a settlement pays its revenue. Positions before the window are reconstructed backwards from
    `positions_now` (or from a settlement's recorded position).
    """
    events: dict[str, list[tuple[int, int, FillFlow | SettlementFlow]]] = defaultdict(list)
    for i, fill in enumerate(fills):
        events[fill.ticker].append((fill.ts_ms, i, fill))
    for j, settlement in enumerate(settlements):
        events[settlement.ticker].append((settlement.ts_ms, len(fills) + j, settlement))
    total = 0
    for ticker, items in events.items():
        items.sort(key=lambda e: (e[0], e[1]))
        position = positions_now.get(ticker, 0)
        for _ts, _i, item in reversed(items):  # walk back to the window's start position
            if isinstance(item, SettlementFlow):
                position = item.contracts
            else:
                position -= _signed(item.side, item.count)
        for _ts, _i, item in items:
            if isinstance(item, SettlementFlow):
                total += item.revenue_cents
                position = 0
                continue
            delta = _signed(item.side, item.count)
            closed = min(abs(delta), abs(position)) if position * delta < 0 else 0
            total += 100 * closed - item.price_cents * item.count - item.fee_cents
            position += delta
    return total


def check_balance(baseline_cash_cents: int | None, cash_cents: int | None, explained_cents: int,
                  *, tolerance_cents: int = 0) -> Difference | None:
    """Return a ``balance_drift`` difference unless cash moved exactly as the ledger explains."""
    if cash_cents is None:
        return Difference("unverified", "balance", "exchange balance not read", False)
    if baseline_cash_cents is None:
        return None
    moved = cash_cents - baseline_cash_cents
    drift = moved - explained_cents
    if abs(drift) <= tolerance_cents:
        return None
    return Difference(
        "balance_drift", "balance",
        f"cash moved {moved}c since the last reconciliation, booked fills and settlements "
        f"explain {explained_cents}c: {drift:+d}c unexplained (tolerance {tolerance_cents}c)",
        False, cents=drift)


def unexplained(differences: Iterable[Difference]) -> tuple[Difference, ...]:
    """Return the differences that must halt trading."""
    return tuple(d for d in differences if not d.explained)


@dataclass(frozen=True)
class Acceptance:
    """An operator's acknowledgement of one difference, exactly as it was shown."""

    kind: str
    subject: str
    detail: str
    by: str
    reason: str
    ts_ms: int


def difference_key(diff: Difference) -> str:
    """Return the identity of a difference as shown (kind, subject, detail)."""
    return f"{diff.kind}|{diff.subject}|{diff.detail}"


def acceptance_refusal(diff: Difference) -> str | None:
    """Return why `diff` cannot be acknowledged, or None if it can."""
    if diff.explained:
        return f"{diff.kind} {diff.subject}: already explained (reconciliation imports it)"
    if diff.kind == "unverified":
        return (f"unverified {diff.subject}: could not be verified, so it cannot be accepted "
                f"({diff.detail})")
    return None


def apply_acceptances(differences: Iterable[Difference],
                      accepted: Mapping[str, Acceptance]) -> tuple[Difference, ...]:
    """Mark the acknowledged differences explained (action ``accepted``), naming who and why."""
    out = []
    for diff in differences:
        note = accepted.get(difference_key(diff))
        if note is None or acceptance_refusal(diff) is not None:
            out.append(diff)
            continue
        out.append(Difference(diff.kind, diff.subject,
                              f"{diff.detail} [accepted by {note.by}: {note.reason}]", True,
                              "accepted", diff.cents))
    return tuple(out)
