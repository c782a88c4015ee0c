"""Flow: reconcile the exchange account with the ledger (every 5 minutes and on demand).

Invariant: the flow only composes ``tasks.reconcile``: explained differences are imported,
unexplained or unverifiable ones halt trading and alert; it never fixes the ledger from an
incomplete view. Every run leaves a table artifact of the differences and a summary.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.reconcile import reconcile_task

__all__ = ["reconcile"]


@flow(name="reconcile")
def reconcile(as_of: datetime | None = None) -> dict[str, Any]:
    """Pull orders, fills, positions, settlements and balance; compare, import, classify.

    A drift it halts on is cleared by ``eventdesk resume`` once it is gone, or accepted there
    with a recorded reason (``--accept-drift``); this flow never accepts one by itself."""
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    report = reconcile_task(as_of)
    rows = report.as_rows()
    if rows:
        create_table_artifact(table=rows, key="reconcile-differences",
                              description=f"Reconciliation at {as_of.isoformat()}")
    verdict = ("INCOMPLETE: halted, nothing imported" if not report.complete
               else "UNEXPLAINED DRIFT: halted" if report.unexplained else "clean")
    create_markdown_artifact(
        key="reconcile-summary",
        markdown=(f"# Reconciliation {as_of.isoformat()}\n\n**{verdict}**\n\n"
                  f"- differences: {len(report.differences)}\n"
                  f"- unexplained: {len(report.unexplained)}\n"
                  f"- applied: {len(report.applied)}\n"
                  f"- remaining after import: {len(report.remaining)}\n"
                  f"- halt: {report.halt_id}\n"),
        description="Reconciliation result")
    get_run_logger().info("reconcile: %s (%d differences)", verdict, len(report.differences))
    return {"as_of": as_of.isoformat(), "complete": report.complete, "verdict": verdict,
            "differences": rows, "applied": list(report.applied),
            "remaining": [d.kind + " " + d.subject for d in report.remaining],
            "halt_id": report.halt_id}
