"""News fetching and storage: conditional polling of feeds and NWS alerts, items stored once.

Invariants:
- Every source has a polling interval no shorter than its host allows (``MIN_INTERVAL_S``); a
  source configured faster is refused at construction, never silently slowed or sped up.
- Requests are conditional: the ETag and Last-Modified of the last 200 are kept in the ledger
  (``news_feeds``) and sent back, so a restart does not refetch and a 304 costs no parsing.
- A response larger than the size cap, a timeout, a non-200/304 status or a malformed document
  is recorded on the source (``last_error``) and returned as a value; it never stops other
  sources and never stores a partial document.
- Every item is stored once (unique ``(source, item_id)``; an NWS alert id once whichever source
  delivered it, polled or pushed) with the time it was first seen, in
  the same serialised transaction that decides whether it is new; updates and cancels inherit
  the thread of the alert they reference.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit

import requests
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine
from sqlmodel import col, select

import models
from models.climate import STATION_ZONES
from models.ledger import NewsAction, NewsFeedState, NewsItemRecord, ms_from_datetime
from models.news import (
    MAX_FEED_BYTES,
    FeedParse,
    NewsItem,
    NewsParseError,
    Novelty,
    novelty,
    parse_alerts,
    parse_feed,
    thread_of,
)
from models.news_rules import RuleSet, load_rules
from tasks.db import read_session, write_session

__all__ = [
    "DEFAULT_RULES_PATH",
    "DEFAULT_SOURCES",
    "MIN_INTERVAL_S",
    "FeedSource",
    "FetchResult",
    "StoredItem",
    "fetch_source",
    "load_rules_file",
    "news_session",
    "poll_news_source",
    "poll_source",
    "read_feed_state",
    "record_news_actions",
    "store_items",
]

log = logging.getLogger(__name__)

DEFAULT_RULES_PATH: Final = Path(models.__file__).resolve().parent / "default_news_rules.yaml"
# the shortest polling interval each host accepts from us (seconds). api.weather.gov's limit is
# "not public" and errors clear "typically within 5 seconds"; alerts change at most every
# minute or so, so 30 s is both polite and fast. The Fed and BLS publish a few items a day.
MIN_INTERVAL_S: Final = {
    "api.weather.gov": 30.0,
    "www.federalreserve.gov": 120.0,
    "www.bls.gov": 120.0,
    "127.0.0.1": 0.05,
    "localhost": 0.05,
}
DEFAULT_MIN_INTERVAL_S: Final = 60.0
CONNECT_TIMEOUT_S: Final = 3.0

SourceKind = Literal["feed", "nws_alerts"]


@dataclass(frozen=True)
class FeedSource:
    """One polled source: an RSS/Atom feed or an NWS ``/alerts/active`` query."""

    name: str
    url: str
    kind: SourceKind
    interval_s: float
    timeout_s: float = 10.0
    max_bytes: int = MAX_FEED_BYTES

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip():
            raise ValueError(f"name: expected a non-empty unpadded string, got {self.name!r}")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{self.name}: url must be http(s)://host/..., got {self.url!r}")
        if self.kind not in ("feed", "nws_alerts"):
            raise ValueError(f"{self.name}: kind must be feed or nws_alerts, got {self.kind!r}")
        floor = MIN_INTERVAL_S.get(parts.hostname, DEFAULT_MIN_INTERVAL_S)
        if not self.interval_s >= floor:
            raise ValueError(f"{self.name}: interval_s {self.interval_s} is below the "
                             f"{floor}s {parts.hostname} allows")
        if not 0 < self.timeout_s <= 60:
            raise ValueError(f"{self.name}: timeout_s must be in (0, 60], got {self.timeout_s}")

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> FeedSource:
        """Build a source from flow parameters (name, url, kind, interval_s[, timeout_s])."""
        unknown = sorted(set(raw) - {"name", "url", "kind", "interval_s", "timeout_s",
                                     "max_bytes"})
        if unknown:
            raise ValueError(f"source: unknown field {unknown[0]!r}")
        return cls(str(raw["name"]), str(raw["url"]), raw["kind"],  # type: ignore[arg-type]
                   float(raw["interval_s"]),  # type: ignore[arg-type]
                   float(raw.get("timeout_s", 10.0)),  # type: ignore[arg-type]
                   int(raw.get("max_bytes", MAX_FEED_BYTES)))  # type: ignore[call-overload]


_ZONES: Final = ",".join(sorted({z for zones in STATION_ZONES.values() for z in zones}))
DEFAULT_SOURCES: Final = (
    FeedSource("nws-alerts", f"https://api.weather.gov/alerts/active?zone={_ZONES}",
               "nws_alerts", 60.0),
    FeedSource("fed-press", "https://www.federalreserve.gov/feeds/press_all.xml", "feed",
               300.0),
    FeedSource("bls-latest", "https://www.bls.gov/feed/bls_latest.rss", "feed", 300.0),
)


@dataclass(frozen=True)
class FetchResult:
    """One poll of one source: parsed items (None when nothing new or on error)."""

    source: str
    status: int | None
    parsed: FeedParse | None
    etag: str | None
    last_modified: str | None
    error: str | None
    elapsed_ms: float


@dataclass(frozen=True)
class StoredItem:
    """An item after storage: its row, what it is to the watcher and its alert thread."""

    item: NewsItem
    row_id: int
    novelty: Novelty
    thread_id: str
    first_seen_ts_ms: int


def news_session(user_agent: str) -> requests.Session:
    """Return an HTTP session for news sources (identifying User-Agent, no proxies from env)."""
    session = requests.Session()
    session.trust_env = False  # a local feed or webhook must never go through a proxy
    session.headers["User-Agent"] = user_agent
    return session


def _read_capped(response: requests.Response, max_bytes: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65_536):
        size += len(chunk)
        if size > max_bytes:
            raise NewsParseError(f"response exceeds the {max_bytes}-byte cap; refusing it")
        if time.monotonic() > deadline:
            raise requests.Timeout("the whole response took longer than the source timeout")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch_source(session: requests.Session, source: FeedSource, *, etag: str | None = None,
                 last_modified: str | None = None) -> FetchResult:
    """GET `source` conditionally and parse it; every failure comes back as ``error``."""
    headers = {"Accept": ("application/geo+json" if source.kind == "nws_alerts"
                          else "application/rss+xml, application/atom+xml, application/xml")}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    started = time.monotonic()

    def result(status: int | None, parsed: FeedParse | None = None, error: str | None = None,
               new_etag: str | None = etag, new_modified: str | None = last_modified
               ) -> FetchResult:
        return FetchResult(source.name, status, parsed, new_etag, new_modified, error,
                           (time.monotonic() - started) * 1000)

    try:
        with session.get(source.url, headers=headers, stream=True,
                         timeout=(min(CONNECT_TIMEOUT_S, source.timeout_s), source.timeout_s),
                         allow_redirects=True) as response:
            if response.status_code == 304:
                return result(304)
            if response.status_code != 200:
                return result(response.status_code,
                              error=f"HTTP {response.status_code} from {source.url}")
            body = _read_capped(response, source.max_bytes, started + source.timeout_s)
            new_etag = response.headers.get("ETag")
            new_modified = response.headers.get("Last-Modified")
    except requests.Timeout as exc:
        return result(None, error=f"timeout after {source.timeout_s}s: {type(exc).__name__}")
    except requests.RequestException as exc:
        return result(None, error=f"network error: {type(exc).__name__}: {exc}"[:300])
    except NewsParseError as exc:
        return result(200, error=f"{source.name}: {exc}")
    try:
        parsed = (parse_alerts(body, source.name, max_bytes=source.max_bytes)
                  if source.kind == "nws_alerts"
                  else parse_feed(body, source.name, max_bytes=source.max_bytes))
    except NewsParseError as exc:
        return result(200, error=str(exc))
    return result(200, parsed, None, new_etag, new_modified)


def read_feed_state(engine: Engine, source: str) -> NewsFeedState | None:
    """Return the stored polling state of `source` (None before its first poll)."""
    with read_session(engine) as session:
        return session.get(NewsFeedState, source)


def _save_feed_state(engine: Engine, source: FeedSource, fetched: FetchResult,
                     as_of: datetime, new_items: int) -> None:
    with write_session(engine) as session:
        state = session.get(NewsFeedState, source.name) or NewsFeedState(
            source=source.name, url=source.url)
        state.url = source.url
        state.last_poll_ts_ms = ms_from_datetime(as_of)
        state.last_status = fetched.status
        state.last_error = fetched.error
        if fetched.error is None:  # keep the validators of the last good response
            state.etag, state.last_modified = fetched.etag, fetched.last_modified
        state.items_seen += new_items
        session.add(state)


def store_items(engine: Engine, items: Iterable[NewsItem], *,
                as_of: datetime) -> list[StoredItem]:
    """Store each item once (first-seen `as_of`); return what each one is to the watcher."""
    out: list[StoredItem] = []
    now_ms = ms_from_datetime(as_of)
    with write_session(engine) as session:
        for item in items:
            # an NWS alert id is globally unique: polled and pushed copies are one item
            same_source = (col(NewsItemRecord.kind) == "nws_alert"
                           if item.kind == "nws_alert"
                           else col(NewsItemRecord.source) == item.source)
            existing = session.exec(select(NewsItemRecord).where(
                same_source, col(NewsItemRecord.item_id) == item.item_id)).first()
            if existing is not None:
                assert existing.id is not None
                out.append(StoredItem(item, existing.id, "duplicate", existing.thread_id,
                                      existing.first_seen_ts_ms))
                continue
            known: dict[str, str] = {}
            if item.references:
                rows = session.exec(select(NewsItemRecord.item_id, NewsItemRecord.thread_id)
                                    .where(col(NewsItemRecord.item_id).in_(item.references)))
                known = {r[0]: r[1] for r in rows}
            thread = thread_of(item, known)
            row = NewsItemRecord(
                source=item.source, item_id=item.item_id, thread_id=thread, kind=item.kind,
                message_type=item.message_type, title=item.title[:500], event=item.event[:200],
                zones=",".join(item.zones), published_ts_ms=ms_from_datetime(item.published),
                expires_ts_ms=ms_from_datetime(item.expires) if item.expires else None,
                first_seen_ts_ms=now_ms, payload_json=json.dumps(item.as_json(), sort_keys=True))
            session.add(row)
            session.flush()
            assert row.id is not None
            out.append(StoredItem(item, row.id, novelty(item, seen_before=False), thread, now_ms))
    return out


def record_news_actions(engine: Engine, actions: Sequence[NewsAction]) -> None:
    """Append the news path's action rows (one transaction)."""
    if not actions:
        return
    with write_session(engine) as session:
        for action in actions:
            session.add(action)


