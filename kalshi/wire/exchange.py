"""Exchange status, schedule, historical cutoff and cursor pages.

Invariant: a page without its items key, or with a cursor of the wrong type, is refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict

from kalshi.wire._base import (
    _dt,
    _fail,
    _Frozen,
    _rbool,
    _rdt,
    require_object,
)

__all__ = [
    "ExchangeStatus",
    "ExchangeSchedule",
    "HistoricalCutoff",
    "Page",
    "parse_exchange_status",
    "parse_exchange_schedule",
    "parse_historical_cutoff",
    "parse_page",
]

# --------------------------------------------------------------------------------------------
# exchange


class ExchangeStatus(_Frozen):
    """Whether the exchange and trading are active."""

    exchange_active: bool
    trading_active: bool
    exchange_estimated_resume_time: datetime | None


def parse_exchange_status(raw: Any) -> ExchangeStatus:
    """Map ``ExchangeStatus``."""
    obj = require_object(raw, "exchange status")
    ctx = "exchange_status"
    return ExchangeStatus(
        exchange_active=_rbool(obj, "exchange_active", ctx),
        trading_active=_rbool(obj, "trading_active", ctx),
        exchange_estimated_resume_time=_dt(obj, "exchange_estimated_resume_time", ctx,
                                           required=False),
    )


class ExchangeSchedule(_Frozen):
    """The trading schedule, kept as the wire's lists of objects."""

    standard_hours: tuple[dict[str, Any], ...]
    maintenance_windows: tuple[dict[str, Any], ...]


def parse_exchange_schedule(raw: Any) -> ExchangeSchedule:
    """Map ``GetExchangeScheduleResponse``."""
    obj = require_object(raw, "schedule response")
    schedule = require_object(obj.get("schedule"), "schedule")
    parts: dict[str, tuple[dict[str, Any], ...]] = {}
    for key in ("standard_hours", "maintenance_windows"):
        value = schedule.get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise _fail(f"schedule.{key}", "expected a list of objects", value)
        parts[key] = tuple(value)
    return ExchangeSchedule(**parts)


class HistoricalCutoff(_Frozen):
    """Data older than these times is served by the ``/historical`` endpoints only."""

    market_settled_ts: datetime
    trades_created_ts: datetime
    orders_updated_ts: datetime


def parse_historical_cutoff(raw: Any) -> HistoricalCutoff:
    """Map ``GetHistoricalCutoffResponse``."""
    obj = require_object(raw, "historical cutoff")
    ctx = "historical_cutoff"
    return HistoricalCutoff(
        market_settled_ts=_rdt(obj, "market_settled_ts", ctx),
        trades_created_ts=_rdt(obj, "trades_created_ts", ctx),
        orders_updated_ts=_rdt(obj, "orders_updated_ts", ctx),
    )


# --------------------------------------------------------------------------------------------
# pages


class Page(_Frozen):
    """The raw items of one page and the cursor of the next ("" = last page)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True,
                              arbitrary_types_allowed=True)

    items: tuple[Any, ...]
    cursor: str


def parse_page(raw: Any, key: str, *, cursor_required: bool = True) -> Page:
    """Split a list response into its ``key`` items and its cursor; both must be present."""
    obj = require_object(raw, f"{key} response")
    items = obj.get(key)
    if not isinstance(items, list):
        raise _fail(key, "missing required list" if items is None else "expected a list", items)
    cursor = obj.get("cursor")
    if cursor is None and not cursor_required:
        cursor = ""
    if not isinstance(cursor, str):
        raise _fail(f"{key}.cursor", "expected a string cursor", cursor)
    return Page(items=tuple(items), cursor=cursor)
