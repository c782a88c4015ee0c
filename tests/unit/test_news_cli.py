"""`eventdesk news test-rule`: which rules fire on an item file, and refusals of bad files."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from deployments.cli_news import register

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps `news` a sub-command group
        pass

    return app


def test_news_test_rule_nyc_heat_alert_shows_refresh_of_kxhighny(fixtures_dir: Path) -> None:
    result = runner.invoke(_app(), ["news", "test-rule",
                                    str(fixtures_dir / "news" / "alerts_nyc_heat.json")])
    assert result.exit_code == 0, result.output
    assert "fires heat-kxhigh: refresh the model for KXHIGHNY" in result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["items"][0]["fires"][0]["series"] == ["KXHIGHNY"]


def test_news_test_rule_oregon_alert_fires_nothing(fixtures_dir: Path) -> None:
    result = runner.invoke(_app(), ["news", "test-rule",
                                    str(fixtures_dir / "news" / "alerts_active_zone.json")])
    assert result.exit_code == 0, result.output
    assert "no rule fires" in result.output


def test_news_test_rule_custom_rules_on_fed_rss(fixtures_dir: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 4\nrules:\n  - id: fomc\n    source: fed_press_all\n"
                     "    pattern: FOMC statement\n    field: title\n    series: [KXFEDDECISION]\n"
                     "    effect: shift\n    weight: -0.5\n    ttl: 2h\n")
    result = runner.invoke(_app(), ["news", "test-rule", "--rules", str(rules),
                                    str(fixtures_dir / "news" / "fed_press_all.xml")])
    assert result.exit_code == 0, result.output
    assert "fomc: shift log-odds by -0.50 decaying over 7200s for KXFEDDECISION" in result.output
    fires = [i["fires"] for i in json.loads(result.output.strip().splitlines()[-1])["items"]]
    assert [len(f) for f in fires] == [1, 0]


def test_news_test_rule_bad_rule_file_exits_2_with_line(fixtures_dir: Path,
                                                        tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: x\n    source: s\n    pattern: p\n"
                     "    series: [A]\n    effect: explode\n")
    result = runner.invoke(_app(), ["news", "test-rule", "--rules", str(rules),
                                    str(fixtures_dir / "news" / "alerts_nyc_heat.json")])
    assert result.exit_code == 2
    assert f"{rules}:7: effect: expected refresh or shift" in result.output


def test_news_test_rule_malformed_item_file_exits_2(tmp_path: Path) -> None:
    item = tmp_path / "item.json"
    item.write_text('{"source": "v", "id": ')
    result = runner.invoke(_app(), ["news", "test-rule", str(item)])
    assert result.exit_code == 2
    assert "malformed JSON" in result.output
