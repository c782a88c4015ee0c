"""Prefect automations of the safety layer, on the session's Prefect test server."""

from __future__ import annotations

import time

import pytest

from deployments.automations import automation_specs, ensure_automations


def _deployments(client) -> dict:
    ids = {}
    for name in ("kill-switch", "cancel-all", "trade-weather"):
        flow_id = client.create_flow_from_name(name)
        ids[name] = client.create_deployment(flow_id=flow_id, name=f"{name}-test")
    return ids


def test_automation_specs_without_kill_switch_deployment_raises_naming_it() -> None:
    import uuid

    with pytest.raises(ValueError, match="kill-switch"):
        automation_specs({"cancel-all": uuid.uuid4(), "trade-weather": uuid.uuid4()})


def test_ensure_automations_is_idempotent_and_crash_runs_the_kill_switch(prefect_harness) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        ids = _deployments(client)

        first = ensure_automations(client, ids)
        second = ensure_automations(client, ids)
        changed = ensure_automations(client, ids, failures=5)

        assert set(first.values()) == {"created"}
        assert len(first) == 3
        assert set(second.values()) == {"unchanged"}
        assert sorted(changed.values()) == ["unchanged", "unchanged", "updated"]
        for name in first:
            assert len(client.read_automations_by_name(name)) == 1

        # a trading run crashes -> a kill-switch run is created by the automation
        run = client.create_flow_run_from_deployment(ids["trade-weather"])
        client.set_flow_run_state(run.id, Crashed(message="test crash"), force=True)
        deadline = time.monotonic() + 20
        kill_runs: list = []
        while not kill_runs and time.monotonic() < deadline:
            time.sleep(0.5)
            kill_runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(
                    id=DeploymentFilterId(any_=[ids["kill-switch"]])),
                sort=FlowRunSort.ID_DESC, limit=10)
        assert len(kill_runs) == 1
        assert kill_runs[0].parameters["reason"] == "trading flow crashed"


def _runs_with_reason(client, deployment_id, reason: str) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        sort=FlowRunSort.ID_DESC, limit=50)
    return [r for r in runs if r.parameters.get("reason") == reason]


def _wait_for(probe, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def test_automations_repeated_failures_and_missing_heartbeat_run_their_deployments(
        prefect_harness) -> None:
    from prefect import get_client
    from prefect.states import Completed, Failed

    with get_client(sync_client=True) as client:
        ids = _deployments(client)
        ensure_automations(client, ids, failures=3, failure_window_s=600, heartbeat_s=3600)
        kill_reason = "3 trading runs failed"
        before = len(_runs_with_reason(client, ids["kill-switch"], kill_reason))

        def fail_one() -> None:
            run = client.create_flow_run_from_deployment(ids["trade-weather"])
            client.set_flow_run_state(run.id, Failed(message="test failure"), force=True)

        # two failures stay under the threshold: no kill-switch run
        fail_one()
        fail_one()
        time.sleep(4)
        assert len(_runs_with_reason(client, ids["kill-switch"], kill_reason)) == before
        # the third failure within the window trips it
        fail_one()
        assert _wait_for(lambda: len(_runs_with_reason(client, ids["kill-switch"], kill_reason))
                         > before, 20), "no kill-switch run after the third failure"
        time.sleep(1)  # one automation, one action: a second run would show up by now
        tripped = _runs_with_reason(client, ids["kill-switch"], kill_reason)
        assert len(tripped) == before + 1
        assert tripped[0].parameters["by"] == "automation"

        # heartbeat: a completed trading run, then silence longer than the window -> cancel-all
        cancel_reason = "trading heartbeat missing"
        cancel_before = len(_runs_with_reason(client, ids["cancel-all"], cancel_reason))
        ensure_automations(client, ids, failures=3, failure_window_s=600, heartbeat_s=10)
        run = client.create_flow_run_from_deployment(ids["trade-weather"])
        client.set_flow_run_state(run.id, Completed(), force=True)
        try:
            assert _wait_for(
                lambda: len(_runs_with_reason(client, ids["cancel-all"], cancel_reason))
                > cancel_before, 45), "no cancel-all run after 45 s without a trading heartbeat"
        finally:  # back to a long window so the shared server stops firing
            ensure_automations(client, ids, failures=3, failure_window_s=600, heartbeat_s=3600)
