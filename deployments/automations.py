"""Prefect automations of the safety layer, created idempotently by code (``eventdesk up``).

Invariant: ``ensure_automations`` leaves exactly one automation per name below, matching the
spec built from the given deployment ids: missing ones are created, drifted ones updated,
duplicates (same name) deleted. Running it twice changes nothing.

- ``eventdesk: trading crashed -> kill switch``: any flow run of a trading deployment crashes
  -> run the kill-switch deployment (halt + cancel everything).
- ``eventdesk: trading failing -> kill switch``: 3 failed runs of trading deployments within 30
  minutes -> run the kill-switch deployment.
- ``eventdesk: trading heartbeat missing -> cancel-all``: no completed run of a trading
  deployment for ``heartbeat_s`` (Prefect's own flow-run events are the heartbeat; a
  ``eventdesk.heartbeat`` event emitted by a flow counts as well) -> run the cancel-all
  deployment. Proactive triggers need the events of the OSS server's event pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final
from uuid import UUID

from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

__all__ = [
    "CANCEL_ALL",
    "KILL_SWITCH",
    "HEARTBEAT_EVENT",
    "automation_specs",
    "ensure_automations",
]

KILL_SWITCH: Final = "kill-switch"
CANCEL_ALL: Final = "cancel-all"
HEARTBEAT_EVENT: Final = "eventdesk.heartbeat"
_PREFIX: Final = "eventdesk: "


def _related(trading: list[UUID]) -> dict[str, Any]:
    return {"prefect.resource.id": [f"prefect.deployment.{d}" for d in trading],
            "prefect.resource.role": "deployment"}


def automation_specs(deployment_ids: Mapping[str, UUID], *, failures: int = 3,
                     failure_window_s: float = 1800.0,
                     heartbeat_s: float = 1800.0) -> list[AutomationCore]:
    """Build the automations: `deployment_ids` maps deployment names to ids; it must hold
    ``kill-switch`` and ``cancel-all``; every other entry is a trading deployment."""
    missing = [n for n in (KILL_SWITCH, CANCEL_ALL) if n not in deployment_ids]
    if missing:
        raise ValueError(f"deployment_ids: missing {missing} (got {sorted(deployment_ids)})")
    trading = sorted((d for n, d in deployment_ids.items() if n not in (KILL_SWITCH, CANCEL_ALL)),
                     key=str)
    if not trading:
        raise ValueError("deployment_ids: no trading deployment to watch")
    if failures < 1 or failure_window_s <= 0 or heartbeat_s <= 0:
        raise ValueError(f"failures/failure_window_s/heartbeat_s must be positive (got "
                         f"{failures}, {failure_window_s}, {heartbeat_s})")
    kill = deployment_ids[KILL_SWITCH]
    cancel = deployment_ids[CANCEL_ALL]
    return [
        AutomationCore(
            name=f"{_PREFIX}trading crashed -> kill switch",
            description="A trading flow run crashed: halt trading and cancel every order.",
            trigger=EventTrigger(expect={"prefect.flow-run.Crashed"},
                                 match_related=_related(trading), posture=Posture.Reactive,
                                 threshold=1, within=timedelta(0)),
            actions=[RunDeployment(source="selected", deployment_id=kill, job_variables=None,
                                   parameters={"reason": "trading flow crashed",
                                               "by": "automation"})],
        ),
        AutomationCore(
            name=f"{_PREFIX}trading failing -> kill switch",
            description=f"{failures} failed trading runs within {failure_window_s:.0f}s.",
            trigger=EventTrigger(expect={"prefect.flow-run.Failed"},
                                 match_related=_related(trading), posture=Posture.Reactive,
                                 threshold=failures,
                                 within=timedelta(seconds=failure_window_s)),
            actions=[RunDeployment(source="selected", deployment_id=kill, job_variables=None,
                                   parameters={"reason": f"{failures} trading runs failed",
                                               "by": "automation"})],
        ),
        AutomationCore(
            name=f"{_PREFIX}trading heartbeat missing -> cancel-all",
            description=f"No completed trading run or heartbeat for {heartbeat_s:.0f}s.",
            trigger=EventTrigger(expect={"prefect.flow-run.Completed", HEARTBEAT_EVENT},
                                 match_related=_related(trading), posture=Posture.Proactive,
                                 threshold=1, within=timedelta(seconds=heartbeat_s)),
            actions=[RunDeployment(source="selected", deployment_id=cancel, job_variables=None,
                                   parameters={"reason": "trading heartbeat missing",
                                               "by": "automation"})],
        ),
    ]


def _same(existing: Any, spec: AutomationCore) -> bool:
    fields = ("description", "enabled", "trigger", "actions")
    return all(getattr(existing, f) == getattr(spec, f) for f in fields)


def ensure_automations(client: Any, deployment_ids: Mapping[str, UUID],
                       **options: Any) -> dict[str, str]:
    """Create or update the automations on `client` (a sync Prefect client); return
    name -> "created" | "updated" | "unchanged"."""
    result: dict[str, str] = {}
    for spec in automation_specs(deployment_ids, **options):
        found = client.read_automations_by_name(spec.name)
        for extra in found[1:]:
            client.delete_automation(extra.id)
        if not found:
            client.create_automation(spec)
            result[spec.name] = "created"
        elif _same(found[0], spec):
            result[spec.name] = "unchanged"
        else:
            client.update_automation(found[0].id, spec)
            result[spec.name] = "updated"
    return result
