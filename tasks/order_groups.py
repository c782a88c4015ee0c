"""Exchange order groups, one per strategy: one exchange call cancels a whole strategy.

Invariants:
- Every order the gateway sends carries its strategy's group (``strategy_group``): created on
  first use and remembered in the ledger (``order_groups``), verified at the exchange before a
  cycle places orders; a group the exchange no longer knows (404) is retired with the reason and
  replaced by a new one (both recorded), never reused.
- A group the exchange triggered (matched volume reached its contracts limit within its rolling
  15 s window, or a trigger call) rejects the strategy's new orders until reset. The gateway
  never resends such orders: it records a halt ``order-group triggered: <strategy> (...)``, so
  trading stops until an explicit resume, and resume resets the groups after clearing the halts.
- Trigger and reset are one call per group; their effect on resting orders is verified by the
  callers (``tasks.safety``) by listing what still rests at the exchange.
- Every group event (created, retired, triggered, reset) is a ``risk_events`` row with its time.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from kalshi.client import KalshiClient
from kalshi.errors import KalshiError, NotFound
from models.ledger import OrderGroupRecord, RiskEvent, datetime_from_ms, ms_from_datetime
from tasks.db import read_session, write_session

__all__ = [
    "GROUP_HALT_PREFIX",
    "GROUP_REJECT_CODES",
    "GroupActionReport",
    "StrategyGroup",
    "is_group_rejection",
    "record_group_triggered",
    "reset_groups",
    "strategy_group",
    "strategy_groups",
    "trigger_groups",
]

log = logging.getLogger(__name__)

GROUP_HALT_PREFIX: Final = "order-group triggered:"
# error codes of an order refused because its group is triggered: the paper exchange's, and the
# name Kalshi's documentation gives the state (the production code is not documented)
GROUP_REJECT_CODES: Final = frozenset({"order_group_limit_exceeded", "order_group_triggered"})
_CODE_WORD: Final = re.compile(r"[a-z_]+")


@dataclass(frozen=True)
class StrategyGroup:
    """A strategy's current exchange order group, as the ledger remembers it."""

    strategy: str
    order_group_id: str
    contracts_limit: int
    created_at: datetime
    triggered_at: datetime | None


@dataclass(frozen=True)
class GroupActionReport:
    """What a trigger or reset did: the groups acted on, one exchange call each, and errors."""

    groups: tuple[str, ...]
    calls: int
    errors: tuple[str, ...] = ()


def _group(row: OrderGroupRecord) -> StrategyGroup:
    return StrategyGroup(row.strategy, row.order_group_id, row.contracts_limit,
                         datetime_from_ms(row.created_ts_ms),
                         None if row.triggered_ts_ms is None
                         else datetime_from_ms(row.triggered_ts_ms))


def _current_rows(session: Session, strategy: str | None) -> list[OrderGroupRecord]:
    query = select(OrderGroupRecord).where(col(OrderGroupRecord.retired_ts_ms).is_(None))
    if strategy is not None:
        query = query.where(OrderGroupRecord.strategy == strategy)
    return list(session.exec(query.order_by(col(OrderGroupRecord.id))))


def strategy_groups(engine: Engine, strategy: str | None = None) -> list[StrategyGroup]:
    """Return the current (not retired) group of each strategy, or of `strategy` only."""
    with read_session(engine) as session:
        return [_group(r) for r in _current_rows(session, strategy)]


def _event(session: Session, reason: str, ts_ms: int) -> None:
    session.add(RiskEvent(kind="order_group", limit_name="order_group", reason=reason[:500],
                          ts_ms=ts_ms))


def _retire(engine: Engine, group_id: str, why: str, *, as_of: datetime) -> None:
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        row = session.exec(select(OrderGroupRecord).where(
            OrderGroupRecord.order_group_id == group_id)).one()
        if row.retired_ts_ms is not None:
            return
        row.retired_ts_ms, row.detail = ts_ms, why[:500]
        session.add(row)
        _event(session, f"group {group_id} of {row.strategy} retired: {why}", ts_ms)
    log.warning("order group %s retired: %s", group_id, why)


def _check_strategy(strategy: str) -> None:
    if not isinstance(strategy, str) or not strategy.strip():
        raise ValueError(f"strategy: a non-empty name is required (got {strategy!r})")


def strategy_group(client: KalshiClient, engine: Engine, strategy: str, *,
                   contracts_limit: int, as_of: datetime) -> str:
    """Return the exchange order group id of `strategy`, creating or replacing it as needed.

    The remembered group is checked at the exchange (one GET); a 404 retires it and a new group
    is created and recorded. A changed `contracts_limit` is applied to the existing group.
    Raises KalshiError when the exchange cannot be asked (the caller must not send ungrouped).
    """
    _check_strategy(strategy)
    if isinstance(contracts_limit, bool) or not 1 <= contracts_limit <= 1_000_000:
        raise ValueError(f"contracts_limit: must be a whole number in 1..1000000 "
                         f"(got {contracts_limit!r})")
    with read_session(engine) as session:
        rows = _current_rows(session, strategy)
    replaced: str | None = None
    if rows:
        current = rows[-1]
        try:
            client.get_order_group(current.order_group_id)
        except NotFound:
            replaced = current.order_group_id
            for row in rows:
                _retire(engine, row.order_group_id, "the exchange no longer knows it (404); "
                        "replaced", as_of=as_of)
        else:
            if current.contracts_limit != contracts_limit:
                client.update_order_group_limit(current.order_group_id, contracts_limit)
                _set_limit(engine, current.order_group_id, contracts_limit, as_of=as_of)
            return current.order_group_id
    group_id = client.create_order_group(contracts_limit)
    return _record_new(client, engine, strategy, group_id, contracts_limit, as_of=as_of,
                       replaced=replaced)


