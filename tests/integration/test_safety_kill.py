"""Kill switch and resume: from the CLI and from a flow run; both cancel everything and block
new orders until an explicit, recorded resume, which is refused while a breaker trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from tasks.ledger_store import active_halts, record_start_of_day_equity
from tasks.safety import ResumeRefused, list_halts
from tests.integration.safety_harness import Desk, desk, safety_cli, safety_venue  # noqa: F401

runner = CliRunner()


def test_cli_kill_cancels_everything_and_blocks_until_resume(desk: Desk) -> None:  # noqa: F811
    # Arrange
    market = desk.venue.market()
    assert desk.trade([(market, "yes", 10, 5), (market, "no", 10, 5)]).count("place",
                                                                             "resting") == 2
    app = safety_cli()

    # Act: kill
    killed = runner.invoke(app, ["kill", "--reason", "operator test"])

    # Assert: nothing rests, the halt is recorded with the reason, new orders are refused
    assert killed.exit_code == 0, killed.output
    assert json.loads(killed.output.splitlines()[-1])["canceled"] == 2
    assert desk.resting() == []
    halts = list_halts(desk.engine)
    assert len(halts) == 1
    assert halts[0].reason == "kill switch: operator test"
    assert halts[0].set_by.startswith("cli")
    blocked = desk.trade([(market, "yes", 11, 5)])
    assert blocked.count("place", "rejected") == 1
    assert desk.resting() == []
    status = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert status["halted"] is True
    assert status["halts"][0]["reason"].endswith("operator test")
    assert {b["name"] for b in status["breakers"]} >= {"daily_loss", "error_rate", "fill_rate",
                                                       "link"}
    assert "kill switch" in json.dumps(desk.webhook.bodies)
    text = runner.invoke(app, ["status"]).output
    assert text.startswith("HALTED")
    assert "kill switch: operator test" in text
    assert "today's P&L:" in text

    # Act: resume needs a reason, then works
    assert runner.invoke(app, ["resume"]).exit_code == 2
    resumed = runner.invoke(app, ["resume", "--reason", "checked the book"])
    assert resumed.exit_code == 0, resumed.output
    assert active_halts(desk.engine) == []
    assert desk.trade([(market, "yes", 12, 5)]).count("place", "resting") == 1


def test_cli_resume_refused_while_daily_loss_still_breached(desk: Desk) -> None:  # noqa: F811
    # Arrange: today started at $2,000 but the account holds $1,000 (a 50 % loss)
    now = datetime.now(UTC)
    record_start_of_day_equity(desk.engine, now.date(), 200_000, as_of=now)
    app = safety_cli()
    assert runner.invoke(app, ["kill", "--reason", "loss"]).exit_code == 0

    # Act
    refused = runner.invoke(app, ["resume", "--reason", "try anyway"])

    # Assert
    assert refused.exit_code == 1
    assert "daily_loss" in json.loads(refused.output.splitlines()[-1])["error"]
    assert len(active_halts(desk.engine)) == 1


def test_kill_switch_flow_run_cancels_and_resume_flow_clears(desk: Desk,  # noqa: F811
                                                              prefect_harness) -> None:
    from flows.kill import kill_switch, resume

    market = desk.venue.market()
    desk.trade([(market, "yes", 10, 5)])

    result = kill_switch(reason="from the UI", by="deployment")

    assert result["canceled"]
    assert result["still_resting"] == []
    assert desk.resting() == []
    assert desk.trade([(market, "yes", 11, 5)]).count("place", "rejected") == 1
    with pytest.raises(ResumeRefused):
        resume(reason="", by="deployment")
    assert resume(reason="all clear", by="deployment") == [result["halt_id"]]
    assert desk.trade([(market, "yes", 12, 5)]).count("place", "resting") == 1


def test_guard_and_reconcile_flow_runs_leave_artifacts(desk: Desk,  # noqa: F811
                                                       prefect_harness) -> None:
    import httpx
    from prefect.settings import PREFECT_API_URL

    from flows.guard import guard
    from flows.reconcile import reconcile

    market = desk.venue.market()
    desk.trade([(market, "yes", 10, 5)])

    checked = reconcile()
    guarded = guard(heartbeats={}, feeds={})

    assert checked["verdict"] == "clean"
    assert checked["complete"] is True
    assert guarded["tripped"] == []
    assert guarded["equity_cents"] == 100_000
    latest = {key: httpx.get(f"{PREFECT_API_URL.value()}/artifacts/{key}/latest").json()
              for key in ("guard-breakers", "reconcile-summary")}
    assert latest["guard-breakers"]["type"] == "table"
    assert "daily_loss" in str(latest["guard-breakers"]["data"])
    assert "clean" in str(latest["reconcile-summary"]["data"])
