"""Temperature brackets of a Kalshi weather event and their settlement.

Invariant: a bracket is a closed range of whole degrees [lo, hi] (either end open for tails),
read from `strike_type`/`floor_strike`/`cap_strike` (the `yes_sub_title` must agree) or, when
the strikes are absent, from `yes_sub_title` alone; an event is priced only when its brackets
partition the integers exactly once, so exactly one bracket settles YES for any report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "Bracket",
    "BracketError",
    "SettlementValue",
    "event_settlement_value",
    "parse_bracket",
    "parse_expiration_value",
    "partition_problem",
    "settle",
    "winning_bracket",
]


class BracketError(ValueError):
    """A market whose bracket or settlement value cannot be read unambiguously."""


@dataclass(frozen=True, order=True)
class Bracket:
    """Whole-degree range [lo, hi]; None is an open end (a tail)."""

    sort_key: int
    ticker: str
    lo: int | None
    hi: int | None

    def contains(self, value: int) -> bool:
        """Return whether the whole-degree `value` settles this bracket YES."""
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)

    @property
    def label(self) -> str:
        """Human label in Kalshi's style ("83° to 84°", "86° or above", "79° or below")."""
        if self.lo is None:
            return f"{self.hi}° or below"
        if self.hi is None:
            return f"{self.lo}° or above"
        return f"{self.lo}° to {self.hi}°"


_SUB_BETWEEN = re.compile(r"^\s*(-?\d+)°\s*to\s*(-?\d+)°\s*$")
_SUB_ABOVE = re.compile(r"^\s*(-?\d+)°\s*or above\s*$")
_SUB_BELOW = re.compile(r"^\s*(-?\d+)°\s*or below\s*$")


def _strike(market: Mapping[str, Any], field: str) -> Decimal:
    raw = market.get(field)
    if raw is None or isinstance(raw, bool):
        raise BracketError(f"{market.get('ticker')}: {field} missing for strike_type "
                           f"{market.get('strike_type')!r}")
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise BracketError(f"{market.get('ticker')}: {field}={raw!r} is not a number") from None


def _from_subtitle(ticker: str, text: str) -> tuple[int | None, int | None]:
    if m := _SUB_BETWEEN.match(text):
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo > hi:
            raise BracketError(f"{ticker}: yes_sub_title={text!r} has lo > hi")
        return lo, hi
    if m := _SUB_ABOVE.match(text):
        return int(m.group(1)), None
    if m := _SUB_BELOW.match(text):
        return None, int(m.group(1))
    raise BracketError(f"{ticker}: yes_sub_title={text!r} is not a temperature bracket")


def _from_strikes(market: Mapping[str, Any]) -> tuple[int | None, int | None]:
    ticker, kind = market.get("ticker"), market.get("strike_type")
    if kind == "between":  # floor <= v <= cap over whole degrees
        floor, cap = _strike(market, "floor_strike"), _strike(market, "cap_strike")
        lo, hi = math.ceil(floor), math.floor(cap)
        if lo > hi:
            raise BracketError(f"{ticker}: between {floor}..{cap} holds no whole degree")
        return lo, hi
    if kind == "less":  # v < cap
        return None, math.ceil(_strike(market, "cap_strike")) - 1
    if kind == "greater":  # v > floor
        return math.floor(_strike(market, "floor_strike")) + 1, None
    raise BracketError(f"{ticker}: strike_type={kind!r} is not between/less/greater")


def parse_bracket(market: Mapping[str, Any]) -> Bracket:
    """Read one market's bracket; strikes and subtitle must agree when both are present."""
    ticker = str(market.get("ticker") or "")
    if not ticker:
        raise BracketError(f"market without ticker: {dict(market)!r:.120}")
    subtitle = market.get("yes_sub_title") or market.get("subtitle") or ""
    from_sub = _from_subtitle(ticker, str(subtitle)) if subtitle else None
    if market.get("strike_type") is not None:
        lo, hi = _from_strikes(market)
        if from_sub is not None and from_sub != (lo, hi):
            raise BracketError(f"{ticker}: strikes give {(lo, hi)} but yes_sub_title="
                               f"{subtitle!r} gives {from_sub}")
    elif from_sub is not None:
        lo, hi = from_sub
    else:
        raise BracketError(f"{ticker}: neither strike_type nor yes_sub_title present")
    sort_key = lo if lo is not None else (hi if hi is not None else 0) - 10_000
    return Bracket(sort_key, ticker, lo, hi)


def partition_problem(brackets: Sequence[Bracket]) -> str | None:
    """Return why `brackets` do not cover every integer exactly once, or None if they do."""
    if not brackets:
        return "event has no brackets"
    ordered = sorted(brackets)
    if ordered[0].lo is not None:
        return f"no lower tail: lowest bracket {ordered[0].ticker} starts at {ordered[0].lo}"
    if ordered[-1].hi is not None:
        return f"no upper tail: highest bracket {ordered[-1].ticker} ends at {ordered[-1].hi}"
    for left, right in zip(ordered, ordered[1:], strict=False):
        if left.hi is None or right.lo is None:
            return f"open end inside the event between {left.ticker} and {right.ticker}"
        if right.lo != left.hi + 1:
            kind = "gap" if right.lo > left.hi + 1 else "overlap"
            return f"{kind} between {left.ticker} (..{left.hi}) and {right.ticker} ({right.lo}..)"
    return None


def settle(bracket: Bracket, value: int) -> str:
    """Return the market result ("yes"/"no") for a whole-degree settlement value."""
    return "yes" if bracket.contains(value) else "no"


def winning_bracket(brackets: Iterable[Bracket], value: int) -> Bracket:
    """Return the single bracket that contains `value` (raises if none or several do)."""
    hits = [b for b in brackets if b.contains(value)]
    if len(hits) != 1:
        raise BracketError(f"value {value} falls in {len(hits)} brackets: "
                           f"{[b.ticker for b in hits]}")
    return hits[0]


@dataclass(frozen=True)
class SettlementValue:
    """A settled whole-degree value and, when it was read from prose, the prose it came from."""

    value: int
    free_text: str | None = None


_NUMERIC = re.compile(r"^-?\d+(\.0+)?$")
# Kalshi once published "84. Although the Daily Climate Report was not finalized ...": a leading
# whole number, a full stop, then an explanation. Only exactly that shape is accepted.
_PROSE = re.compile(r"^(-?\d+)\.\s+[A-Za-z]")


def parse_expiration_value(text: str) -> SettlementValue:
    """Read a market's `expiration_value` as a whole degree; refuse anything else."""
    stripped = text.strip()
    if _NUMERIC.match(stripped):
        return SettlementValue(int(Decimal(stripped)))
    if m := _PROSE.match(stripped):
        return SettlementValue(int(m.group(1)), free_text=stripped)
    raise BracketError(f"expiration_value={text[:80]!r} is not a whole-degree value")


def event_settlement_value(markets: Sequence[Mapping[str, Any]]) -> SettlementValue | None:
    """Return the event's settlement value (all non-empty values must agree), None if unset."""
    values = {str(m.get("ticker")): parse_expiration_value(str(m["expiration_value"]))
              for m in markets if str(m.get("expiration_value") or "").strip()}
    if not values:
        return None
    distinct = {v.value for v in values.values()}
    if len(distinct) != 1:
        raise BracketError(f"markets disagree on the settlement value: "
                           f"{ {t: v.value for t, v in values.items()} }")
    prose = [v for v in values.values() if v.free_text]
    return prose[0] if prose else next(iter(values.values()))
