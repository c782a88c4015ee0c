"""Flow: the guard, every minute. Any breaker trip halts trading and cancels every resting order.

Invariant: the flow only composes; the breakers are pure (``models.breakers``), the actions are in
``tasks.safety`` (halt first, then cancel-all, verified at the exchange, then alert). Every run
leaves a table artifact with each breaker's verdict.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from tasks.safety import DEFAULT_FEEDS, DEFAULT_HEARTBEATS, guard_task

__all__ = ["guard"]


@flow(name="guard")
def guard(
    as_of: datetime | None = None,
    heartbeats: dict[str, float] | None = None,
    feeds: dict[str, float] | None = None,
    limits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate every breaker once; trip -> halt + cancel-all + alert."""
    logger = get_run_logger()
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    report = guard_task(as_of, dict(DEFAULT_HEARTBEATS if heartbeats is None else heartbeats),
                        dict(DEFAULT_FEEDS if feeds is None else feeds), dict(limits or {}))
    create_table_artifact(table=report.as_rows(), key="guard-breakers",
                          description=f"Breakers at {as_of.isoformat()}")
    for trip in report.trips:
        logger.warning("breaker %s tripped: %s", trip.name, trip.reason)
    return {
        "as_of": as_of.isoformat(),
        "tripped": [t.name for t in report.trips],
        "halt_id": report.halt_id,
        "canceled": [] if report.cancel is None else list(report.cancel.canceled),
        "still_resting": None if report.cancel is None else list(report.cancel.still_resting),
        "equity_cents": report.equity_cents,
        "start_equity_cents": report.start_equity_cents,
        "exchange_error": report.exchange_error,
        "notes": list(report.notes),
    }