def poll_source(session: requests.Session, engine: Engine, source: FeedSource, *,
                as_of: datetime) -> tuple[FetchResult, list[StoredItem]]:
    """Fetch one source conditionally, store its items, and record the poll on the source."""
    state = read_feed_state(engine, source.name)
    fetched = fetch_source(session, source, etag=state.etag if state else None,
                           last_modified=state.last_modified if state else None)
    stored: list[StoredItem] = []
    if fetched.parsed is not None:
        stored = store_items(engine, fetched.parsed.items, as_of=as_of)
        for refusal in fetched.parsed.refused:
            log.warning("news %s: refused item %s: %s", refusal.source, refusal.where,
                        refusal.reason)
    if fetched.error is not None:
        log.warning("news %s: %s", source.name, fetched.error)
    new = sum(1 for s in stored if s.novelty != "duplicate")
    _save_feed_state(engine, source, fetched, as_of, new)
    return fetched, stored


def load_rules_file(path: Path | None = None) -> RuleSet:
    """Read and validate a rule file (the shipped defaults when `path` is None)."""
    target = path or DEFAULT_RULES_PATH
    return load_rules(target.read_text(encoding="utf-8"), origin=str(target))


@task(name="poll-news-source", cache_policy=NO_CACHE, retries=0)
def poll_news_source(source: FeedSource, as_of: datetime) -> dict[str, object]:
    """Poll one source into the ledger; return a summary row for the run's artifact."""
    from tasks.settings import load_settings
    from tasks.trading import ledger

    settings = load_settings()
    engine = ledger(settings)
    with news_session(settings.nws_user_agent) as session:
        fetched, stored = poll_source(session, engine, source, as_of=as_of)
    refused = fetched.parsed.refused if fetched.parsed else ()
    return {
        "source": source.name, "status": fetched.status, "error": fetched.error,
        "items": len(stored), "new": sum(1 for s in stored if s.novelty != "duplicate"),
        "refused": [f"{r.where}: {r.reason}" for r in refused],
        "elapsed_ms": round(fetched.elapsed_ms, 1),
    }
