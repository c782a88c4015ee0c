"""A heat advisory for Central Park's zone re-prices KXHIGHNY at once through the real weather
cycle (paper exchange with synthetic liquidity, the loopback NWS stand-in, the ledger)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from flows.news import refresh_weather
from models.ledger import Decision, NewsAction
from tasks.db import read_session
from tasks.news import load_rules_file
from tasks.news_watcher import NewsWatcher
from tasks.settings import load_settings
from tasks.trading import MODEL_VERSION, ledger
from tests.integration._trading_helpers import trading_venue


@pytest.fixture
def venue_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    tmp = tmp_path_factory.mktemp("news-refresh")
    with trading_venue(tmp, series=["KXHIGHNY"]) as venue:
        venue.stop_liquidity()
        for name, value in venue.env(f"sqlite:///{tmp / 'ledger.sqlite'}").items():
            monkeypatch.setenv(name, value)
        load_settings(fresh=True)
        yield venue
    monkeypatch.undo()
    load_settings(fresh=True)


def test_watcher_nyc_heat_alert_refreshes_kxhighny_with_the_weather_model(
        venue_env, fixtures_dir: Path) -> None:
    engine = ledger()
    with venue_env.client() as client:
        watcher = NewsWatcher(engine=engine, client=client, rules=load_rules_file(),
                              refresh=refresh_weather)
        with watcher.running():
            watcher.push((fixtures_dir / "news" / "alerts_nyc_heat.json").read_bytes())
            assert watcher.wait_idle(60)
    with read_session(engine) as session:
        actions = list(session.exec(select(NewsAction)))
        decisions = list(session.exec(select(Decision).where(
            col(Decision.model_version) == MODEL_VERSION)))
    assert [(a.rule_id, a.outcome) for a in actions] == [("heat-kxhigh", "refreshed")]
    assert actions[0].detail.startswith("refreshed KXHIGHNY")
    assert decisions, "the weather model priced nothing"
    assert {d.market_ticker.split("-")[0] for d in decisions} == {"KXHIGHNY"}
