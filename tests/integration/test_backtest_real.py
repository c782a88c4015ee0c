"""Backtest on a small real subset: the CLI prints the metrics and writes the report; the flow
publishes its artifacts. Needs the real data directory (skips with the reason otherwise)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from deployments.cli_backtest import register

pytestmark = pytest.mark.shared_data

METRIC_LINES = ("total P&L", "daily Sharpe", "win rate", "average edge per contract",
                "max drawdown", "limit orders / fill rate", "turnover", "fees")


@pytest.fixture(scope="module")
def archive_file(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tasks.backtest import open_view

    path = tmp_path_factory.mktemp("archive") / "forecast_archive.sqlite"
    open_view(shared_data, path)  # import once; later opens only add nothing new
    return path


def app() -> typer.Typer:
    root = typer.Typer()
    register(root)

    @root.command()
    def other() -> None:  # a second command keeps `backtest` a sub-command, as in the real CLI
        """Placeholder."""

    return root


def test_cli_backtest_real_subset_prints_metrics_and_writes_report(
        shared_data: Path, archive_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(app(), [
        "backtest", "--data-dir", str(shared_data), "--series", "KXHIGHNY",
        "--from", "2025-03-01", "--to", "2025-03-21", "--folds", "2",
        "--out", str(out), "--archive", str(archive_file), "--no-archive-refresh"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    for name in METRIC_LINES:
        assert any(line.strip().startswith(name) for line in lines), name
    assert any(line.startswith("walk-forward") for line in lines)
    assert any("no_result" in line or "skipped_decision" in line for line in lines)
    record = json.loads(lines[-1])
    assert {"total_pnl_cents", "sharpe_daily_annualised", "win_rate", "avg_edge_cents",
            "max_drawdown_cents", "limit_fill_rate", "turnover_cents", "fees_cents",
            "pnl_by_edge_bucket", "pnl_by_series", "report"} <= set(record)
    assert isinstance(record["total_pnl_cents"], int)
    assert record["events_replayed"] > 1000
    for name in ("report.html", "equity.png", "reliability.png", "edge_buckets.png",
                 "metrics.json"):
        assert (out / name).stat().st_size > 500, name
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Walk-forward" in html
    assert "Excluded or unusable input" in html
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # money is the engine's: final cash - start = total P&L of the fills
    assert saved["final_cash_cents"] - saved["starting_cash_cents"] == \
        saved["metrics"]["total_pnl_cents"] == record["total_pnl_cents"]
    assert len(saved["walk_forward"]["folds"]) == 1


def test_cli_backtest_bad_arguments_exit_2_naming_option(shared_data: Path,
                                                         tmp_path: Path) -> None:
    runner = CliRunner()
    cases = [(["--from", "2025-03-10", "--to", "2025-03-01"], "--from 2025-03-10 is after"),
             (["--from", "March"], "--from 'March' is not a YYYY-MM-DD date"),
             (["--series", "KXHIGHXYZ"], "--series 'KXHIGHXYZ'"),
             (["--strategy", "momentum"], "--strategy 'momentum'"),
             (["--decision-time", "25:00"], "--decision-time '25:00'"),
             (["--folds", "1"], "--folds 1"),
             (["--spread-cost-cents", "-1"], "spread_cost_cents: expected an int >= 0")]
    for extra, message in cases:
        result = runner.invoke(app(), ["backtest", "--data-dir", str(shared_data), "--out",
                                       str(tmp_path / "x"), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output, (extra, result.output)
        assert not (tmp_path / "x").exists()


def test_backtest_flow_real_subset_publishes_artifacts(
        shared_data: Path, archive_file: Path, tmp_path: Path, prefect_harness: None) -> None:
    from prefect.client.orchestration import get_client

    from flows.backtest import backtest

    summary = backtest(data_dir=str(shared_data), out=str(tmp_path / "flow"),
                       series=["KXHIGHMIA"], since="2025-03-01", until="2025-03-10", folds=0,
                       archive=str(archive_file), refresh_archive=False)
    assert Path(summary["report"]).exists()
    assert isinstance(summary["metrics"]["total_pnl_cents"], int)
    with get_client(sync_client=True) as client:
        found = client.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": ["backtest-metrics", "backtest-report"]}},
            "limit": 10, "offset": 0, "sort": "CREATED_DESC"}).json()
    kinds = {a["key"]: a["type"] for a in found}
    assert kinds == {"backtest-metrics": "table", "backtest-report": "markdown"}
