"""`eventdesk up` end to end: a clean data directory, free ports, real subprocesses.

The desk is started once (``tests/integration/desk_stack.py``, shared with the browser test); these
tests read it only through the Prefect REST API (with the stack's auth string), trigger a weather
trading run by hand, and finally run `eventdesk down` and check no process is left behind.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.desk_stack import Desk, acquire, live_group_members, release, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

# what issue 8 asks for, written out independently of deployments/definitions.py
EXPECTED_SCHEDULES: dict[str, tuple[str, str] | None] = {
    "trade-weather/trade-weather-paper": ("*/10 * * * *", "America/New_York"),
    "record-forecasts/record-forecasts-paper": ("7 * * * *", "UTC"),
    "reconcile/reconcile-paper": ("*/5 * * * *", "UTC"),
    "guard/guard-paper": ("* * * * *", "UTC"),
    "export-tax-year/export-tax-year-paper": ("0 6 2 1 *", "UTC"),
    "kill-switch/kill-switch-paper": None,
    "cancel-all/cancel-all-paper": None,
    "resume-trading/resume-trading-paper": None,
    "backtest/backtest-paper": None,
    "news-watcher/news-watcher-paper": None,
    # needs the real news feeds: an offline desk creates its schedule switched off
    "poll-news/poll-news-paper": None,
}
INACTIVE = {"poll-news/poll-news-paper": ("*/5 * * * *", "UTC")}
CANCEL_NEW = {"trade-weather/trade-weather-paper", "guard/guard-paper",
              "reconcile/reconcile-paper", "news-watcher/news-watcher-paper",
              "poll-news/poll-news-paper"}


@pytest.fixture(scope="session")
def desk() -> Iterator[Desk]:
    handle = acquire()
    yield handle
    release(handle)


def _deployments(api: httpx.Client) -> dict[str, dict[str, Any]]:
    flows = {f["id"]: f["name"] for f in
             api.post("/flows/filter", json={"limit": 200, "offset": 0}).json()}
    return {f"{flows[d['flow_id']]}/{d['name']}": d for d in
            api.post("/deployments/filter", json={"limit": 200, "offset": 0}).json()}


def test_stack_up_clean_dir_prints_urls_and_keeps_secrets_private(desk: Desk) -> None:
    assert f"Prefect UI      {desk.ui_url}" in desk.up_output
    assert "SIMULATED" in desk.up_output
    for name in ("stack-secrets.json", "keys/paper-private.pem"):
        mode = stat.S_IMODE((desk.data_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert desk.auth_string not in desk.up_output
    # the API refuses requests without the auth string (an open server hands out secrets)
    assert httpx.post(f"{desk.api_url}/deployments/filter", json={}).status_code == 401


def test_stack_up_every_deployment_has_its_schedule_with_time_zone(desk: Desk) -> None:
    with desk.api() as api:
        found = _deployments(api)
    assert set(found) == set(EXPECTED_SCHEDULES)
    for name, expected in EXPECTED_SCHEDULES.items():
        deployment = found[name]
        schedules = [(s["schedule"].get("cron"), s["schedule"].get("timezone"))
                     for s in deployment["schedules"] if s["active"]]
        assert schedules == ([expected] if expected else []), name
        inactive = [(s["schedule"].get("cron"), s["schedule"].get("timezone"))
                    for s in deployment["schedules"] if not s["active"]]
        assert inactive == ([INACTIVE[name]] if name in INACTIVE else []), name
        assert deployment["status"] == "READY", name
        assert "eventdesk" in deployment["tags"], name
        properties = deployment["parameter_openapi_schema"]["properties"]
        undescribed = [p for p, spec in properties.items() if not spec.get("description")]
        assert not undescribed, f"{name}: parameters without a description: {undescribed}"
    for name in CANCEL_NEW:
        assert found[name]["concurrency_options"]["collision_strategy"] == "CANCEL_NEW", name
        assert found[name]["global_concurrency_limit"]["limit"] == 1, name


def test_stack_up_creates_the_safety_automations(desk: Desk) -> None:
    with desk.api() as api:
        found = _deployments(api)
        automations = api.post("/automations/filter", json={"limit": 50, "offset": 0}).json()
    by_name = {a["name"]: a for a in automations}
    kill = found["kill-switch/kill-switch-paper"]["id"]
    cancel_all = found["cancel-all/cancel-all-paper"]["id"]
    targets = {a["name"]: {x.get("deployment_id") for x in a["actions"]} for a in automations}
    assert any(kill in t for t in targets.values()), targets
    assert any(cancel_all in t for t in targets.values()), targets
    watched = str(by_name)
    assert found["trade-weather/trade-weather-paper"]["id"] in watched


def test_stack_scheduler_creates_upcoming_runs_in_time_zone(desk: Desk) -> None:
    with desk.api() as api:
        deployment = _deployments(api)["trade-weather/trade-weather-paper"]
        runs = api.post("/flow_runs/filter", json={
            "limit": 10, "offset": 0, "sort": "EXPECTED_START_TIME_ASC",
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}).json()
    assert len(runs) >= 3
    minutes = {r["expected_start_time"][14:16] for r in runs}
    assert minutes <= {"00", "10", "20", "30", "40", "50"}, minutes
    assert all("auto-scheduled" in r["tags"] for r in runs)


def test_stack_manual_trade_run_completes_with_artifacts_and_library_logs(desk: Desk) -> None:
    run = desk.manual_trade_run()
    assert run["state"]["type"] == "COMPLETED", run["state"]
    # a manual run cancelled on collision with a scheduled one is the CANCEL_NEW limit at work
    assert all("concurrency limit" in c for c in run["collisions"]), run["collisions"]
    with desk.api() as api:
        artifacts = api.post("/artifacts/filter", json={
            "limit": 50, "offset": 0, "sort": "CREATED_DESC",
            "artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    logs = desk.run_logs(run["id"])
    decisions = [a for a in artifacts if a["key"] == "trade-weather-decisions"]
    assert decisions
    assert decisions[0]["type"] == "table"
    rows = decisions[0]["data"]
    rows = json.loads(rows) if isinstance(rows, str) else rows
    # the synthetic markets were priced from the SIMULATED forecasts, not skipped for lack of one
    priced = [r for r in rows if r.get("prob_yes") is not None]
    assert priced, rows[:3]
    assert all(r["market_ticker"].startswith("KXHIGH") for r in priced)
    names = {entry["name"] for entry in logs}
    assert "prefect.flow_runs" in names
    changes = [e for e in logs if "order changes" in e["message"]]
    assert changes, "the flow's summary line is missing"
    if " 0 order changes" not in changes[0]["message"]:  # the gateway logs every order it sends
        assert "tasks.gateway" in names, names


def test_stack_cancel_all_by_hand_logs_through_library_logger(desk: Desk) -> None:
    deployment = desk.deployment_ids()["cancel-all/cancel-all-paper"]
    with desk.api() as api:
        created = api.post(f"/deployments/{deployment}/create_flow_run",
                           json={"parameters": {"reason": "stack test", "by": "pytest"}})
    assert created.status_code == 201, created.text
    run = desk.wait_run(created.json()["id"])
    assert run["state"]["type"] == "COMPLETED", run["state"]
    logs = desk.run_logs(run["id"])
    # tasks.safety is a library logger: it reaches the run logs via PREFECT_LOGGING_EXTRA_LOGGERS
    library = [e for e in logs if e["name"] == "tasks.safety"]
    assert library, {e["name"] for e in logs}
    assert "stack test" in library[0]["message"]


def test_stack_second_up_while_running_is_refused_naming_the_stack(desk: Desk) -> None:
    result = run_cli(desk.data_dir, "up", "--offline", "--detach", timeout_s=60)
    assert result.returncode == 1
    assert "already running" in result.stderr
    assert "eventdesk down" in result.stderr
    assert desk.auth_string not in result.stderr + result.stdout


def test_stack_z_down_leaves_no_process_and_frees_ports(desk: Desk) -> None:
    # the last test of the module: the desk is stopped for everyone after it
    pids = desk.pids
    assert set(pids) == {"prefect", "exchange", "nws", "serve"}
    assert not live_group_members([]), "sanity: an empty group list matches nothing"
    assert live_group_members(list(pids.values())), "the desk's processes should be alive"
    result = desk.down()
    assert result.returncode == 0, result.stderr
    assert "stopped serve, nws, exchange, prefect" in result.stdout
    leftover = live_group_members(list(pids.values()))
    assert not leftover, f"processes left behind: {leftover}"
    assert not (desk.data_dir / "stack.json").exists()
    for port in desk.ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2.0)
    again = run_cli(desk.data_dir, "down", timeout_s=60)
    assert again.returncode == 0
    assert "no stack running" in again.stdout
