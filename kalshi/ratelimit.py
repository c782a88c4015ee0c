"""Client-side token buckets mirroring Kalshi's read and write budgets.

Invariant: over any interval the tokens granted by a bucket never exceed its capacity plus its
refill rate times the interval, so a client that acquires before every request stays inside its
tier's budget (Kalshi answers an over-budget request with 429 and no Retry-After). Acquiring
reserves tokens under a lock and then waits outside it, so concurrent threads and tasks are served
in arrival order and never oversubscribe. The clock and the sleep are injectable.

Tier budgets and costs: docs ``rate_limits.md`` (see reference/kalshi-v2-contract.md section 11).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Bucket",
    "TierBudget",
    "TIER_BUDGETS",
    "DEFAULT_COST",
    "TokenBucket",
    "RateLimiter",
    "endpoint_cost",
    "bucket_for",
]

Bucket = Literal["read", "write"]
DEFAULT_COST = 10


@dataclass(frozen=True)
class TierBudget:
    """Refill rates (tokens/s) and capacities (tokens) of one tier's read and write buckets."""

    read_rate: int
    write_rate: int
    read_capacity: int
    write_capacity: int


def _budget(read: int, write: int, *, read_seconds: int, write_seconds: int) -> TierBudget:
    return TierBudget(read, write, read * read_seconds, write * write_seconds)


# Capacity: 2 s of budget for Basic/Advanced read and every write bucket above Basic; 1 s otherwise.
TIER_BUDGETS: dict[str, TierBudget] = {
    "basic": _budget(200, 100, read_seconds=2, write_seconds=1),
    "advanced": _budget(300, 300, read_seconds=2, write_seconds=2),
    "expert": _budget(600, 600, read_seconds=1, write_seconds=2),
    "premier": _budget(1000, 1000, read_seconds=1, write_seconds=2),
    "paragon": _budget(2000, 2000, read_seconds=1, write_seconds=2),
    "prime": _budget(4000, 4000, read_seconds=1, write_seconds=2),
    "prestige": _budget(10000, 8000, read_seconds=1, write_seconds=2),
}

_ORDERS = "/portfolio/events/orders"


def endpoint_cost(method: str, path: str, *, items: int = 1) -> int:
    """Return the documented token cost of one request (``path`` relative to /trade-api/v2)."""
    method = method.upper()
    path = path.split("?", 1)[0].rstrip("/")
    if path == f"{_ORDERS}/batched":
        if items < 1:
            raise ValueError(f"items: a batch needs at least one order, got {items}")
        return (10 if method == "POST" else 2) * items
    if method == "DELETE" and path.startswith(_ORDERS):
        return 2  # single cancel and cancel-all
    if method == "GET" and path.startswith("/portfolio/orders/") and path.count("/") == 3:
        return 2  # GET /portfolio/orders/{order_id}
    return DEFAULT_COST


def bucket_for(method: str, path: str) -> Bucket:
    """Return which budget a request draws on: order and order-group mutations are writes."""
    if method.upper() == "GET":
        return "read"
    if path.startswith(_ORDERS) or path.startswith("/portfolio/order_groups"):
        return "write"
    return "read"


class TokenBucket:
    """A thread-safe token bucket with reservation: ``reserve`` returns how long to wait."""

    def __init__(
        self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError(f"rate and capacity must be positive, got {rate}, {capacity}")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = float(capacity)
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self, cost: float) -> float:
        """Take ``cost`` tokens now (possibly going into debt) and return the seconds to wait."""
        if cost > self.capacity:
            raise ValueError(f"cost {cost} exceeds the bucket capacity {self.capacity}")
        if cost <= 0:
            raise ValueError(f"cost must be positive, got {cost}")
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= cost
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def available(self) -> float:
        """Tokens available now (negative while reservations are outstanding)."""
        with self._lock:
            now = self._clock()
            return min(self.capacity, self._tokens + (now - self._stamp) * self.rate)


class RateLimiter:
    """The read and write buckets of one API key; ``acquire`` blocks, ``acquire_async`` awaits."""

    def __init__(
        self,
        tier: str = "basic",
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        budget: TierBudget | None = None,
    ) -> None:
        if budget is None:
            if tier not in TIER_BUDGETS:
                known = list(TIER_BUDGETS)
                raise ValueError(f"tier: unknown Kalshi tier {tier!r}, expected one of {known}")
            budget = TIER_BUDGETS[tier]
        self.budget = budget
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {
            "read": TokenBucket(budget.read_rate, budget.read_capacity, clock=clock),
            "write": TokenBucket(budget.write_rate, budget.write_capacity, clock=clock),
        }

    def bucket(self, name: Bucket) -> TokenBucket:
        """The named bucket."""
        return self._buckets[name]

    def acquire(self, bucket: Bucket, cost: int = DEFAULT_COST) -> float:
        """Wait until ``cost`` tokens are granted from ``bucket``; return the seconds waited."""
        wait = self._buckets[bucket].reserve(cost)
        if wait > 0:
            self._sleep(wait)
        return wait

    async def acquire_async(self, bucket: Bucket, cost: int = DEFAULT_COST) -> float:
        """Like ``acquire`` but yields to the event loop while waiting."""
        wait = self._buckets[bucket].reserve(cost)
        if wait > 0:
            await asyncio.sleep(wait)
        return wait
