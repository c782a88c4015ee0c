"""News rules: a versioned, user-editable YAML table from news items to trading actions. Pure.

Invariants:
- A rule file is accepted whole or not at all: any error is a ``RuleFileError`` carrying the
  1-based line and the reason, and ``reload_rules`` then keeps the previous good ``RuleSet``.
- Weather alerts match on the settlement station's NWS zones (``models.climate.STATION_ZONES``),
  never on a city name: a rule with ``geography: settlement`` fires for a series only when the
  alert's UGC codes include a zone of that series' settlement station.
- A ``shift`` is a log-odds shift of the model probability bounded per rule (``MAX_RULE_WEIGHT``)
  and in total (``MAX_TOTAL_SHIFT``); it decays linearly to zero over its TTL, an update of the
  alert thread replaces it and a cancel removes it. A ``refresh`` re-prices the markets now.

File format (``models/default_news_rules.yaml``)::

    version: 1
    rules:
      - id: heat-kxhigh
        source: nws-alerts          # glob on the item's source
        pattern: "(?i)heat advisory"  # regex searched in the item's `field` (default text)
        field: event                # event | title | text
        geography: settlement       # settlement | any | [station ICAO or UGC zone, ...]
        series: [KXHIGH*]           # globs over the registry for geographic rules
        effect: refresh             # refresh | shift
        weight: 0.0                 # log-odds shift (shift only)
        ttl: 6h                     # how long a shift lasts (s, m, h or seconds)
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, Final, Literal

import yaml
from yaml.nodes import MappingNode

from models.climate import STATION_ZONES, STATIONS
from models.news import NewsItem, Novelty

__all__ = [
    "MAX_RULE_WEIGHT",
    "MAX_TOTAL_SHIFT",
    "ActiveShift",
    "Firing",
    "Rule",
    "RuleFileError",
    "RuleSet",
    "apply_firings",
    "load_rules",
    "match_item",
    "reload_rules",
    "shift_probability",
    "thin_book_reason",
    "total_shift",
]

MAX_RULE_WEIGHT: Final = 1.5  # log-odds: 0.50 -> 0.82 at most from one rule
MAX_TOTAL_SHIFT: Final = 2.0  # all active shifts of one series together
_PROB_FLOOR: Final = 1e-4
_KEYS: Final = frozenset({"id", "source", "pattern", "field", "geography", "series", "effect",
                          "weight", "ttl"})
_REQUIRED: Final = ("id", "source", "pattern", "series", "effect")
_TTL: Final = re.compile(r"^(\d+)\s*([smh]?)$")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600}
_TICKER: Final = re.compile(r"^[A-Z0-9][A-Z0-9*?\-.]*$")

Effect = Literal["refresh", "shift"]
Field = Literal["event", "title", "text"]


class RuleFileError(ValueError):
    """A rule file that cannot be used; ``line`` is 1-based (0 when the file is empty)."""

    def __init__(self, origin: str, line: int, reason: str) -> None:
        super().__init__(f"{origin}:{line}: {reason}")
        self.origin, self.line, self.reason = origin, line, reason


@dataclass(frozen=True)
class Rule:
    """One row of the table."""

    rule_id: str
    source: str
    pattern: re.Pattern[str]
    field: Field
    geography: tuple[str, ...] | Literal["settlement", "any"]
    series: tuple[str, ...]
    effect: Effect
    weight: float
    ttl_s: int
    line: int


@dataclass(frozen=True)
class RuleSet:
    """A loaded rule file: its version, its rules and the digest of its text."""

    version: int
    rules: tuple[Rule, ...]
    digest: str
    origin: str


@dataclass(frozen=True)
class Firing:
    """One rule fired by one item: what to do to which series (and vendor-tagged markets)."""

    rule_id: str
    effect: Effect
    series: tuple[str, ...]
    weight: float
    ttl_s: int
    tickers: tuple[str, ...]
    reason: str

    def describe(self) -> str:
        """One line for the CLI and logs."""
        what = ("refresh the model" if self.effect == "refresh"
                else f"shift log-odds by {self.weight:+.2f} decaying over {self.ttl_s}s")
        only = f" (markets {', '.join(self.tickers)})" if self.tickers else ""
        return f"{self.rule_id}: {what} for {', '.join(self.series)}{only}: {self.reason}"


@dataclass(frozen=True)
class ActiveShift:
    """A shift in force: started by `thread_id` under `rule_id` for `series`."""

    thread_id: str
    rule_id: str
    series: str
    weight: float
    start: datetime
    ttl_s: int
    tickers: tuple[str, ...] = ()


# -- loading ---------------------------------------------------------------------------------

class _Located(dict[Any, Any]):
    # a YAML mapping that remembers its own line and each key's line (1-based)
    line = 0
    key_lines: dict[Any, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_located(loader: _LineLoader, node: MappingNode) -> _Located:
    located = _Located()
    located.line = node.start_mark.line + 1
    located.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in located:
            raise RuleFileError("", key_node.start_mark.line + 1, f"duplicate key {key!r}")
        located[key] = loader.construct_object(value_node, deep=True)
        located.key_lines[key] = value_node.start_mark.line + 1
    return located


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_located)


def _ttl_seconds(value: Any, origin: str, line: int) -> int:
    if isinstance(value, bool):
        raise RuleFileError(origin, line, f"ttl: expected seconds or '30m'/'6h', got {value!r}")
    match = _TTL.match(str(value).strip())
    if match is None:
        raise RuleFileError(origin, line, f"ttl: expected seconds or '30m'/'6h', got {value!r}")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not 60 <= seconds <= 7 * 86_400:
        raise RuleFileError(origin, line, f"ttl: {seconds}s is outside 1 minute .. 7 days")
    return seconds


def _rule(entry: Any, origin: str, index_line: int, seen: set[str]) -> Rule:
    if not isinstance(entry, _Located):
        raise RuleFileError(origin, index_line, f"rule: expected a mapping, got {entry!r}")
    line = entry.line

    def at(key: str) -> int:
        return entry.key_lines.get(key, line)

    unknown = sorted(str(k) for k in entry if k not in _KEYS)
    if unknown:
        raise RuleFileError(origin, at(unknown[0]), f"unknown key {unknown[0]!r} (allowed: "
                                                    f"{', '.join(sorted(_KEYS))})")
    for key in _REQUIRED:
        if key not in entry:
            raise RuleFileError(origin, line, f"rule: missing required key {key!r}")
    rule_id = entry["id"]
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise RuleFileError(origin, at("id"), f"id: expected a non-empty string, got {rule_id!r}")
    if rule_id in seen:
        raise RuleFileError(origin, at("id"), f"id: {rule_id!r} is used twice")
    seen.add(rule_id)
    source = entry["source"]
    if not isinstance(source, str) or not source:
        raise RuleFileError(origin, at("source"), f"source: expected a glob, got {source!r}")
    try:
        pattern = re.compile(str(entry["pattern"]))
    except re.error as exc:
        raise RuleFileError(origin, at("pattern"), f"pattern: invalid regex: {exc}") from None
    field = entry.get("field", "text")
    if field not in ("event", "title", "text"):
        raise RuleFileError(origin, at("field"), f"field: expected event, title or text, "
                                                 f"got {field!r}")
    geography = _geography(entry.get("geography", "any"), origin, at("geography"))
    series = entry["series"]
    if isinstance(series, str):
        series = [series]
    if (not isinstance(series, list) or not series
            or not all(isinstance(s, str) and _TICKER.match(s) for s in series)):
        raise RuleFileError(origin, at("series"), f"series: expected a list of series tickers "
                                                  f"or globs, got {entry['series']!r}")
    if geography == "any" and any(("*" in s or "?" in s) for s in series):
        raise RuleFileError(origin, at("series"), "series: globs need a geography (settlement "
                                                  "or a zone list); name the series exactly")
    effect = entry["effect"]
    if effect not in ("refresh", "shift"):
        raise RuleFileError(origin, at("effect"), f"effect: expected refresh or shift, "
                                                  f"got {effect!r}")
    weight = entry.get("weight", 0.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or math.isnan(weight):
        raise RuleFileError(origin, at("weight"), f"weight: expected a number, got {weight!r}")
    if effect == "shift" and not 0 < abs(weight) <= MAX_RULE_WEIGHT:
        raise RuleFileError(origin, at("weight"), f"weight: a shift needs 0 < |weight| <= "
                                                  f"{MAX_RULE_WEIGHT} (log-odds), got {weight}")
    if effect == "refresh" and weight != 0:
        raise RuleFileError(origin, at("weight"), f"weight: a refresh takes no weight, "
                                                  f"got {weight}")
    if effect == "shift" and "ttl" not in entry:
        raise RuleFileError(origin, line, "ttl: a shift needs a ttl")
    ttl_s = _ttl_seconds(entry.get("ttl", 3600), origin, at("ttl"))
    return Rule(rule_id, source, pattern, field, geography, tuple(series), effect,
                float(weight), ttl_s, line)


def _geography(value: Any, origin: str, line: int) -> tuple[str, ...] | Literal["settlement",
                                                                                 "any"]:
    if value == "settlement":
        return "settlement"
    if value == "any":
        return "any"
    known_icao = {s.icao for s in STATIONS.values()}
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        for code in value:
            if code not in known_icao and not re.match(r"^[A-Z]{2}[CZ]\d{3}$", code):
                raise RuleFileError(origin, line, f"geography: {code!r} is neither a registered "
                                                  "station ICAO nor an NWS UGC zone (NYZ072)")
        return tuple(value)
    raise RuleFileError(origin, line, f"geography: expected settlement, any or a list of "
                                      f"stations/zones, got {value!r}")


def load_rules(text: str, *, origin: str = "<rules>") -> RuleSet:
    """Parse and validate a rule file; raise RuleFileError with the line and reason."""
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except RuleFileError as exc:
        raise RuleFileError(origin, exc.line, exc.reason) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise RuleFileError(origin, line, f"YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise RuleFileError(origin, 0, f"YAML: {exc}") from None
    if not isinstance(doc, _Located):
        raise RuleFileError(origin, 1 if text.strip() else 0,
                            "expected a mapping with 'version' and 'rules'")
    extra = sorted(str(k) for k in doc if k not in ("version", "rules"))
    if extra:
        raise RuleFileError(origin, doc.key_lines[extra[0]], f"unknown top-level key {extra[0]!r}")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RuleFileError(origin, doc.key_lines.get("version", doc.line),
                            f"version: expected an integer >= 1, got {version!r}")
    entries = doc.get("rules")
    if not isinstance(entries, list):
        raise RuleFileError(origin, doc.key_lines.get("rules", doc.line),
                            "rules: expected a list of rules")
    seen: set[str] = set()
    line = doc.key_lines.get("rules", doc.line)
    rules = tuple(_rule(e, origin, line, seen) for e in entries)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return RuleSet(version, rules, digest, origin)


def reload_rules(current: RuleSet | None, text: str, *,
                 origin: str = "<rules>") -> tuple[RuleSet | None, RuleFileError | None]:
    """Return (rules in force, error): the new rules, or the previous ones and why not."""
    try:
        return load_rules(text, origin=origin), None
    except RuleFileError as exc:
        return current, exc


# -- matching --------------------------------------------------------------------------------

def _zones_of(codes: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for code in codes:
        out.update(STATION_ZONES.get(code, (code,)))
    return out


def _field_text(item: NewsItem, field: Field) -> str:
    return item.event if field == "event" else item.title if field == "title" else item.text


def _series_for(rule: Rule, item: NewsItem) -> tuple[tuple[str, ...], str]:
    # the concrete series a rule targets for this item, and the geographic reason
    if rule.geography == "any":
        return rule.series, "no geography"
    zones = set(item.zones)
    explicit = None if rule.geography == "settlement" else _zones_of(rule.geography)
    hits: list[str] = []
    matched: set[str] = set()
    for series, station in sorted(STATIONS.items()):
        if not any(fnmatchcase(series, glob) for glob in rule.series):
            continue
        station_zones = set(STATION_ZONES.get(station.icao, ()))
        if explicit is not None:
            station_zones &= explicit
        common = zones & station_zones
        if common:
            hits.append(series)
            matched.update(common)
    if explicit is not None:  # exact series outside the registry, on the listed zones
        exact = [s for s in rule.series if "*" not in s and "?" not in s and s not in STATIONS]
        if exact and zones & explicit:
            hits += exact
            matched.update(zones & explicit)
    return tuple(hits), f"zones {', '.join(sorted(matched))}"


def match_item(item: NewsItem, rules: RuleSet) -> tuple[Firing, ...]:
    """Return the firings of `item` under `rules`, in file order."""
    out: list[Firing] = []
    for rule in rules.rules:
        if not fnmatchcase(item.source, rule.source):
            continue
        found = rule.pattern.search(_field_text(item, rule.field))
        if found is None:
            continue
        series, where = _series_for(rule, item)
        if not series:
            continue
        reason = f"{rule.field} matched {found.group(0)!r}; {where}; rules v{rules.version}"
        out.append(Firing(rule.rule_id, rule.effect, series, rule.weight, rule.ttl_s,
                          item.tickers, reason))
    return tuple(out)


# -- shifts ----------------------------------------------------------------------------------

def apply_firings(active: Sequence[ActiveShift], firings: Sequence[Firing], *, thread_id: str,
                  kind: Novelty, as_of: datetime) -> tuple[ActiveShift, ...]:
    """Return the shifts in force after an item of `thread_id` (new, update, cancel) fired.

    A cancel removes every shift of its thread; an update replaces the thread's shifts by the
    ones it fires; a new item adds its shifts (replacing a same-thread, same-rule one).
    """
    if kind == "duplicate":
        return tuple(active)
    if kind in ("cancel", "update"):
        kept = [s for s in active if s.thread_id != thread_id]
    else:
        fired = {f.rule_id for f in firings}
        kept = [s for s in active if not (s.thread_id == thread_id and s.rule_id in fired)]
    if kind == "cancel":
        return tuple(kept)
    for firing in firings:
        if firing.effect != "shift":
            continue
        kept += [ActiveShift(thread_id, firing.rule_id, series, firing.weight, as_of,
                             firing.ttl_s, firing.tickers) for series in firing.series]
    return tuple(kept)


def total_shift(active: Sequence[ActiveShift], series: str, ticker: str,
                as_of: datetime) -> float:
    """Return the bounded, decayed log-odds shift in force for one market at `as_of`."""
    total = 0.0
    for shift in active:
        if shift.series != series or (shift.tickers and ticker not in shift.tickers):
            continue
        elapsed = (as_of - shift.start).total_seconds()
        if elapsed < 0 or elapsed >= shift.ttl_s:
            continue
        total += shift.weight * (1.0 - elapsed / shift.ttl_s)
    return max(-MAX_TOTAL_SHIFT, min(MAX_TOTAL_SHIFT, total))


def shift_probability(prob: float, shift: float) -> float:
    """Return `prob` moved by `shift` in log-odds (kept inside (0, 1))."""
    if not 0.0 <= prob <= 1.0 or math.isnan(prob):
        raise ValueError(f"prob: expected a probability in [0, 1], got {prob!r}")
    p = min(max(prob, _PROB_FLOOR), 1.0 - _PROB_FLOOR)
    logit = math.log(p / (1.0 - p)) + shift
    return 1.0 / (1.0 + math.exp(-logit))


def thin_book_reason(yes_counts: Sequence[int], no_counts: Sequence[int], *,
                     min_depth_contracts: int) -> str | None:
    """Return why a book is too thin to act on a headline (None if deep enough).

    Both sides must hold at least `min_depth_contracts` resting contracts: a one-sided or
    near-empty book moves on our own order and is where headline trades lose.
    """
    yes_depth, no_depth = sum(yes_counts), sum(no_counts)
    if min(yes_depth, no_depth) < min_depth_contracts:
        return (f"thin book: {yes_depth} YES / {no_depth} NO contracts resting, need "
                f"{min_depth_contracts} on each side")
    return None

