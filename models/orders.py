"""Diff the orders a strategy wants resting against the orders that rest at the exchange.

Invariant: after applying the returned actions, each (ticker, side) has at most one resting order
and it matches the desired price and remaining size; every resting order nobody wants is
cancelled. A missing desired order for a market means "cancel what rests there", never "leave it".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BookSide",
    "BookOrder",
    "RestingOrder",
    "Place",
    "Amend",
    "Decrease",
    "Cancel",
    "Keep",
    "OrderAction",
    "diff_orders",
]

BookSide = Literal["bid", "ask"]


@dataclass(frozen=True)
class BookOrder:
    """One order a strategy wants resting: YES-book side, price in cents, remaining contracts."""

    ticker: str
    side: BookSide
    price_cents: int
    count: int

    def __post_init__(self) -> None:
        if self.side not in ("bid", "ask"):
            raise ValueError(f"side must be 'bid' or 'ask', got {self.side!r}")
        if not 1 <= self.price_cents <= 99:
            raise ValueError(f"price_cents must be in 1..99, got {self.price_cents!r}")
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count!r}")


@dataclass(frozen=True)
class RestingOrder:
    """An order resting at the exchange, as read back (by the gateway) before diffing."""

    order_id: str
    client_order_id: str
    ticker: str
    side: BookSide
    price_cents: int
    remaining_count: int
    fill_count: int = 0


@dataclass(frozen=True)
class Place:
    desired: BookOrder


@dataclass(frozen=True)
class Amend:
    """Change price and/or grow size; ``new_total_count`` = already filled + desired remaining."""

    resting: RestingOrder
    desired: BookOrder

    @property
    def new_total_count(self) -> int:
        return self.resting.fill_count + self.desired.count


@dataclass(frozen=True)
class Decrease:
    """Shrink the remaining size at the same price (keeps queue priority)."""

    resting: RestingOrder
    reduce_to: int


@dataclass(frozen=True)
class Cancel:
    resting: RestingOrder
    reason: str


@dataclass(frozen=True)
class Keep:
    resting: RestingOrder


OrderAction = Place | Amend | Decrease | Cancel | Keep


def _closeness(resting: RestingOrder, desired: BookOrder) -> tuple[int, int]:
    # prefer an order at the desired price (queue priority), then the nearest size
    return (
        0 if resting.price_cents == desired.price_cents else 1,
        abs(resting.remaining_count - desired.count),
    )


def diff_orders(
    desired: Sequence[BookOrder], resting: Sequence[RestingOrder]
) -> list[OrderAction]:
    """Return the actions that turn ``resting`` into ``desired`` (cancels first, then changes)."""
    wanted: dict[tuple[str, BookSide], BookOrder] = {}
    for want in desired:
        key = (want.ticker, want.side)
        if key in wanted:
            raise ValueError(f"two desired orders for {want.ticker} {want.side}")
        wanted[key] = want
    live: dict[tuple[str, BookSide], list[RestingOrder]] = defaultdict(list)
    for order in resting:
        if order.remaining_count > 0:
            live[(order.ticker, order.side)].append(order)

    cancels: list[OrderAction] = []
    changes: list[OrderAction] = []
    for key in sorted(set(wanted) | set(live)):
        target = wanted.get(key)
        orders = sorted(live.get(key, []), key=lambda o: o.order_id)
        if target is None:
            cancels += [Cancel(o, "no longer desired") for o in orders]
            continue
        if not orders:
            changes.append(Place(target))
            continue
        best = min(orders, key=lambda o: _closeness(o, target))
        cancels += [Cancel(o, "duplicate resting order") for o in orders if o is not best]
        if best.price_cents == target.price_cents and best.remaining_count == target.count:
            changes.append(Keep(best))
        elif best.price_cents == target.price_cents and best.remaining_count > target.count:
            changes.append(Decrease(best, target.count))
        else:
            changes.append(Amend(best, target))
    return cancels + changes
