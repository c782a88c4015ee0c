"""Deterministic client order ids.

Invariant: the same (strategy, market, side, decision slot, revision) always gives the same
``client_order_id`` and different inputs give different ids (a 128-bit hash prefix), so a retried
task or flow reuses its key and the exchange refuses a second copy. Ids are at most 64 characters
from ``[-A-Za-z0-9_:+=/]`` (Kalshi's FIX rule, the strictest published), here ``ed-`` + 32 hex.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from typing import Final

__all__ = [
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "CLIENT_ORDER_ID_PATTERN",
    "OrderKeyError",
    "client_order_id",
    "decision_slot",
    "trading_day_slot",
]

MAX_CLIENT_ORDER_ID_LENGTH: Final = 64
CLIENT_ORDER_ID_PATTERN: Final = re.compile(r"[-A-Za-z0-9_:+=/]{1,64}")
_PREFIX: Final = "ed-"
_SIDES: Final = frozenset({"yes", "no"})


class OrderKeyError(ValueError):
    """An input that cannot name an order; the message names the field and the value."""


def client_order_id(strategy: str, ticker: str, side: str, slot: str, revision: int = 0) -> str:
    """Return the client order id for one order of `strategy` on `ticker` in decision `slot`.

    `side` is the outcome bought ("yes" or "no"); `revision` counts replacements within one slot
    (a cancelled order's key may not be reused while the exchange still knows it).
    """
    for name, value in (("strategy", strategy), ("ticker", ticker), ("slot", slot)):
        if not isinstance(value, str) or not value or value != value.strip():
            raise OrderKeyError(f"{name}: expected a non-empty unpadded string, got {value!r}")
    if side not in _SIDES:
        raise OrderKeyError(f"side: expected 'yes' or 'no', got {side!r}")
    if isinstance(revision, bool) or not isinstance(revision, int) or revision < 0:
        raise OrderKeyError(f"revision: expected an int >= 0, got {revision!r}")
    # JSON of a list is an unambiguous encoding: no separator inside a field can fake a boundary
    canonical = json.dumps(["v1", strategy, ticker, side, slot, revision], ensure_ascii=True)
    return _PREFIX + hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


def decision_slot(as_of: datetime, interval_s: int) -> str:
    """Return the name of the scheduling slot holding `as_of`: "<start UTC ISO>/<interval>s"."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise OrderKeyError(f"as_of: naive datetime {as_of.isoformat()!r}; pass an aware datetime")
    if isinstance(interval_s, bool) or not isinstance(interval_s, int) or interval_s <= 0:
        raise OrderKeyError(f"interval_s: expected a positive int, got {interval_s!r}")
    delta = as_of - datetime(1970, 1, 1, tzinfo=UTC)
    epoch_s = delta.days * 86_400 + delta.seconds
    start = datetime.fromtimestamp(epoch_s - epoch_s % interval_s, tz=UTC)
    return f"{start.strftime('%Y-%m-%dT%H:%M:%SZ')}/{interval_s}s"


def trading_day_slot(day: date) -> str:
    """Return the slot name of a whole trading day: "day:2026-11-22"."""
    if isinstance(day, datetime) or not isinstance(day, date):
        raise OrderKeyError(f"day: expected a date, got {day!r}")
    return f"day:{day.isoformat()}"
