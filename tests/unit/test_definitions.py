"""deployments/definitions.py: every flow deployed with zoned schedules, described parameters and
cancel-new limits on anything that places orders (built locally, no server)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from prefect.client.schemas.objects import ConcurrencyLimitStrategy

from deployments.definitions import SPECS, build_deployments, deployment_names


@pytest.fixture(scope="module")
def deployments():  # type: ignore[no-untyped-def]
    return {d.name: d for d in build_deployments("paper")}


def test_definitions_every_flow_parameter_described_in_run_form(deployments) -> None:  # type: ignore[no-untyped-def]
    for spec in SPECS:
        signature = set(inspect.signature(spec.flow.fn).parameters)
        assert set(spec.descriptions) == signature, spec.name
        properties = deployments[f"{spec.name}-paper"]._parameter_openapi_schema.properties
        for name in signature:
            assert properties[name]["description"] == spec.descriptions[name]


def test_definitions_schedules_all_carry_a_time_zone(deployments) -> None:  # type: ignore[no-untyped-def]
    scheduled = 0
    for deployment in deployments.values():
        for schedule in deployment.schedules:
            assert schedule.schedule.timezone, deployment.name
            scheduled += 1
    assert scheduled >= 6


def test_definitions_order_placing_deployments_cancel_new(deployments) -> None:  # type: ignore[no-untyped-def]
    placing = [d for d in deployments.values() if "places-orders" in d.tags]
    assert {d.name for d in placing} >= {"trade-weather-paper", "guard-paper",
                                         "kill-switch-paper", "news-watcher-paper"}
    for deployment in placing:
        assert deployment.concurrency_limit == 1, deployment.name
        strategy = deployment.concurrency_options.collision_strategy
        # a second kill or cancel-all must still run: those queue, everything else cancels new
        queued = {"kill-switch-paper", "cancel-all-paper"}
        expected = (ConcurrencyLimitStrategy.ENQUEUE if deployment.name in queued
                    else ConcurrencyLimitStrategy.CANCEL_NEW)
        assert strategy == expected, deployment.name


def test_definitions_offline_switches_off_internet_schedules_only() -> None:
    online = {d.name: [s.active for s in d.schedules] for d in build_deployments("paper")}
    offline = {d.name: [s.active for s in d.schedules]
               for d in build_deployments("paper", offline=True)}
    assert online["poll-news-paper"] == [True]
    assert offline["poll-news-paper"] == [False]
    assert offline["trade-weather-paper"] == online["trade-weather-paper"] == [True]


def test_definitions_names_match_flow_and_environment() -> None:
    names = deployment_names("demo")
    assert "trade-weather/trade-weather-demo" in names
    assert len(names) == len(set(names)) == len(SPECS)


def test_definitions_prefect_yaml_matches_served_deployments(deployments) -> None:  # type: ignore[no-untyped-def]
    import yaml

    doc = yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text())
    in_yaml = {d["name"]: d for d in doc["deployments"]}
    assert set(in_yaml) == set(deployments)
    for name, served in deployments.items():
        entry = in_yaml[name]
        module, func = entry["entrypoint"].split(":")
        assert served.entrypoint.endswith(f"{module}:{func}"), name
        assert [(s["cron"], s["timezone"]) for s in entry.get("schedules", [])] == [
            (s.schedule.cron, s.schedule.timezone) for s in served.schedules], name
        limit = entry.get("concurrency_limit")
        if served.concurrency_limit is None:
            assert limit is None, name
        else:
            assert limit == {"limit": served.concurrency_limit, "collision_strategy":
                             served.concurrency_options.collision_strategy.value}, name
        assert set(entry["tags"]) == set(served.tags), name
