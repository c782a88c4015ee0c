"""News items: RSS 2.0 / Atom feeds, NWS alert GeoJSON and vendor push items, parsed. Pure.

Invariants: every item has a source, a non-empty id and an aware UTC publication time; an item
without one is refused with the reason (a ``Refusal`` value, reported by the caller), never
guessed or silently dropped. A document that is not well-formed XML/JSON, carries a DTD or
entities (defusedxml), or exceeds ``MAX_FEED_BYTES`` is refused whole (``NewsParseError`` naming
the source and the problem). NWS alerts keep their CAP ``messageType`` (Alert / Update / Cancel)
and ``references``, so an update or a cancel is tied to the alert thread it revises
(``thread_of``); ``novelty`` says what a stored item means to the watcher.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = [
    "MAX_FEED_BYTES",
    "FeedParse",
    "MessageType",
    "NewsItem",
    "NewsParseError",
    "Novelty",
    "Refusal",
    "item_from_json",
    "novelty",
    "parse_alerts",
    "parse_feed",
    "parse_push",
    "thread_of",
]

MAX_FEED_BYTES: Final = 2_000_000  # a real NWS /alerts/active page is ~100 KB; RSS feeds ~50 KB
MAX_TEXT_CHARS: Final = 4_000  # per title/summary kept (the full text stays at the source)
_ATOM: Final = "{http://www.w3.org/2005/Atom}"
_UGC: Final = re.compile(r"^[A-Z]{2}[CZ]\d{3}$")

MessageType = Literal["Alert", "Update", "Cancel"]
Novelty = Literal["new", "duplicate", "update", "cancel"]
Kind = Literal["rss", "atom", "nws_alert", "push"]
_MESSAGE_TYPES: Final = ("Alert", "Update", "Cancel")


class NewsParseError(ValueError):
    """A whole document refused; the message names the source and the problem."""


@dataclass(frozen=True)
class NewsItem:
    """One news item, normalised. ``zones`` are NWS UGC codes (``NYZ072``, ``NYC061``)."""

    source: str
    item_id: str
    kind: Kind
    title: str
    published: datetime  # aware UTC
    summary: str = ""
    url: str = ""
    event: str = ""  # the NWS event name ("Heat Advisory") or the feed's category
    message_type: MessageType = "Alert"
    references: tuple[str, ...] = ()
    zones: tuple[str, ...] = ()
    expires: datetime | None = None
    tickers: tuple[str, ...] = ()  # markets a vendor tagged the item with (push only)

    def __post_init__(self) -> None:
        if not self.source or not self.item_id:
            raise NewsParseError(f"item: source and id are required (got {self.source!r}, "
                                 f"{self.item_id!r})")
        if self.published.tzinfo is None or self.published.utcoffset() is None:
            raise NewsParseError(f"{self.source}/{self.item_id}: published is naive "
                                 f"{self.published.isoformat()!r}")

    @property
    def text(self) -> str:
        """The text rules match against: event, title and summary, one per line."""
        return f"{self.event}\n{self.title}\n{self.summary}"

    def as_json(self) -> dict[str, Any]:
        """Return the item as plain JSON values (times as ISO-8601 UTC)."""
        return {
            "source": self.source, "item_id": self.item_id, "kind": self.kind,
            "title": self.title, "published": self.published.isoformat(),
            "summary": self.summary, "url": self.url, "event": self.event,
            "message_type": self.message_type, "references": list(self.references),
            "zones": list(self.zones),
            "expires": self.expires.isoformat() if self.expires else None,
            "tickers": list(self.tickers),
        }


def item_from_json(doc: Mapping[str, Any]) -> NewsItem:
    """Rebuild an item from ``NewsItem.as_json`` (e.g. a stored ledger row)."""
    try:
        expires = doc.get("expires")
        return NewsItem(
            str(doc["source"]), str(doc["item_id"]), doc["kind"], str(doc["title"]),
            _iso_time(doc["published"], "published"), summary=str(doc.get("summary", "")),
            url=str(doc.get("url", "")), event=str(doc.get("event", "")),
            message_type=doc.get("message_type", "Alert"),
            references=tuple(doc.get("references", ())), zones=tuple(doc.get("zones", ())),
            expires=_iso_time(expires, "expires") if expires else None,
            tickers=tuple(doc.get("tickers", ())))
    except (KeyError, TypeError, ValueError) as exc:
        raise NewsParseError(f"stored item: {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class Refusal:
    """An item of a document that could not be used, and why (reported, never dropped)."""

    source: str
    where: str  # item id, or its position when it has none
    reason: str


@dataclass(frozen=True)
class FeedParse:
    """The usable items of one document and the refused ones."""

    items: tuple[NewsItem, ...]
    refused: tuple[Refusal, ...]


def _check_size(data: bytes, source: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise NewsParseError(f"{source}: document of {len(data)} bytes exceeds the "
                             f"{max_bytes}-byte cap; refusing it")


def _clip(text: str | None) -> str:
    return " ".join((text or "").split())[:MAX_TEXT_CHARS]


def _aware_utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: no time zone in {value.isoformat()!r}")
    return value.astimezone(UTC)


def _iso_time(text: str | None, what: str) -> datetime:
    if not text or not text.strip():
        raise ValueError(f"{what}: missing")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what}: not an ISO-8601 time: {text.strip()[:60]!r}") from None
    return _aware_utc(value, what)


def _rfc822_time(text: str | None, what: str) -> datetime:
    if not text or not text.strip():
        raise ValueError(f"{what}: missing")
    try:
        value = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError):
        raise ValueError(f"{what}: not an RFC 822 date: {text.strip()[:60]!r}") from None
    if value.tzinfo is None:  # "-0000": UTC with the source's zone unknown (RFC 5322 3.3)
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _xml_root(data: bytes, source: str, max_bytes: int) -> Element:
    _check_size(data, source, max_bytes)
    try:
        root: Element = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise NewsParseError(f"{source}: forbidden XML construct ({type(exc).__name__}); "
                             "refusing the feed") from None
    except ParseError as exc:
        raise NewsParseError(f"{source}: malformed XML: {exc}") from None
    return root


def _child_text(node: Element, tag: str) -> str | None:
    child = node.find(tag)
    return child.text if child is not None else None


def _rss_item(source: str, node: Element, index: int) -> NewsItem | Refusal:
    guid = _clip(_child_text(node, "guid"))
    link = _clip(_child_text(node, "link"))
    item_id = guid or link
    if not item_id:
        return Refusal(source, f"item[{index}]", "no guid and no link: cannot deduplicate")
    try:
        published = _rfc822_time(_child_text(node, "pubDate"), "pubDate")
    except ValueError as exc:
        return Refusal(source, item_id, str(exc))
    return NewsItem(source, item_id, "rss", _clip(_child_text(node, "title")), published,
                    summary=_clip(_child_text(node, "description")), url=link,
                    event=_clip(_child_text(node, "category")))


def _atom_entry(source: str, node: Element, index: int) -> NewsItem | Refusal:
    item_id = _clip(_child_text(node, f"{_ATOM}id"))
    link_node = node.find(f"{_ATOM}link")
    link = _clip(link_node.get("href")) if link_node is not None else ""
    item_id = item_id or link
    if not item_id:
        return Refusal(source, f"entry[{index}]", "no id and no link: cannot deduplicate")
    stamp = _child_text(node, f"{_ATOM}published") or _child_text(node, f"{_ATOM}updated")
    try:
        published = _iso_time(stamp, "published/updated")
    except ValueError as exc:
        return Refusal(source, item_id, str(exc))
    category = node.find(f"{_ATOM}category")
    return NewsItem(source, item_id, "atom", _clip(_child_text(node, f"{_ATOM}title")),
                    published, summary=_clip(_child_text(node, f"{_ATOM}summary")), url=link,
                    event=_clip(category.get("term")) if category is not None else "")


def parse_feed(data: bytes, source: str, *, max_bytes: int = MAX_FEED_BYTES) -> FeedParse:
    """Parse an RSS 2.0 or Atom document into items and refusals."""
    root = _xml_root(data, source, max_bytes)
    found: list[NewsItem | Refusal] = []
    if root.tag == "rss":
        channel = root.find("channel")
        if channel is None:
            raise NewsParseError(f"{source}: RSS document without a <channel>")
        found = [_rss_item(source, n, i) for i, n in enumerate(channel.findall("item"))]
    elif root.tag == f"{_ATOM}feed":
        found = [_atom_entry(source, n, i) for i, n in enumerate(root.findall(f"{_ATOM}entry"))]
    else:
        raise NewsParseError(f"{source}: root element {root.tag!r} is neither <rss> nor an "
                             "Atom <feed>")
    return _split(found)


def _split(found: Sequence[NewsItem | Refusal]) -> FeedParse:
    items: list[NewsItem] = []
    refused: list[Refusal] = []
    seen: set[str] = set()
    for entry in found:
        if isinstance(entry, Refusal):
            refused.append(entry)
        elif entry.item_id in seen:
            refused.append(Refusal(entry.source, entry.item_id, "repeated within the document"))
        else:
            seen.add(entry.item_id)
            items.append(entry)
    return FeedParse(tuple(items), tuple(refused))


def _json_doc(data: bytes, source: str, max_bytes: int) -> Any:
    _check_size(data, source, max_bytes)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NewsParseError(f"{source}: malformed JSON: {exc}") from None


def _zones(props: Mapping[str, Any]) -> tuple[str, ...]:
    codes: set[str] = set()
    geocode = props.get("geocode")
    if isinstance(geocode, Mapping):
        ugc = geocode.get("UGC")
        if isinstance(ugc, list):
            codes.update(str(c) for c in ugc)
    zones = props.get("affectedZones")
    if isinstance(zones, list):
        codes.update(str(z).rstrip("/").rsplit("/", 1)[-1] for z in zones)
    return tuple(sorted(c for c in codes if _UGC.match(c)))


def _references(props: Mapping[str, Any]) -> tuple[str, ...]:
    refs = props.get("references")
    if not isinstance(refs, list):
        return ()
    found: list[tuple[datetime, int, str]] = []
    for index, ref in enumerate(refs):
        if isinstance(ref, Mapping) and ref.get("identifier"):
            try:
                sent = _iso_time(ref.get("sent"), "references.sent")
            except ValueError:
                sent = datetime.max.replace(tzinfo=UTC)  # undated: after the dated ones
            found.append((sent, index, str(ref["identifier"])))
    # oldest first, so the first reference is the root alert of the thread
    return tuple(ident for _sent, _index, ident in sorted(found))


def _alert(source: str, feature: Any, index: int) -> NewsItem | Refusal:
    props = feature.get("properties") if isinstance(feature, Mapping) else None
    if not isinstance(props, Mapping):
        return Refusal(source, f"features[{index}]", "no properties object")
    item_id = str(props.get("id") or "").strip()
    if not item_id:
        return Refusal(source, f"features[{index}]", "no alert id")
    status = props.get("status")
    if status != "Actual":
        return Refusal(source, item_id, f"status {status!r} is not an actual alert")
    message_type = props.get("messageType")
    if message_type not in _MESSAGE_TYPES:
        return Refusal(source, item_id, f"messageType {message_type!r} is not one of "
                                        f"{', '.join(_MESSAGE_TYPES)}")
    try:
        published = _iso_time(props.get("sent"), "sent")
        expires_raw = props.get("ends") or props.get("expires")
        expires = _iso_time(expires_raw, "expires") if expires_raw else None
    except ValueError as exc:
        return Refusal(source, item_id, str(exc))
    return NewsItem(source, item_id, "nws_alert", _clip(props.get("headline")), published,
                    summary=_clip(str(props.get("description") or ""))[:MAX_TEXT_CHARS],
                    url=str(props.get("@id") or ""), event=_clip(props.get("event")),
                    message_type=message_type, references=_references(props),
                    zones=_zones(props), expires=expires)


def parse_alerts(data: bytes, source: str, *, max_bytes: int = MAX_FEED_BYTES) -> FeedParse:
    """Parse an NWS ``/alerts`` GeoJSON FeatureCollection (or one Feature)."""
    doc = _json_doc(data, source, max_bytes)
    if isinstance(doc, Mapping) and doc.get("type") == "Feature":
        features: Any = [doc]
    elif isinstance(doc, Mapping) and isinstance(doc.get("features"), list):
        features = doc["features"]
    else:
        raise NewsParseError(f"{source}: expected a GeoJSON FeatureCollection with 'features'")
    return _split([_alert(source, f, i) for i, f in enumerate(features)])


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise NewsParseError(f"push item: {what} must be a list of strings, got {value!r}")
    return tuple(value)


def parse_push(data: bytes, *, max_bytes: int = 256_000) -> FeedParse:
    """Parse a body POSTed to the webhook: a vendor item object (or a list of them), or an
    NWS alert Feature/FeatureCollection (``"type"`` present)."""
    doc = _json_doc(data, "push", max_bytes)
    if isinstance(doc, Mapping) and "type" in doc:
        return parse_alerts(data, str(doc.get("source") or "nws-alerts-push"),
                            max_bytes=max_bytes)
    entries = doc if isinstance(doc, list) else [doc]
    found: list[NewsItem | Refusal] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise NewsParseError(f"push item [{index}]: expected a JSON object, got "
                                 f"{type(entry).__name__}")
        found.append(_push_item(entry, index))
    return _split(found)


def _push_item(entry: Mapping[str, Any], index: int) -> NewsItem | Refusal:
    source = str(entry.get("source") or "").strip()
    item_id = str(entry.get("id") or "").strip()
    if not source or not item_id:
        return Refusal(source or "push", item_id or f"[{index}]",
                       "push item: 'source' and 'id' are required")
    message_type = entry.get("message_type", "Alert")
    if message_type not in _MESSAGE_TYPES:
        return Refusal(source, item_id, f"message_type {message_type!r} is not one of "
                                        f"{', '.join(_MESSAGE_TYPES)}")
    try:
        published = _iso_time(entry.get("published"), "published")
        return NewsItem(source, item_id, "push", _clip(entry.get("title")), published,
                        summary=_clip(entry.get("summary")), url=str(entry.get("url") or ""),
                        event=_clip(entry.get("event")), message_type=message_type,
                        references=_str_list(entry.get("references"), "references"),
                        zones=_str_list(entry.get("zones"), "zones"),
                        tickers=_str_list(entry.get("tickers"), "tickers"))
    except (ValueError, NewsParseError) as exc:
        return Refusal(source, item_id, str(exc))


def novelty(item: NewsItem, *, seen_before: bool) -> Novelty:
    """Return what a fetched item means: a repeat, a new alert, an update or a cancel."""
    if seen_before:
        return "duplicate"
    if item.message_type == "Cancel":
        return "cancel"
    if item.message_type == "Update":
        return "update"
    return "new"


def thread_of(item: NewsItem, known_threads: Mapping[str, str]) -> str:
    """Return the id of the alert thread `item` belongs to (its first alert's id).

    `known_threads` maps stored item ids to their thread; an update or cancel whose references
    are unknown starts from its oldest reference.
    """
    for ref in item.references:
        if ref in known_threads:
            return known_threads[ref]
    return item.references[0] if item.references else item.item_id
