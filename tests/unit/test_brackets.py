"""Bracket parsing, partition and settlement, reproduced on every settled real event."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.brackets import (
    Bracket,
    BracketError,
    event_settlement_value,
    parse_bracket,
    parse_expiration_value,
    partition_problem,
    settle,
    winning_bracket,
)

SERIES = ("KXHIGHNY", "KXHIGHCHI", "KXHIGHMIA", "KXHIGHAUS", "KXHIGHDEN")


def _events(shared_data):
    for series in SERIES:
        path = shared_data / "kalshi/weather-events-2024-25" / f"{series}_events.jsonl.gz"
        with gzip.open(path, "rt") as fh:
            for line in fh:
                yield json.loads(line)


@pytest.mark.shared_data
def test_settlement_all_real_settled_events_reproduced(shared_data):
    settled = reproduced = free_text = 0
    for doc in _events(shared_data):
        markets = doc["markets"]
        if not all(m["result"] in ("yes", "no") for m in markets):
            continue
        settled += 1
        brackets = [parse_bracket(m) for m in markets]
        assert partition_problem(brackets) is None, doc["event"]["event_ticker"]
        value = event_settlement_value(markets)
        assert value is not None, doc["event"]["event_ticker"]
        free_text += value.free_text is not None
        results = [settle(b, value.value) for b in brackets]
        assert results == [m["result"] for m in markets], doc["event"]["event_ticker"]
        reproduced += 1
    assert (settled, reproduced) == (1170, 1170)
    assert free_text == 1  # KXHIGHMIA-24NOV05: "84. Although the Daily Climate Report ..."


@pytest.mark.shared_data
def test_brackets_strikes_absent_subtitle_used_for_125_markets(shared_data):
    no_strikes = [m for doc in _events(shared_data) for m in doc["markets"]
                  if m.get("strike_type") is None]
    assert len(no_strikes) == 125
    assert all(parse_bracket(m).label == m["yes_sub_title"] for m in no_strikes)


def test_bracket_strike_types_follow_kalshi_rules():
    less = parse_bracket({"ticker": "T84", "strike_type": "less", "cap_strike": 84,
                          "yes_sub_title": "83° or below"})
    between = parse_bracket({"ticker": "B84.5", "strike_type": "between", "floor_strike": 84,
                             "cap_strike": 85, "yes_sub_title": "84° to 85°"})
    greater = parse_bracket({"ticker": "T85", "strike_type": "greater", "floor_strike": 85,
                             "yes_sub_title": "86° or above"})
    assert (less.lo, less.hi) == (None, 83)
    assert (between.lo, between.hi) == (84, 85)
    assert (greater.lo, greater.hi) == (86, None)
    assert partition_problem([greater, less, between]) is None
    assert [settle(b, 85) for b in (less, between, greater)] == ["no", "yes", "no"]


def test_bracket_subtitle_disagreeing_with_strikes_is_refused():
    with pytest.raises(BracketError, match="yes_sub_title"):
        parse_bracket({"ticker": "X", "strike_type": "less", "cap_strike": 84,
                       "yes_sub_title": "84° or below"})


def test_bracket_unreadable_subtitle_is_refused_with_value():
    with pytest.raises(BracketError, match="'warm'"):
        parse_bracket({"ticker": "X", "yes_sub_title": "warm"})


@pytest.mark.parametrize(
    ("bounds", "problem"),
    [
        ([(None, 80), (81, 82), (84, None)], "gap"),
        ([(None, 80), (80, 82), (83, None)], "overlap"),
        ([(79, 80), (81, None)], "no lower tail"),
        ([(None, 80), (81, 82)], "no upper tail"),
        ([], "no brackets"),
    ],
)
def test_partition_broken_event_reports_problem(bounds, problem):
    brackets = [Bracket(lo if lo is not None else hi - 10_000, f"M{i}", lo, hi)
                for i, (lo, hi) in enumerate(bounds)]
    assert problem in (partition_problem(brackets) or "")


@given(st.integers(-30, 120), st.lists(st.integers(1, 4), min_size=1, max_size=6),
       st.integers(-60, 130))
def test_partition_generated_event_settles_exactly_one_bracket(start, widths, value):
    edges = [start]
    for w in widths:
        edges.append(edges[-1] + w)
    brackets = [Bracket(start - 10_000, "low", None, start - 1)]
    brackets += [Bracket(a, f"B{a}", a, b - 1) for a, b in zip(edges, edges[1:], strict=False)]
    brackets.append(Bracket(edges[-1], "high", edges[-1], None))
    assert partition_problem(brackets) is None
    assert sum(settle(b, value) == "yes" for b in brackets) == 1
    assert winning_bracket(brackets, value).contains(value)


@pytest.mark.parametrize(("text", "value"), [("84.00", 84), ("-3", -3), ("101.00", 101)])
def test_expiration_value_numeric_parses(text, value):
    assert parse_expiration_value(text).value == value


def test_expiration_value_prose_keeps_the_text():
    parsed = parse_expiration_value("84. Although the Daily Climate Report was not finalized")
    assert parsed.value == 84
    assert parsed.free_text is not None


@pytest.mark.parametrize("text", ["84.5", "about 84", "", "N/A"])
def test_expiration_value_unreadable_is_refused(text):
    with pytest.raises(BracketError, match="expiration_value"):
        parse_expiration_value(text)


def test_event_settlement_value_disagreement_is_refused():
    with pytest.raises(BracketError, match="disagree"):
        event_settlement_value([{"ticker": "A", "expiration_value": "84.00"},
                                {"ticker": "B", "expiration_value": "85.00"}])
