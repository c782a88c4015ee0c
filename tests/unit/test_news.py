"""models/news.py: RSS, Atom, NWS alert and push parsing; refusals; dedupe; alert threads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.news import (
    NewsParseError,
    novelty,
    parse_alerts,
    parse_feed,
    parse_push,
    thread_of,
)


@pytest.fixture
def news_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "news"


def test_parse_feed_fed_rss_items_have_guid_utc_time_and_category(news_dir: Path) -> None:
    parsed = parse_feed((news_dir / "fed_press_all.xml").read_bytes(), "fed-press")
    assert parsed.refused == ()
    first = parsed.items[0]
    assert first.item_id.endswith("monetary20261209a.htm")
    assert first.published == datetime(2026, 12, 9, 19, 0, tzinfo=UTC)
    assert first.event == "Monetary Policy"
    assert first.title == "Federal Reserve issues FOMC statement"


def test_parse_feed_bls_atom_entries_use_id_and_published(news_dir: Path) -> None:
    parsed = parse_feed((news_dir / "bls_latest.atom").read_bytes(), "bls-latest")
    assert [i.kind for i in parsed.items] == ["atom", "atom"]
    assert parsed.items[0].item_id == "https://www.bls.gov/news.release/empsit.nr0.htm#2026-12-04"
    assert parsed.items[0].published == datetime(2026, 12, 4, 13, 30, tzinfo=UTC)
    assert parsed.items[0].event == "Employment Situation"


def test_parse_feed_item_without_date_is_refused_with_reason() -> None:
    doc = (b"<rss version='2.0'><channel><item><guid>a</guid><title>t</title></item>"
           b"<item><guid>b</guid><pubDate>Tue, 08 Dec 2026 15:30:00 GMT</pubDate></item>"
           b"</channel></rss>")
    parsed = parse_feed(doc, "s")
    assert [i.item_id for i in parsed.items] == ["b"]
    assert parsed.refused[0].where == "a"
    assert "pubDate: missing" in parsed.refused[0].reason


def test_parse_feed_item_without_guid_or_link_is_refused() -> None:
    doc = (b"<rss version='2.0'><channel><item><title>t</title>"
           b"<pubDate>Tue, 08 Dec 2026 15:30:00 GMT</pubDate></item></channel></rss>")
    parsed = parse_feed(doc, "s")
    assert parsed.items == ()
    assert parsed.refused[0].where == "item[0]"


def test_parse_feed_unparseable_date_is_refused_naming_the_value() -> None:
    doc = (b"<rss version='2.0'><channel><item><guid>a</guid><pubDate>yesterday</pubDate>"
           b"</item></channel></rss>")
    assert "'yesterday'" in parse_feed(doc, "s").refused[0].reason


@pytest.mark.parametrize(("doc", "needle"), [
    (b"<rss><channel><item>", "malformed XML"),
    (b"<html><body/></html>", "neither <rss> nor an Atom"),
    (b"<?xml version='1.0'?><!DOCTYPE r [<!ENTITY a 'x'>]><rss><channel/></rss>",
     "forbidden XML construct"),
    (b"<rss version='2.0'/>", "without a <channel>"),
])
def test_parse_feed_bad_document_is_refused_whole(doc: bytes, needle: str) -> None:
    with pytest.raises(NewsParseError, match=needle):
        parse_feed(doc, "fed-press")


def test_parse_feed_document_over_cap_is_refused() -> None:
    doc = b"<rss version='2.0'><channel>" + b" " * 2000 + b"</channel></rss>"
    with pytest.raises(NewsParseError, match="exceeds the 1000-byte cap"):
        parse_feed(doc, "big", max_bytes=1000)


def test_parse_feed_repeated_guid_in_one_document_is_kept_once() -> None:
    item = b"<item><guid>a</guid><pubDate>Tue, 08 Dec 2026 15:30:00 GMT</pubDate></item>"
    parsed = parse_feed(b"<rss version='2.0'><channel>" + item + item + b"</channel></rss>", "s")
    assert len(parsed.items) == 1
    assert parsed.refused[0].reason == "repeated within the document"


def test_parse_alerts_real_nws_update_keeps_type_zones_and_oldest_reference(
        news_dir: Path) -> None:
    parsed = parse_alerts((news_dir / "alerts_active_zone_second.json").read_bytes(), "nws")
    first = parsed.items[0]
    assert first.message_type == "Update"
    assert first.event == "Flood Watch"
    assert "ORZ006" in first.zones
    assert "WAZ039" in first.zones
    assert first.references[0] == "NWS-IDP-PROD-3963421-3367361"  # sent 2019-12-18, the root
    assert first.published == datetime(2019, 12, 20, 21, 34, tzinfo=UTC)


def test_parse_alerts_test_status_and_missing_sent_are_refused() -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"properties": {"id": "x1", "status": "Test", "messageType": "Alert",
                        "sent": "2026-07-14T04:00:00-04:00"}},
        {"properties": {"id": "x2", "status": "Actual", "messageType": "Alert"}},
    ]}
    parsed = parse_alerts(json.dumps(doc).encode(), "nws")
    assert parsed.items == ()
    assert [(r.where, r.reason) for r in parsed.refused] == [
        ("x1", "status 'Test' is not an actual alert"), ("x2", "sent: missing")]


def test_parse_alerts_malformed_json_is_refused() -> None:
    with pytest.raises(NewsParseError, match="malformed JSON"):
        parse_alerts(b'{"features": [', "nws")


def test_parse_push_vendor_item_with_tickers_parses() -> None:
    body = json.dumps({"source": "vendor", "id": "v1", "title": "Fed cuts",
                       "published": "2026-12-09T19:00:01Z", "tickers": ["KXFED-26DEC-T4.00"]})
    item = parse_push(body.encode()).items[0]
    assert (item.kind, item.tickers) == ("push", ("KXFED-26DEC-T4.00",))


def test_parse_push_item_without_published_is_refused() -> None:
    parsed = parse_push(b'{"source": "vendor", "id": "v1", "title": "x"}')
    assert parsed.items == ()
    assert parsed.refused[0].reason == "published: missing"


def test_parse_push_naive_time_is_refused() -> None:
    parsed = parse_push(b'{"source": "v", "id": "1", "published": "2026-12-09T19:00:00"}')
    assert "no time zone" in parsed.refused[0].reason


def test_novelty_cancel_update_duplicate_are_distinguished(news_dir: Path) -> None:
    alert, update, cancel = parse_alerts(
        (news_dir / "alerts_nyc_heat_cancel.json").read_bytes(), "nws").items
    assert novelty(alert, seen_before=False) == "new"
    assert novelty(update, seen_before=False) == "update"
    assert novelty(cancel, seen_before=False) == "cancel"
    assert novelty(cancel, seen_before=True) == "duplicate"


def test_thread_of_update_and_cancel_join_the_first_alert(news_dir: Path) -> None:
    alert, update, cancel = parse_alerts(
        (news_dir / "alerts_nyc_heat_cancel.json").read_bytes(), "nws").items
    known = {alert.item_id: alert.item_id}
    assert thread_of(alert, {}) == alert.item_id
    known[update.item_id] = thread_of(update, known)
    assert known[update.item_id] == alert.item_id
    assert thread_of(cancel, {update.item_id: alert.item_id}) == alert.item_id
