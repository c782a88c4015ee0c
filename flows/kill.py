"""Flows: the kill switch and the explicit resume.

Invariant: ``kill_switch`` halts first and then cancels everything (the halt blocks the gateway
even when the exchange cannot be reached); ``resume`` needs a reason, is recorded, and is refused
while any breaker still trips or, after a drift halt, while a fresh reconciliation still finds an
unexplained difference (the run fails naming each); ``accept_drift`` acknowledges them, recorded.
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
def kill_switch(reason: str = "kill switch", by: str = "deployment",
                strategy: str | None = None) -> dict[str, Any]:
    """Halt trading and cancel every resting order; with `strategy`, cancel only that strategy's
    orders (one call to its exchange order group). Either way the halt blocks every new order."""
    result = kill_task(reason, by, datetime.now(UTC), strategy)
    get_run_logger().warning("kill switch by %s (%s)%s: halt #%s, %d cancelled", by, reason,
                             f" [strategy {strategy}]" if strategy else "", result["halt_id"],
                             len(result["canceled"]))
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
    accept_drift: bool = False,
) -> list[int]:
    """Clear every halt if no breaker trips and, after a drift halt, a fresh reconciliation finds
    nothing unexplained (`accept_drift` acknowledges what it finds, recorded); otherwise the run
    fails naming each breaker or difference."""
    cleared = resume_task(reason, by, datetime.now(UTC),
                          dict(DEFAULT_HEARTBEATS if heartbeats is None else heartbeats),
                          dict(DEFAULT_FEEDS if feeds is None else feeds), dict(limits or {}),
                          accept_drift)
    get_run_logger().warning("resume by %s (%s): cleared halts %s", by, reason, cleared)
    return cleared