def _set_limit(engine: Engine, group_id: str, contracts_limit: int, *, as_of: datetime) -> None:
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        row = session.exec(select(OrderGroupRecord).where(
            OrderGroupRecord.order_group_id == group_id)).one()
        _event(session, f"group {group_id} of {row.strategy}: contracts limit "
                        f"{row.contracts_limit} -> {contracts_limit}", ts_ms)
        row.contracts_limit = contracts_limit
        session.add(row)


def _record_new(client: KalshiClient, engine: Engine, strategy: str, group_id: str,
                contracts_limit: int, *, as_of: datetime, replaced: str | None) -> str:
    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        raced = _current_rows(session, strategy)
        if not raced:
            session.add(OrderGroupRecord(strategy=strategy, order_group_id=group_id,
                                         contracts_limit=contracts_limit, created_ts_ms=ts_ms))
            _event(session, f"group {group_id} created for {strategy} (limit {contracts_limit}"
                            + (f", replaces {replaced})" if replaced else ")"), ts_ms)
            log.info("order group %s created for %s (limit %d)", group_id, strategy,
                     contracts_limit)
            return group_id
        winner = raced[-1].order_group_id
    # another run created the strategy's group meanwhile: use theirs, drop ours (it holds nothing)
    try:
        client.delete_order_group(group_id)
    except KalshiError as exc:
        log.warning("order group %s (unused duplicate) not deleted: %s", group_id,
                    type(exc).__name__)
    return winner


def is_group_rejection(detail: str) -> bool:
    """Return whether a rejection text carries a triggered-group error code."""
    return any(word in GROUP_REJECT_CODES for word in _CODE_WORD.findall(detail.lower()))


def record_group_triggered(engine: Engine, strategy: str, detail: str, *, as_of: datetime,
                           webhook: SecretStr | str | None = None,
                           set_by: str = "gateway") -> int | None:
    """Mark `strategy`'s group triggered and halt trading (once); return the new halt id."""
    from tasks.safety import halt_trading  # tasks.safety imports this module

    ts_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        for row in _current_rows(session, strategy):
            row.triggered_ts_ms = ts_ms
            session.add(row)
            _event(session, f"group {row.order_group_id} of {strategy} triggered at the "
                            f"exchange: {detail}", ts_ms)
    head = f"{GROUP_HALT_PREFIX} {strategy}"
    return halt_trading(engine, f"{head} ({detail}); orders of the strategy are refused until "
                        f"resume resets its group"[:500], set_by=set_by, as_of=as_of,
                        webhook=webhook, dedupe_prefix=f"{head} (")


def _act(client: KalshiClient, engine: Engine, action: str, *, as_of: datetime, why: str,
         strategy: str | None, group_id: str | None = None) -> GroupActionReport:
    # one trigger/reset call per current group; a group the exchange forgot is retired
    done: list[str] = []
    errors: list[str] = []
    calls = 0
    for group in strategy_groups(engine, strategy):
        if group_id is not None and group.order_group_id != group_id:
            continue
        calls += 1
        try:
            if action == "trigger":
                client.trigger_order_group(group.order_group_id)
            else:
                client.reset_order_group(group.order_group_id)
        except NotFound:
            _retire(engine, group.order_group_id, f"the exchange no longer knows it (404 on "
                    f"{action})", as_of=as_of)
            continue
        except KalshiError as exc:
            errors.append(f"{action} {group.order_group_id} ({group.strategy}): "
                          f"{type(exc).__name__}: {exc}")
            continue
        ts_ms = ms_from_datetime(as_of)
        with write_session(engine) as session:
            row = session.exec(select(OrderGroupRecord).where(
                OrderGroupRecord.order_group_id == group.order_group_id)).one()
            row.triggered_ts_ms = ts_ms if action == "trigger" else None
            session.add(row)
            past = "triggered" if action == "trigger" else "reset"
            _event(session, f"group {group.order_group_id} of {group.strategy} {past}: {why}",
                   ts_ms)
        done.append(group.order_group_id)
    return GroupActionReport(tuple(done), calls, tuple(errors))


def trigger_groups(client: KalshiClient, engine: Engine, *, as_of: datetime, reason: str,
                   strategy: str | None = None) -> GroupActionReport:
    """Trigger every strategy's group (or `strategy`'s): the exchange cancels their resting
    orders and refuses new ones until reset. One call per group."""
    if strategy is not None:
        _check_strategy(strategy)
    return _act(client, engine, "trigger", as_of=as_of, why=reason, strategy=strategy)


def reset_groups(client: KalshiClient, engine: Engine, *, as_of: datetime, reason: str,
                 strategy: str | None = None, group_id: str | None = None) -> GroupActionReport:
    """Reset every strategy's group (or `strategy`'s, or the one `group_id`) so its orders are
    accepted again. One call per group."""
    if strategy is not None:
        _check_strategy(strategy)
    return _act(client, engine, "reset", as_of=as_of, why=reason, strategy=strategy,
                group_id=group_id)
