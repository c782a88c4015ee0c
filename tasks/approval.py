"""Approval mode: a person approves a trading cycle's proposed orders before they are sent.

Invariant: with ``Settings.approval_mode`` on, a cycle that wants orders pauses its flow run
(Prefect ``pause_flow_run(wait_for_input=...)``) with the proposed orders shown in the UI's typed
resume form, and returns the cycle unchanged only when someone resumes it with ``approve=true``.
A rejection or a timeout returns an EMPTY cycle (no wants and no managed markets), so the gateway
sends, amends and cancels nothing; it never guesses. Every request and answer is recorded as a
markdown artifact (``approval-request``) and in the run logs, with who answered.

The trading flow calls it between deciding and sending:
``cycle = request_approval(cycle, as_of)`` just before ``place_orders(cycle, ...)``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from tasks.settings import load_settings
from tasks.trading import CycleOrders

__all__ = ["DEFAULT_TIMEOUT_S", "OrderApproval", "proposed_orders_markdown", "request_approval"]

DEFAULT_TIMEOUT_S = 300  # shorter than the 10-minute cycle: a stale proposal is never sent


class OrderApproval(RunInput):
    """The resume form: approve (or not) the orders listed in its description."""

    approve: bool = Field(default=False, description="Send exactly the orders listed above.")
    approved_by: str = Field(default="", description="Your name, recorded with the decision.")
    note: str = Field(default="", description="Optional note kept in the audit trail.")


def proposed_orders_markdown(cycle: CycleOrders, as_of: datetime) -> str:
    """Return the proposed orders as a markdown table (the form's description and artifact)."""
    lines = [
        f"### Proposed orders at {as_of.isoformat()}",
        "",
        "| market | side | price (c) | count | edge (c/contract) | time in force |",
        "|---|---|---:|---:|---:|---|",
    ]
    for want in cycle.wants:
        o = want.order
        lines.append(f"| {o.market_ticker} | {o.side} | {o.price_cents} | {o.count} | "
                     f"{o.edge_cents} | {o.time_in_force} |")
    managed = len(cycle.managed)
    lines += ["", f"Markets managed this cycle: {managed} (orders resting on them that are not "
              "listed are cancelled or amended when approved)."]
    return "\n".join(lines)


def request_approval(cycle: CycleOrders, as_of: datetime, *,
                     timeout_s: int = DEFAULT_TIMEOUT_S, poll_interval_s: int = 2,
                     approval_mode: bool | None = None) -> CycleOrders:
    """Return ``cycle`` if approved (or approval mode is off), else a cycle that changes nothing.

    ``approval_mode`` defaults to the setting; must be called inside a flow run.
    """
    enabled = load_settings().approval_mode if approval_mode is None else approval_mode
    if not enabled or not cycle.wants:
        return cycle
    logger = get_run_logger()
    table = proposed_orders_markdown(cycle, as_of)
    create_markdown_artifact(key="approval-request", markdown=table,
                             description="Orders waiting for approval")
    logger.warning("approval mode: %d orders wait for approval (timeout %ds)",
                   len(cycle.wants), timeout_s)
    nothing = replace(cycle, wants=(), managed=())
    try:
        answer = pause_flow_run(wait_for_input=OrderApproval.with_initial_data(
            description=table, approve=False), timeout=timeout_s, poll_interval=poll_interval_s)
    except FlowPauseTimeout:
        verdict = f"not approved within {timeout_s}s: nothing sent"
        logger.warning("approval mode: %s", verdict)
        create_markdown_artifact(key="approval-request", markdown=f"{table}\n\n**{verdict}**",
                                 description="Approval timed out")
        return nothing
    who = answer.approved_by or "unnamed"
    verdict = f"{'APPROVED' if answer.approve else 'REJECTED'} by {who}"
    if answer.note:
        verdict += f" ({answer.note})"
    logger.warning("approval mode: %s", verdict)
    create_markdown_artifact(key="approval-request", markdown=f"{table}\n\n**{verdict}**",
                             description="Approval answered")
    return cycle if answer.approve else nothing
