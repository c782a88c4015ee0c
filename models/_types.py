"""Public value types of the matching engine (re-exported by ``models.matching``).

Invariant: everything here is a frozen dataclass or a constant; the engine hands out only these, so
no caller can reach its mutable state. Money is integer cents, counts whole contracts, times ms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TypeVar

from models.fees import FeeSchedule

__all__ = [
    "MarketSpec",
    "MarketState",
    "OrderRequest",
    "Order",
    "Fill",
    "Trade",
    "Position",
    "Settlement",
    "BookDelta",
    "Lifecycle",
    "GroupEvent",
    "BookView",
    "Outcome",
    "EngineReject",
    "REJECT_CODES",
    "TIME_IN_FORCE",
    "STP_TYPES",
    "UPDATE_REASONS",
    "GROUP_WINDOW_MS",
]

TIME_IN_FORCE = ("good_till_canceled", "immediate_or_cancel", "fill_or_kill")
STP_TYPES = ("taker_at_cross", "maker")
UPDATE_REASONS = (
    "Trade", "Amend", "Decrease", "Cancel", "ExpiryCancel", "CloseCancel", "SelfTradeCancel",
    "PostOnlyCrossCancel", "ReduceOnlyCancel", "OrderGroupCancel", "IocCancel",
)
REJECT_CODES = (
    "market_not_found", "market_closed", "invalid_price", "invalid_count", "invalid_parameters",
    "insufficient_balance", "order_already_exists", "order_not_found", "reduce_only_requires_ioc",
    "expiration_requires_gtc", "order_group_not_found", "order_group_limit_exceeded",
    "account_not_found", "fill_or_kill_insufficient_volume", "buy_max_cost_exceeded",
)
GROUP_WINDOW_MS = 15_000


class EngineReject(Exception):
    """A refused call; ``code`` is Kalshi-like, ``message`` names the field and value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class MarketSpec:
    ticker: str
    event_ticker: str
    series_ticker: str
    open_ts_ms: int
    close_ts_ms: int
    fee: FeeSchedule = field(default_factory=FeeSchedule)
    tick_cents: int = 1
    min_price_cents: int = 1
    max_price_cents: int = 99


@dataclass(frozen=True)
class MarketState:
    spec: MarketSpec
    status: str  # initialized | active | closed | determined | finalized
    result: str  # "yes" | "no" | ""
    last_price_cents: int | None
    volume: int
    open_interest: int


@dataclass(frozen=True)
class OrderRequest:
    account_id: str
    ticker: str
    side: str  # "bid" buys YES at price_cents; "ask" sells YES == buys NO at 100 - price_cents
    price_cents: int
    count: int
    time_in_force: str
    stp: str = "taker_at_cross"
    client_order_id: str | None = None
    expiration_ts_ms: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    buy_max_cost_cents: int | None = None
    order_group_id: str | None = None


@dataclass(frozen=True)
class Order:
    order_id: str
    account_id: str
    client_order_id: str
    ticker: str
    side: str
    price_cents: int
    initial_count: int
    fill_count: int
    remaining_count: int
    status: str  # resting | canceled | executed
    time_in_force: str
    stp: str
    post_only: bool
    created_ts_ms: int
    last_update_ts_ms: int
    expiration_ts_ms: int | None
    taker_fill_cost_cents: int
    maker_fill_cost_cents: int
    taker_fees_cents: int
    maker_fees_cents: int
    order_group_id: str | None
    last_update_reason: str | None


@dataclass(frozen=True)
class Fill:
    fill_id: str
    trade_id: str
    order_id: str
    account_id: str
    ticker: str
    side: str
    yes_price_cents: int
    count: int
    is_taker: bool
    fee_cents: int
    ts_ms: int
    post_position: int


@dataclass(frozen=True)
class Trade:
    trade_id: str
    ticker: str
    count: int
    yes_price_cents: int
    taker_side: str  # "yes" | "no"
    ts_ms: int


@dataclass(frozen=True)
class Position:
    account_id: str
    ticker: str
    position: int
    market_exposure_cents: int
    realized_pnl_cents: int
    fees_paid_cents: int
    total_traded_cents: int


@dataclass(frozen=True)
class Settlement:
    account_id: str
    ticker: str
    event_ticker: str
    result: str
    yes_count: int
    no_count: int
    yes_total_cost_cents: int
    no_total_cost_cents: int
    revenue_cents: int
    fee_cents: int
    ts_ms: int


@dataclass(frozen=True)
class BookDelta:
    ticker: str
    side: str  # "yes" | "no"
    price_cents: int
    delta: int


@dataclass(frozen=True)
class Lifecycle:
    ticker: str
    event_type: str
    ts_ms: int
    result: str | None = None


@dataclass(frozen=True)
class GroupEvent:
    order_group_id: str
    account_id: str
    event_type: str
    ts_ms: int
    contracts_limit: int


@dataclass(frozen=True)
class BookView:
    ticker: str
    yes: tuple[tuple[int, int], ...]
    no: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Outcome:
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    book_deltas: list[BookDelta] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)
    lifecycle: list[Lifecycle] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)
    group_events: list[GroupEvent] = field(default_factory=list)



__all__ += ["new_order", "new_fill", "new_trade", "new_delta", "new_position", "new_outcome"]

_T = TypeVar("_T")


def _builder(cls: type[_T]) -> Callable[..., _T]:
    # Build a frozen dataclass instance without its generated __init__ (one object.__setattr__
    # per field): 4-5x faster for the snapshots made on every fill. Same fields, same equality.
    # Like dataclasses itself, the builder is generated source: one positional parameter and
    # one instance-dict store per field (a wrong number of values is a TypeError), which is
    # twice as fast as updating the dict from a zip of names and values.
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    if not all(n.isidentifier() and not n.startswith("_b_") for n in names):
        raise TypeError(f"{cls.__name__}: field names unsuitable for a generated builder")
    body = "".join(f"    _b_d[{n!r}] = {n}\n" for n in names)
    source = (f"def build({', '.join(names)}):\n    _b_obj = _b_new(_b_cls)\n"
              f"    _b_d = _b_obj.__dict__\n{body}    return _b_obj\n")
    namespace: dict[str, object] = {"_b_new": object.__new__, "_b_cls": cls}
    exec(source, namespace)  # noqa: S102 - source built from the dataclass's own field names
    build = namespace["build"]
    build.__qualname__ = f"new_{cls.__name__.lower()}"  # type: ignore[attr-defined]
    return build  # type: ignore[return-value]


new_order = _builder(Order)
new_fill = _builder(Fill)
new_trade = _builder(Trade)
new_delta = _builder(BookDelta)
new_position = _builder(Position)
new_outcome = _builder(Outcome)
