"""The ledger's tables: every decision, order, fill, settlement and risk event, declared once.

Invariants: money is integer cents in ``BigInteger`` columns; times are UTC instants stored as
integer milliseconds (``*_ts_ms``, because SQLite drops tzinfo), turned back into aware datetimes
with ``datetime_from_ms``; duplicates are impossible by construction (unique ``client_order_id``,
unique exchange order id, unique exchange fill id, one settlement per market, one start-of-day
equity per trading day). Declarations only: sessions are opened in ``tasks/``. Schema changes go
through the alembic revisions in ``tasks/migrations``.

Order status life cycle (``ORDER_TRANSITIONS``)::

    intent -> sent -> acknowledged -> resting -> executed | canceled
       |        |          |            (partial fills keep it resting)
       |        +-> unknown (timeout, crash, 5xx after send: look it up by client_order_id)
       +-> rejected (by the exchange) / canceled (never sent)

Contract direction is the *outcome* bought (``side`` "yes" or "no") and ``price_cents`` is the
price paid per contract of that outcome; a NO order at 40c is a YES ask at 60c on Kalshi's book.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import BigInteger, CheckConstraint, MetaData, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

__all__ = [
    "ACTIVE_ORDER_STATUSES",
    "ORDER_STATUSES",
    "ORDER_TRANSITIONS",
    "TERMINAL_ORDER_STATUSES",
    "DailyEquity",
    "Decision",
    "Fill",
    "Halt",
    "Heartbeat",
    "LEDGER_METADATA",
    "LedgerError",
    "LedgerModel",
    "NetPosition",
    "NewsAction",
    "NewsFeedState",
    "NewsItemRecord",
    "OrderEvent",
    "OrderGroupRecord",
    "OrderRecord",
    "Position",
    "RiskEvent",
    "Settlement",
    "check_transition",
    "datetime_from_ms",
    "ms_from_datetime",
    "net_fill",
    "settle_position",
]

ORDER_STATUSES: Final = (
    "intent",
    "sent",
    "acknowledged",
    "unknown",
    "resting",
    "canceled",
    "executed",
    "rejected",
)
# statuses whose unfilled remainder may still execute: they count as in-flight exposure
ACTIVE_ORDER_STATUSES: Final = frozenset({"intent", "sent", "acknowledged", "unknown", "resting"})
TERMINAL_ORDER_STATUSES: Final = frozenset({"canceled", "executed", "rejected"})
ORDER_TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "intent": frozenset({"sent", "unknown", "rejected", "canceled", "acknowledged", "resting",
                         "executed"}),
    "sent": frozenset({"acknowledged", "unknown", "resting", "executed", "rejected", "canceled"}),
    "unknown": frozenset({"acknowledged", "resting", "executed", "rejected", "canceled", "sent"}),
    "acknowledged": frozenset({"resting", "executed", "canceled"}),
    "resting": frozenset({"resting", "executed", "canceled"}),
    "canceled": frozenset(),
    "executed": frozenset(),
    "rejected": frozenset(),
}


# The ledger's own metadata (not SQLModel's global one, which other packages' tables share), with
# named constraints so that alembic can alter them on SQLite (batch mode) and PostgreSQL alike.
LEDGER_METADATA: Final = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class LedgerModel(SQLModel, registry=registry(metadata=LEDGER_METADATA)):
    """Base of the ledger's tables (their own metadata and registry)."""


class LedgerError(ValueError):
    """A value the ledger cannot store as given; the message names the field and the value."""


def check_transition(current: str, new: str) -> None:
    """Raise LedgerError unless an order may move from status `current` to `new`."""
    if current not in ORDER_TRANSITIONS:
        raise LedgerError(f"status: unknown order status {current!r}")
    if new not in ORDER_TRANSITIONS:
        raise LedgerError(f"status: unknown order status {new!r}")
    if new != current and new not in ORDER_TRANSITIONS[current]:
        raise LedgerError(f"status: an order cannot move from {current!r} to {new!r}")


