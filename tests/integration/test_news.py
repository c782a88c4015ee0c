"""The news path end to end on loopback: a feed server serving recorded-format RSS/Atom and NWS
alert GeoJSON, the paper exchange, a real SQLite ledger. A new item produces its decision once;
duplicates, updates and cancels are handled; timeouts, oversize feeds, halts and thin books are
refused with the reason recorded."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from kalshi.client import KalshiClient
from kalshi.paper.server import serve_in_thread
from kalshi.signing import KalshiAuth, generate_private_key
from models.ledger import Decision, NewsAction, NewsFeedState, NewsItemRecord, OrderRecord
from models.news import parse_alerts
from models.news_rules import load_rules
from tasks.db import ledger_engine, read_session, upgrade_ledger
from tasks.ledger_store import set_halt
from tasks.news import DEFAULT_RULES_PATH, FeedSource, news_session, poll_source, store_items
from tasks.news_watcher import NewsWatcher, WatcherConfig, webhook_app
from tests.integration._news_helpers import (
    FeedScript,
    add_markets,
    feed_app,
    make_book,
    seed_model,
)
from tests.integration.conftest import PaperExchangeHandle, http, register_key

_ids = itertools.count(1)
GEOJSON = "application/geo+json"


@pytest.fixture(scope="module")
def feeds() -> Iterator[tuple[str, FeedScript]]:
    script = FeedScript()
    with serve_in_thread(feed_app(script)) as root:
        yield root, script


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade_ledger(url)
    eng = ledger_engine(url)
    yield eng
    eng.dispose()


def _news_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "news"


def _actions(engine: Engine) -> list[NewsAction]:
    with read_session(engine) as session:
        return list(session.exec(select(NewsAction).order_by(col(NewsAction.id))))


def _orders(engine: Engine, strategy: str = "news-v0") -> list[OrderRecord]:
    with read_session(engine) as session:
        return list(session.exec(select(OrderRecord).where(col(OrderRecord.strategy) == strategy)))


# -- polling ---------------------------------------------------------------------------------

def test_poll_source_second_poll_sends_etag_gets_304_and_stores_nothing_new(
        feeds, engine, fixtures_dir) -> None:
    root, script = feeds
    path = f"/fed-{next(_ids)}.xml"
    script.set(path, (_news_dir(fixtures_dir) / "fed_press_all.xml").read_bytes(),
               "application/rss+xml")
    source = FeedSource("fed-press", root + path, "feed", 0.1)
    with news_session("eventdesk-test") as session:
        first, stored = poll_source(session, engine, source, as_of=datetime.now(UTC))
        second, again = poll_source(session, engine, source, as_of=datetime.now(UTC))
    assert (first.status, [s.novelty for s in stored]) == (200, ["new", "new"])
    assert (second.status, again) == (304, [])
    assert script.not_modified[path] == 1
    with read_session(engine) as session:
        rows = list(session.exec(select(NewsItemRecord)))
        state = session.get(NewsFeedState, "fed-press")
    assert len(rows) == 2
    assert all(r.first_seen_ts_ms > 0 for r in rows)
    assert state is not None
    assert state.etag
    assert state.items_seen == 2


def test_poll_source_same_items_after_change_are_stored_once(feeds, engine, fixtures_dir) -> None:
    root, script = feeds
    path = f"/alerts-{next(_ids)}"
    news = _news_dir(fixtures_dir)
    script.set(path, (news / "alerts_nyc_heat.json").read_bytes(), GEOJSON)
    source = FeedSource("nws-alerts", root + path, "nws_alerts", 0.1)
    with news_session("eventdesk-test") as session:
        _, first = poll_source(session, engine, source, as_of=datetime.now(UTC))
        script.set(path, (news / "alerts_nyc_heat_update.json").read_bytes(), GEOJSON)
        _, second = poll_source(session, engine, source, as_of=datetime.now(UTC))
    assert [s.novelty for s in first] == ["new"]
    assert [s.novelty for s in second] == ["duplicate", "update"]
    assert second[1].thread_id == first[0].item.item_id
    with read_session(engine) as session:
        assert len(list(session.exec(select(NewsItemRecord)))) == 2


def test_poll_source_feed_that_times_out_records_error_and_stores_nothing(
        feeds, engine, fixtures_dir) -> None:
    root, script = feeds
    path = f"/slow-{next(_ids)}.xml"
    script.set(path, (_news_dir(fixtures_dir) / "bls_latest.atom").read_bytes(),
               "application/atom+xml")
    script.delay_s[path] = 2.0
    source = FeedSource("bls-latest", root + path, "feed", 0.1, timeout_s=0.3)
    started = time.monotonic()
    with news_session("eventdesk-test") as session:
        fetched, stored = poll_source(session, engine, source, as_of=datetime.now(UTC))
    assert time.monotonic() - started < 1.5
    assert fetched.error is not None
    assert fetched.error.startswith("timeout after 0.3s")
    assert stored == []
    with read_session(engine) as session:
        state = session.get(NewsFeedState, "bls-latest")
        assert list(session.exec(select(NewsItemRecord))) == []
    assert state is not None
    assert state.last_error == fetched.error
    assert state.etag is None


def test_poll_source_oversize_feed_is_refused_whole(feeds, engine) -> None:
    root, script = feeds
    path = f"/huge-{next(_ids)}.xml"
    item = (b"<item><guid>g%d</guid><pubDate>Tue, 08 Dec 2026 15:30:00 GMT</pubDate>"
            b"<title>x</title></item>")
    body = (b"<rss version='2.0'><channel>" + b"".join(item % i for i in range(3000))
            + b"</channel></rss>")
    script.set(path, body, "application/rss+xml")
    source = FeedSource("big", root + path, "feed", 0.1, max_bytes=100_000)
    with news_session("eventdesk-test") as session:
        fetched, stored = poll_source(session, engine, source, as_of=datetime.now(UTC))
    assert fetched.error is not None
    assert "exceeds the 100000-byte cap" in fetched.error
    assert stored == []


def test_feed_source_interval_below_host_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="below the 30.0s api.weather.gov allows"):
        FeedSource("nws", "https://api.weather.gov/alerts/active", "nws_alerts", 5)


# -- the watcher -----------------------------------------------------------------------------

@dataclass
class RainMarket:
    ticker: str
    event_ticker: str


def _rain_market(paper: PaperExchangeHandle, *, both_sides: bool = True) -> RainMarket:
    n = next(_ids)
    market = RainMarket(f"KXRAINNYC-26JUL{n:02d}-T0", f"KXRAINNYC-26JUL{n:02d}")
    add_markets(paper.operator_url, "KXRAINNYC", [(market.ticker, market.event_ticker)])
    with KalshiClient(paper.base_url, paper.auth(counterparty=True), timeout=10) as other:
        make_book(paper.root_url, paper.operator_url, other, [market.ticker],
                  both_sides=both_sides)
    return market


@pytest.fixture
def client(paper_exchange: PaperExchangeHandle) -> Iterator[KalshiClient]:
    # a fresh account per test: fills of other tests on the shared session exchange would be
    # (rightly) unknown to this test's ledger and halt trading as drift
    key = generate_private_key()
    key_id = f"news-{next(_ids)}-{time.monotonic_ns()}"
    register_key(paper_exchange.operator_url, key_id, key)
    with KalshiClient(paper_exchange.base_url, KalshiAuth(key_id, key), timeout=10) as c:
        yield c


def _watcher(engine: Engine, client: KalshiClient, sources=(), **config) -> NewsWatcher:
    rules = load_rules(DEFAULT_RULES_PATH.read_text(), origin="defaults")
    return NewsWatcher(engine=engine, client=client, rules=rules, sources=sources,
                       config=WatcherConfig(**config))


def _wait_hits(script, path: str, target: int, timeout_s: float = 60.0) -> None:
    # polls happen on the watcher's clock; on a loaded machine they can lag, so wait for them
    deadline = time.monotonic() + timeout_s
    while script.hits[path] < target:
        assert time.monotonic() < deadline, f"polled {script.hits[path]} times, not {target}"
        time.sleep(0.05)


def test_watcher_polled_flood_thread_orders_once_update_replaces_cancel_removes(
        feeds, engine, client, paper_exchange, fixtures_dir) -> None:
    # Arrange: a KXRAINNYC market with a two-sided book and a 50% model probability
    root, script = feeds
    market = _rain_market(paper_exchange)
    seed_model(engine, market.ticker, market.event_ticker, 0.50)
    path = f"/nyc-{next(_ids)}"
    news = _news_dir(fixtures_dir)
    flood = json.loads((news / "alerts_nyc_flood.json").read_text())
    script.set(path, json.dumps(flood).encode(), GEOJSON)
    source = FeedSource("nws-alerts", root + path, "nws_alerts", 0.1)
    watcher = _watcher(engine, client, [source])
    refreshed: list[tuple[str, ...]] = []
    watcher.refresh = lambda series, as_of: refreshed.append(tuple(series)) or "refreshed"

    # Act 1: the alert is polled (several times: duplicates and 304s)
    with watcher.running():
        _wait_hits(script, path, 4)
        assert watcher.wait_idle(10)
        first_orders = _orders(engine)
        first_actions = [a.outcome for a in _actions(engine)]
        # Act 2: an update of the same thread, then its cancel
        update = json.loads(json.dumps(flood))
        feature = update["features"][0]
        root_id = feature["properties"]["id"]
        upd = json.loads(json.dumps(feature))
        upd["properties"].update(id=root_id + "-u", messageType="Update",
                                 sent="2026-07-14T10:00:00-04:00",
                                 references=[{"identifier": root_id,
                                              "sent": "2026-07-14T04:00:00-04:00"}])
        script.set(path, json.dumps({**flood, "features": [feature, upd]}).encode(), GEOJSON)
        hits = script.hits[path]
        _wait_hits(script, path, hits + 3)
        assert watcher.wait_idle(10)
        after_update = _orders(engine)
        update_actions = [a.outcome for a in _actions(engine)][len(first_actions):]
        cancel = json.loads(json.dumps(upd))
        cancel["properties"].update(id=root_id + "-c", messageType="Cancel",
                                    references=[{"identifier": root_id + "-u",
                                                 "sent": "2026-07-14T10:00:00-04:00"}])
        script.set(path, json.dumps({**flood, "features": [feature, upd, cancel]}).encode(),
                   GEOJSON)
        hits = script.hits[path]
        _wait_hits(script, path, hits + 3)
        assert watcher.wait_idle(10)

    # Assert: one take from the alert, none from its duplicates; the update re-priced once with
    # the shift replaced (not stacked); the cancel removed it and sent nothing; the high series
    # was refreshed once per alert item
    assert first_actions == ["ordered", "refreshed"]
    assert len(first_orders) == 1
    order = first_orders[0]
    assert (order.market_ticker, order.side, order.price_cents) == (market.ticker, "yes", 55)
    assert order.status == "executed"
    assert order.filled_count == order.count > 0
    assert script.not_modified[path] >= 1
    with read_session(engine) as session:
        decisions = list(session.exec(select(Decision).where(
            col(Decision.model_version) == "news-shift-v0").order_by(col(Decision.id))))
    shifts = [json.loads(d.model_inputs_json)["log_odds_shift"] for d in decisions]
    assert len(decisions) == 2
    assert shifts[0] == pytest.approx(0.6, abs=1e-3)
    assert shifts[1] == pytest.approx(0.6, abs=1e-3)  # replaced by the update, not 1.2
    assert update_actions[-1] == "refreshed"
    assert len(update_actions) == 2
    assert len(after_update) == len(first_orders) + update_actions.count("ordered")
    assert watcher.shifts == ()
    cancel_actions = [a.outcome for a in _actions(engine)][len(first_actions) + 2:]
    assert cancel_actions == ["canceled", "canceled"]  # both rules of the thread; no order
    assert len(_orders(engine)) == len(after_update)
    assert refreshed == [("KXHIGHNY",), ("KXHIGHNY",)]  # the alert and its update
    assert watcher.stats.duplicates >= 3


def test_watcher_active_halt_records_halted_and_sends_nothing(
        engine, client, paper_exchange, fixtures_dir) -> None:
    market = _rain_market(paper_exchange)
    seed_model(engine, market.ticker, market.event_ticker, 0.50)
    set_halt(engine, "operator stop", set_by="test", as_of=datetime.now(UTC))
    watcher = _watcher(engine, client)
    body = (_news_dir(fixtures_dir) / "alerts_nyc_flood.json").read_bytes()
    with watcher.running():
        watcher.push(body)
        assert watcher.wait_idle(10)
    assert _orders(engine) == []
    halted = [a for a in _actions(engine) if a.outcome == "halted"]
    assert halted
    assert "operator stop" in halted[0].detail


def test_watcher_thin_book_records_reason_and_sends_nothing(
        engine, client, paper_exchange, fixtures_dir) -> None:
    market = _rain_market(paper_exchange, both_sides=False)
    seed_model(engine, market.ticker, market.event_ticker, 0.50)
    watcher = _watcher(engine, client)
    with watcher.running():
        watcher.push((_news_dir(fixtures_dir) / "alerts_nyc_flood.json").read_bytes())
        assert watcher.wait_idle(10)
    assert [o for o in _orders(engine) if o.market_ticker == market.ticker] == []
    thin = [a for a in _actions(engine) if a.market_ticker == market.ticker]
    assert [a.outcome for a in thin] == ["thin_book"]
    assert "0 NO contracts" in thin[0].detail


def test_webhook_vendor_item_orders_once_duplicate_ignored_bad_body_400(
        engine, client, paper_exchange) -> None:
    market = _rain_market(paper_exchange)
    seed_model(engine, market.ticker, market.event_ticker, 0.50)
    rules = load_rules(
        "version: 7\nrules:\n  - id: vendor-rain\n    source: vendor\n"
        "    pattern: '(?i)record rainfall'\n    series: [KXRAINNYC]\n    effect: shift\n"
        "    weight: 0.7\n    ttl: 1h\n", origin="vendor.yaml")
    watcher = NewsWatcher(engine=engine, client=client, rules=rules,
                          config=WatcherConfig(webhook_token="s3cret"))
    item = {"source": "vendor", "id": f"v-{next(_ids)}", "title": "Record rainfall in NYC",
            "published": "2026-07-14T14:00:00Z", "tickers": [market.ticker]}
    with serve_in_thread(webhook_app(watcher)) as url, watcher.running(), \
            http(base_url=url, timeout=10) as web:
        headers = {"X-Eventdesk-Token": "s3cret"}
        assert web.post("/news", json=item).status_code == 401
        first = web.post("/news", json=item, headers=headers)
        second = web.post("/news", json=item, headers=headers)
        bad = web.post("/news", content=b"{not json", headers=headers)
        assert watcher.wait_idle(10)
    assert first.status_code == 202
    assert first.json()["accepted"] == [item["id"]]
    assert second.json()["duplicates"] == [item["id"]]
    assert bad.status_code == 400
    assert "malformed JSON" in bad.json()["error"]
    orders = _orders(engine)
    assert len(orders) == 1
    assert orders[0].status == "executed"
    assert len(watcher.stats.reaction_ms) == 1
    assert watcher.stats.reaction_ms[0] < 2000


def test_watcher_alert_cancel_cancels_the_resting_news_order(
        engine, client, paper_exchange, fixtures_dir) -> None:
    # Arrange: a wide book (YES 40 / 70): the shifted fair value clears resting, not taking
    n = next(_ids)
    market = RainMarket(f"KXRAINNYC-26SEP{n:02d}-T0", f"KXRAINNYC-26SEP{n:02d}")
    add_markets(paper_exchange.operator_url, "KXRAINNYC", [(market.ticker, market.event_ticker)])
    with KalshiClient(paper_exchange.base_url, paper_exchange.auth(counterparty=True),
                      timeout=10) as other:
        make_book(paper_exchange.root_url, paper_exchange.operator_url, other, [market.ticker],
                  ask=70)
    seed_model(engine, market.ticker, market.event_ticker, 0.50)
    flood = json.loads((_news_dir(fixtures_dir) / "alerts_nyc_flood.json").read_text())
    feature = flood["features"][0]
    cancel = json.loads(json.dumps(feature))
    cancel["properties"].update(
        id=feature["properties"]["id"] + "-c", messageType="Cancel",
        sent="2026-07-14T11:00:00-04:00",
        references=[{"identifier": feature["properties"]["id"],
                     "sent": feature["properties"]["sent"]}])
    watcher = _watcher(engine, client)

    # Act
    with watcher.running():
        watcher.push(json.dumps(flood).encode())
        assert watcher.wait_idle(10)
        rested = [o for o in _orders(engine) if o.market_ticker == market.ticker]
        watcher.push(json.dumps({**flood, "features": [cancel]}).encode())
        assert watcher.wait_idle(10)

    # Assert: one resting YES bid inside the spread, canceled at the exchange by the cancel
    assert [(o.side, o.price_cents, o.status) for o in rested] == [("yes", 41, "resting")]
    final = {o.client_order_id: o for o in _orders(engine)}
    assert final[rested[0].client_order_id].status == "canceled"
    exchange_order = next(o for o in client.iter_orders(ticker=market.ticker)
                          if o.client_order_id == rested[0].client_order_id)
    assert exchange_order.status == "canceled"
    outcomes = [(a.outcome, a.detail.split(":")[0]) for a in _actions(engine)
                if a.market_ticker == market.ticker or a.market_ticker is None]
    assert ("ordered", "place") in outcomes
    assert ("canceled", "cancel") in outcomes


def test_watcher_restart_replays_the_shifts_in_force_from_the_ledger(
        engine, client, fixtures_dir) -> None:
    # Arrange: a flood alert and an unrelated heat thread stored by an earlier watcher
    news = _news_dir(fixtures_dir)
    now = datetime.now(UTC)
    for name in ("alerts_nyc_flood.json", "alerts_nyc_heat_cancel.json"):
        parsed = parse_alerts((news / name).read_bytes(), "nws-alerts")
        store_items(engine, parsed.items, as_of=now)
    # Act: a fresh watcher (a restart) rebuilds its shifts before it starts acting
    watcher = _watcher(engine, client)
    count = watcher.replay_shifts(now)
    # Assert: the flood shift is back (the heat thread only refreshes and was canceled)
    assert count == 1
    assert [(s.series, s.rule_id, s.weight) for s in watcher.shifts] == [
        ("KXRAINNYC", "flood-kxrain", 0.6)]


def test_store_items_same_nws_alert_polled_and_pushed_is_one_item(engine, fixtures_dir) -> None:
    body = (_news_dir(fixtures_dir) / "alerts_nyc_flood.json").read_bytes()
    polled = store_items(engine, parse_alerts(body, "nws-alerts").items, as_of=datetime.now(UTC))
    pushed = store_items(engine, parse_alerts(body, "nws-alerts-push").items,
                         as_of=datetime.now(UTC))
    assert [s.novelty for s in polled] == ["new"]
    assert [s.novelty for s in pushed] == ["duplicate"]
    assert pushed[0].row_id == polled[0].row_id
