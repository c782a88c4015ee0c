"""Flows: the kill switch and the explicit resume.

Invariant: ``kill_switch`` halts first and then cancels everything (the halt blocks the gateway
even when the exchange cannot be reached); ``resume`` needs a reason, is recorded, and is refused
while any breaker still trips (the run fails with the breakers named).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger

from tasks.safety import (
    DEFAULT_FEEDS,
    DEFAULT_HEARTBEATS,
    cancel_all_task,
    kill_task,
    resume_task,
)

__all__ = ["cancel_all_orders", "kill_switch", "resume"]


@flow(name="kill-switch")
def kill_switch(reason: str = "kill switch", by: str = "deployment") -> dict[str, Any]:
    """Halt trading and cancel every resting order."""
    result = kill_task(reason, by, datetime.now(UTC))
    get_run_logger().warning("kill switch by %s (%s): halt #%s, %d cancelled", by, reason,
                             result["halt_id"], len(result["canceled"]))
    return result


@flow(name="cancel-all")
def cancel_all_orders(reason: str = "cancel-all", by: str = "deployment") -> dict[str, Any]:
    """Cancel every resting order without halting (a missing heartbeat's first response)."""
    result = cancel_all_task(f"{reason} (by {by})", datetime.now(UTC))
    get_run_logger().warning("cancel-all by %s (%s): %d cancelled, %d still resting", by, reason,
                             len(result["canceled"]), len(result["still_resting"]))
    return result


@flow(name="resume-trading")
def resume(
    reason: str,
    by: str = "deployment",
    heartbeats: dict[str, float] | None = None,
    feeds: dict[str, float] | None = None,
    limits: dict[str, Any] | None = None,
) -> list[int]:
    """Clear every halt, if no breaker trips (otherwise the run fails saying which)."""
    cleared = resume_task(reason, by, datetime.now(UTC),
                          dict(DEFAULT_HEARTBEATS if heartbeats is None else heartbeats),
                          dict(DEFAULT_FEEDS if feeds is None else feeds), dict(limits or {}))
    get_run_logger().warning("resume by %s (%s): cleared halts %s", by, reason, cleared)
    return cleared
