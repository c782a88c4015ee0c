"""tasks/approval.py against a real Prefect server (the session harness): a paused run resumed
with the typed form sends the cycle as proposed; a rejection or a timeout sends nothing."""

from __future__ import annotations

import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.flow_runs import resume_flow_run
from prefect.runtime import flow_run

from models.edge import DesiredOrder
from tasks.approval import request_approval
from tasks.gateway import Want
from tasks.trading import CycleOrders

pytestmark = pytest.mark.usefixtures("prefect_harness")

AS_OF = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
CYCLE = CycleOrders(
    wants=(Want(DesiredOrder("KXHIGHNY-26NOV22-B48.5", "yes", 41, 7, "good_till_canceled",
                             1_800_000_000_000, 6, False), "KXHIGHNY-26NOV22", "Climate", 500),),
    managed=("KXHIGHNY-26NOV22-B48.5", "KXHIGHNY-26NOV22-B50.5"),
    rows=(),
)


def _run_paused(answer: dict[str, Any] | None, *, timeout_s: int = 60) -> tuple[CycleOrders, str]:
    """Run a flow that asks for approval; answer its form (None: never answer)."""
    ids: queue.Queue[str] = queue.Queue()
    results: list[Any] = []

    @flow(name="approval-under-test")
    def asks() -> CycleOrders:
        ids.put(str(flow_run.id))
        return request_approval(CYCLE, AS_OF, timeout_s=timeout_s, poll_interval_s=1,
                                approval_mode=True)

    worker = threading.Thread(target=lambda: results.append(asks()))
    worker.start()
    run_id = ids.get(timeout=60)
    state = ""
    if answer is not None:
        deadline = time.monotonic() + 60
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                state = client.read_flow_run(run_id).state.type.value  # type: ignore[union-attr]
                if state == "PAUSED":
                    break
                time.sleep(0.3)
        assert state == "PAUSED"
        resume_flow_run(run_id, run_input=answer)
    worker.join(timeout=120)
    assert not worker.is_alive()
    return results[0], state


def test_approval_approved_returns_cycle_unchanged() -> None:
    cycle, state = _run_paused({"approve": True, "approved_by": "ana", "note": "looks fine"})
    assert state == "PAUSED"
    assert cycle == CYCLE


def test_approval_rejected_sends_and_cancels_nothing() -> None:
    cycle, _ = _run_paused({"approve": False, "approved_by": "ana"})
    assert cycle.wants == ()
    assert cycle.managed == ()  # no managed markets: resting orders are not cancelled either


def test_approval_timeout_sends_nothing() -> None:
    cycle, _ = _run_paused(None, timeout_s=2)
    assert cycle.wants == ()
    assert cycle.managed == ()


def test_approval_mode_off_never_pauses() -> None:
    @flow(name="approval-off")
    def off() -> CycleOrders:
        return request_approval(CYCLE, AS_OF, approval_mode=False)

    started = time.monotonic()
    assert off() == CYCLE
    assert time.monotonic() - started < 30