def ms_from_datetime(value: datetime) -> int:
    """Return the UTC epoch milliseconds of an aware datetime; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise LedgerError(f"ts: naive datetime {value.isoformat()!r}; pass an aware UTC datetime")
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def datetime_from_ms(ts_ms: int) -> datetime:
    """Return the aware UTC datetime of epoch milliseconds (what ``*_ts_ms`` columns hold)."""
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int):
        raise LedgerError(f"ts_ms: expected integer milliseconds, got {ts_ms!r}")
    return datetime.fromtimestamp(ts_ms // 1000, tz=UTC).replace(microsecond=(ts_ms % 1000) * 1000)


@dataclass(frozen=True)
class NetPosition:
    """A market position as numbers: signed contracts (YES > 0), cost basis, realized P&L (cents).

    Invariant kept by ``net_fill`` and ``settle_position``: realized P&L + cost basis of what is
    still held = payouts received - money paid for contracts (fees are booked separately).
    """

    contracts: int = 0
    cost_cents: int = 0
    realized_pnl_cents: int = 0


def net_fill(position: NetPosition, side: str, price_cents: int, count: int) -> NetPosition:
    """Return `position` after buying `count` contracts of `side` at `price_cents` each.

    Kalshi nets YES against NO: buying the side opposite to the holding closes pairs, and each
    YES+NO pair is worth exactly 100c. The closed contracts' share of the cost basis is removed
    pro rata (integer floor; the remainder leaves with the last contract).
    """
    if side not in ("yes", "no"):
        raise LedgerError(f"side: expected 'yes' or 'no', got {side!r}")
    if not 0 <= price_cents <= 100:
        raise LedgerError(f"price_cents: expected 0..100, got {price_cents!r}")
    if count <= 0:
        raise LedgerError(f"count: expected > 0, got {count!r}")
    sign = 1 if side == "yes" else -1
    held = abs(position.contracts)
    if position.contracts == 0 or (position.contracts > 0) == (side == "yes"):
        return NetPosition(position.contracts + sign * count,
                           position.cost_cents + price_cents * count,
                           position.realized_pnl_cents)
    closed = min(count, held)
    removed_cost = position.cost_cents * closed // held
    opened = count - closed
    return NetPosition(
        contracts=position.contracts + sign * count,
        cost_cents=position.cost_cents - removed_cost + price_cents * opened,
        realized_pnl_cents=position.realized_pnl_cents + closed * (100 - price_cents)
        - removed_cost,
    )


def settle_position(position: NetPosition, result: str) -> tuple[NetPosition, int]:
    """Return the flat position after settlement at `result` ("yes"/"no") and the payout."""
    if result not in ("yes", "no"):
        raise LedgerError(f"result: expected 'yes' or 'no', got {result!r}")
    won = (position.contracts > 0) == (result == "yes") and position.contracts != 0
    payout = 100 * abs(position.contracts) if won else 0
    realized = position.realized_pnl_cents + payout - position.cost_cents
    return NetPosition(0, 0, realized), payout


def _cents(*, nullable: bool = False, default: int | None = None, index: bool = False) -> Any:
    # every money column is a BigInteger (sqlmodel.Field is typed Any)
    if nullable:
        return Field(default=default, sa_type=BigInteger, nullable=True, index=index)
    if default is None:
        return Field(sa_type=BigInteger, nullable=False, index=index)
    return Field(default=default, sa_type=BigInteger, nullable=False, index=index)


def _ts() -> Any:
    return Field(sa_type=BigInteger, nullable=False, index=True)


class Decision(LedgerModel, table=True):
    """One evaluation of one market: what the model said, what the book showed, what we chose."""

    __tablename__ = "decisions"

    id: int | None = Field(default=None, primary_key=True)
    strategy: str = Field(index=True)
    market_ticker: str = Field(index=True)
    event_ticker: str
    model_version: str
    model_inputs_json: str  # the model's inputs (forecast snapshot ids, parameters) as JSON text
    prob_yes: float  # a probability, not money
    yes_bid_cents: int | None = _cents(nullable=True)
    yes_ask_cents: int | None = _cents(nullable=True)
    edge_cents: int | None = _cents(nullable=True)
    action: str  # take | rest | none
    intended_side: str | None = None  # yes | no
    intended_price_cents: int | None = _cents(nullable=True)
    intended_count: int | None = None
    reason: str
    decided_ts_ms: int = _ts()


class OrderRecord(LedgerModel, table=True):
    """An order from intent to its final status; ``client_order_id`` is the idempotency key."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("count > 0", name="count_positive"),
        CheckConstraint("price_cents BETWEEN 1 AND 99", name="price_range"),
        CheckConstraint("filled_count >= 0 AND filled_count <= count", name="filled_range"),
        CheckConstraint(
            "exchange_filled_count >= 0 AND exchange_filled_count <= count",
            name="exchange_filled_range",
        ),
        CheckConstraint("side IN ('yes', 'no')", name="side"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_order_id: str = Field(unique=True, max_length=64)
    exchange_order_id: str | None = Field(default=None, unique=True)
    decision_id: int | None = Field(default=None, foreign_key="decisions.id", index=True)
    strategy: str
    market_ticker: str = Field(index=True)
    event_ticker: str = Field(index=True)
    category: str = Field(index=True)
    side: str  # the outcome bought: yes | no
    price_cents: int = _cents()
    count: int
    filled_count: int = 0  # contracts booked from fills (moves exposure to the position)
    exchange_filled_count: int = 0  # what the exchange last reported filled (acks, cancels)
    status: str = Field(default="intent", index=True)
    time_in_force: str
    expiration_ts_ms: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    created_ts_ms: int = _ts()
    updated_ts_ms: int = _ts()
    detail: str | None = None  # last exchange error or rejection reason


class OrderEvent(LedgerModel, table=True):
    """One status change of one order (the trail ``eventdesk trace`` prints)."""

    __tablename__ = "order_events"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    status: str
    detail: str | None = None
    ts_ms: int = _ts()


class Fill(LedgerModel, table=True):
    """One execution reported by the exchange; the exchange's fill id makes it recordable once."""

    __tablename__ = "fills"
    __table_args__ = (CheckConstraint("count > 0", name="count_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    exchange_fill_id: str = Field(unique=True)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    client_order_id: str | None = Field(default=None, index=True)
    market_ticker: str = Field(index=True)
    side: str  # the outcome bought: yes | no
    price_cents: int = _cents()
    count: int
    fee_cents: int = _cents(default=0)
    is_taker: bool
    ts_ms: int = _ts()


class Position(LedgerModel, table=True):
    """Net holding in one market: ``contracts`` > 0 is YES, < 0 is NO (Kalshi nets the two)."""

    __tablename__ = "positions"

    market_ticker: str = Field(primary_key=True)
    event_ticker: str = Field(index=True)
    category: str = Field(index=True)
    contracts: int = 0
    cost_cents: int = _cents(default=0)  # basis of what is held
    fees_cents: int = _cents(default=0)
    realized_pnl_cents: int = _cents(default=0)  # before fees
    updated_ts_ms: int = _ts()


class Settlement(LedgerModel, table=True):
    """A market's settlement as it applied to us: result, payout, realized P&L."""

    __tablename__ = "settlements"

    id: int | None = Field(default=None, primary_key=True)
    market_ticker: str = Field(unique=True)
    result: str  # yes | no
    contracts: int  # our signed position at settlement
    revenue_cents: int = _cents()
    cost_cents: int = _cents()
    realized_pnl_cents: int = _cents()
    settled_ts_ms: int = _ts()


class RiskEvent(LedgerModel, table=True):
    """A risk-gate rejection or another limit event, recorded instead of raised."""

    __tablename__ = "risk_events"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)  # rejection | halt | clear
    limit_name: str
    market_ticker: str | None = Field(default=None, index=True)
    client_order_id: str | None = None
    reason: str
    ts_ms: int = _ts()


class Halt(LedgerModel, table=True):
    """A trading halt: active while ``cleared_ts_ms`` is null."""

    __tablename__ = "halts"

    id: int | None = Field(default=None, primary_key=True)
    reason: str
    set_by: str
    set_ts_ms: int = _ts()
    cleared_by: str | None = None
    cleared_ts_ms: int | None = Field(default=None, sa_type=BigInteger, nullable=True)


class DailyEquity(LedgerModel, table=True):
    """Account equity at the start of one trading day (the base of the daily loss limit)."""

    __tablename__ = "daily_equity"
    __table_args__ = (UniqueConstraint("trading_day"),)

    id: int | None = Field(default=None, primary_key=True)
    trading_day: str  # ISO date, e.g. "2026-11-22"
    start_equity_cents: int = _cents()
    recorded_ts_ms: int = _ts()


class Heartbeat(LedgerModel, table=True):
    """The last sign of life of one component (the watchdog's input)."""

    __tablename__ = "heartbeats"

    component: str = Field(primary_key=True)
    ts_ms: int = _ts()
    detail: str | None = None


class NewsItemRecord(LedgerModel, table=True):
    """A news item (feed entry, NWS alert, pushed item), stored once with its first-seen time."""

    __tablename__ = "news_items"
    __table_args__ = (UniqueConstraint("source", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    item_id: str
    thread_id: str = Field(index=True)  # the first alert of an Alert/Update/Cancel chain
    kind: str  # rss | atom | nws_alert | push
    message_type: str  # Alert | Update | Cancel
    title: str
    event: str
    zones: str  # UGC codes, comma-separated
    published_ts_ms: int = Field(sa_type=BigInteger, nullable=False)
    expires_ts_ms: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    first_seen_ts_ms: int = _ts()
    payload_json: str  # the normalised item as JSON


class NewsFeedState(LedgerModel, table=True):
    """Conditional-request state and health of one polled news source."""

    __tablename__ = "news_feeds"

    source: str = Field(primary_key=True)
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_poll_ts_ms: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    last_status: int | None = None
    last_error: str | None = None
    items_seen: int = 0


class NewsAction(LedgerModel, table=True):
    """What the news path did about one rule firing (or why it did nothing)."""

    __tablename__ = "news_actions"

    id: int | None = Field(default=None, primary_key=True)
    news_item_id: int = Field(index=True)
    rule_id: str
    effect: str  # refresh | shift | cancel
    series: str
    market_ticker: str | None = None
    outcome: str  # ordered | rejected | halted | thin_book | no_edge | no_model | skipped | ...
    detail: str
    client_order_id: str | None = None
    latency_ms: int | None = None  # item arrival -> exchange acknowledgement
    ts_ms: int = _ts()


class OrderGroupRecord(LedgerModel, table=True):
    """A strategy's exchange order group (one call cancels all of the strategy's resting orders).

    The strategy's current group is its newest row with ``retired_ts_ms`` null; a group the
    exchange no longer knows is retired (with the reason) and replaced by a new row.
    ``triggered_ts_ms`` is set while we know the group to be triggered (we triggered it, or the
    exchange rejected an order with the group error) and cleared by a reset.
    """

    __tablename__ = "order_groups"

    id: int | None = Field(default=None, primary_key=True)
    strategy: str = Field(index=True)
    order_group_id: str = Field(unique=True)
    contracts_limit: int
    created_ts_ms: int = _ts()
    triggered_ts_ms: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    retired_ts_ms: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    detail: str | None = None
