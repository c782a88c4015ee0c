"""The news flows under Prefect: `poll-news` stores items once and skips sources not due;
`news-watcher` serves the webhook, acts through the gateway, and keeps its rules when the rule
file is broken while it runs."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from flows.news import news_watcher, poll_news
from flows.registry import get_flow
from kalshi.client import KalshiClient
from kalshi.paper.server import serve_in_thread
from kalshi.signing import private_key_pem
from models.ledger import NewsAction, NewsItemRecord, OrderRecord
from tasks.db import read_session
from tasks.settings import load_settings
from tasks.trading import ledger
from tests.integration._news_helpers import FeedScript, add_markets, feed_app, make_book, seed_model
from tests.integration.conftest import PaperExchangeHandle, http

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def feeds() -> Iterator[tuple[str, FeedScript]]:
    script = FeedScript()
    with serve_in_thread(feed_app(script)) as root:
        yield root, script


@pytest.fixture
def news_env(tmp_path: Path, paper_exchange: PaperExchangeHandle,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(private_key_pem(paper_exchange.private_key))
    values = {
        "EVENTDESK_ENV": "paper", "EVENTDESK_KALSHI_BASE_URL": paper_exchange.base_url,
        "EVENTDESK_KALSHI_KEY_ID": paper_exchange.key_id,
        "EVENTDESK_KALSHI_PRIVATE_KEY_PATH": str(key_path), "EVENTDESK_KALSHI_TIER": "prime",
        "EVENTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        "EVENTDESK_DATA_DIR": str(tmp_path),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    load_settings(fresh=True)
    yield tmp_path
    monkeypatch.undo()
    load_settings(fresh=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_registry_lists_news_flows() -> None:
    assert get_flow("poll-news") is poll_news
    assert get_flow("news-watcher") is news_watcher


def test_poll_news_flow_stores_items_once_and_skips_sources_not_due(
        feeds, news_env, fixtures_dir, prefect_harness) -> None:
    root, script = feeds
    path = f"/fed-{next(_ids)}.xml"
    script.set(path, (fixtures_dir / "news" / "fed_press_all.xml").read_bytes(),
               "application/rss+xml")
    sources = [{"name": "fed-local", "url": root + path, "kind": "feed", "interval_s": 60}]
    first = poll_news(sources=sources)
    second = poll_news(sources=sources)
    assert (first[0]["status"], first[0]["new"]) == (200, 2)
    assert second[0]["status"] == "not due"
    assert script.hits[path] == 1
    with read_session(ledger()) as session:
        assert len(list(session.exec(select(NewsItemRecord)))) == 2


def test_poll_news_flow_bad_source_parameter_is_refused(news_env, prefect_harness) -> None:
    with pytest.raises(ValueError, match="interval_s 1.0 is below the 120.0s"):
        poll_news(sources=[{"name": "fed", "url": "https://www.federalreserve.gov/feeds/x.xml",
                            "kind": "feed", "interval_s": 1}])


def test_news_watcher_flow_acts_on_push_and_keeps_rules_when_file_breaks(
        news_env, paper_exchange, prefect_harness) -> None:
    n = next(_ids)
    ticker, event = f"KXRAINNYC-26AUG{n:02d}-T0", f"KXRAINNYC-26AUG{n:02d}"
    add_markets(paper_exchange.operator_url, "KXRAINNYC", [(ticker, event)])
    with KalshiClient(paper_exchange.base_url, paper_exchange.auth(counterparty=True),
                      timeout=10) as other:
        make_book(paper_exchange.root_url, paper_exchange.operator_url, other, [ticker])
    seed_model(ledger(), ticker, event, 0.5)
    rules = news_env / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: vendor-rain\n    source: vendor\n"
                     "    pattern: '(?i)downpour'\n    series: [KXRAINNYC]\n    effect: shift\n"
                     "    weight: 0.7\n    ttl: 1h\n")
    port_holder: dict[str, object] = {}
    port = _free_port()
    hook = f"http://127.0.0.1:{port}"

    def pusher() -> None:
        # wait for the webhook, break the rule file, then push an item the old rules match
        deadline = time.monotonic() + 60
        with http(timeout=5) as web:
            while time.monotonic() < deadline:
                try:
                    if web.get(f"{hook}/health").status_code == 200:
                        break
                except Exception:  # noqa: BLE001 - not up yet
                    time.sleep(0.05)
            time.sleep(0.1)
            rules.write_text("version: 2\nrules:\n  - id: broken\n    effect: nope\n")
            time.sleep(0.6)  # past a reload check: the broken file must have been refused
            port_holder["response"] = web.post(f"{hook}/news", json={
                "source": "vendor", "id": f"flow-{n}", "title": "Downpour floods subway",
                "published": "2026-08-01T12:00:00Z", "tickers": [ticker]})

    thread = threading.Thread(target=pusher)
    thread.start()
    summary = news_watcher(duration_s=3.0, sources=[], rules_path=str(rules), port=port,
                           reload_every_s=0.2)
    thread.join(10)
    assert port_holder["response"].status_code == 202
    assert summary["orders_acked"] == 1
    with read_session(ledger()) as session:
        orders = list(session.exec(select(OrderRecord).where(
            col(OrderRecord.strategy) == "news-v0")))
        actions = list(session.exec(select(NewsAction)))
    assert [o.market_ticker for o in orders] == [ticker]
    assert [a.rule_id for a in actions] == ["vendor-rain"]
