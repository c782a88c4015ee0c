"""models/news_rules.py: rule-file validation with lines, zone matching, bounded decaying shifts."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.news import NewsItem, parse_alerts
from models.news_rules import (
    MAX_TOTAL_SHIFT,
    RuleFileError,
    apply_firings,
    load_rules,
    match_item,
    reload_rules,
    shift_probability,
    thin_book_reason,
    total_shift,
)

T0 = datetime(2026, 7, 14, 14, 0, tzinfo=UTC)
DEFAULTS = Path(__file__).resolve().parents[2] / "models" / "default_news_rules.yaml"

GOOD = """\
version: 2
rules:
  - id: fed-cut
    source: fed-press
    pattern: "(?i)FOMC statement"
    field: title
    series: [KXFEDDECISION]
    effect: shift
    weight: 0.8
    ttl: 30m
"""


def _alerts(fixtures_dir: Path, name: str) -> tuple[NewsItem, ...]:
    return parse_alerts((fixtures_dir / "news" / name).read_bytes(), "nws-alerts").items


def test_load_rules_defaults_load_with_heat_freeze_flood_rules() -> None:
    rules = load_rules(DEFAULTS.read_text(), origin="defaults")
    assert {r.rule_id for r in rules.rules} >= {"heat-kxhigh", "freeze-kxhigh", "flood-kxrain"}
    assert rules.version == 1


@pytest.mark.parametrize(("text", "line", "reason"), [
    (GOOD.replace("effect: shift", "effect: buy"), 8, "effect: expected refresh or shift"),
    (GOOD.replace("weight: 0.8", "weight: 3.0"), 9, "0 < |weight| <= 1.5"),
    (GOOD.replace('"(?i)FOMC statement"', '"(unclosed"'), 5, "pattern: invalid regex"),
    (GOOD.replace("ttl: 30m", "ttl: soon"), 10, "ttl: expected seconds"),
    (GOOD.replace("    field: title\n", "    field: title\n    colour: red\n"), 7,
     "unknown key 'colour'"),
    (GOOD.replace("version: 2", "version: two"), 1, "version: expected an integer"),
    (GOOD + "  - id: fed-cut\n    source: x\n    pattern: y\n    series: [A]\n"
            "    effect: refresh\n", 11, "'fed-cut' is used twice"),
    (GOOD.replace("series: [KXFEDDECISION]", "series: [KXFED*]"), 7, "globs need a geography"),
    (GOOD.replace("    field: title\n", "    field: title\n    field: event\n"), 7,
     "duplicate key 'field'"),
    (GOOD.replace("    pattern:", "   pattern:"), 5, "YAML"),
    (GOOD.replace("    source: fed-press\n", ""), 3, "missing required key 'source'"),
])
def test_load_rules_bad_file_names_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        load_rules(text, origin="rules.yaml")
    assert caught.value.line == line, str(caught.value)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"rules.yaml:{line}: ")


def test_reload_rules_bad_file_keeps_previous_rules_in_force() -> None:
    good = load_rules(GOOD)
    kept, error = reload_rules(good, GOOD.replace("weight: 0.8", "weight: nine"))
    assert kept is good
    assert error is not None
    assert error.line == 9
    new, error = reload_rules(good, GOOD.replace("version: 2", "version: 3"))
    assert error is None
    assert new is not None
    assert new.version == 3


def test_match_item_nyc_heat_alert_refreshes_kxhighny_only(fixtures_dir: Path) -> None:
    rules = load_rules(DEFAULTS.read_text())
    alert = _alerts(fixtures_dir, "alerts_nyc_heat.json")[0]
    firings = match_item(alert, rules)
    assert [(f.rule_id, f.effect, f.series) for f in firings] == [
        ("heat-kxhigh", "refresh", ("KXHIGHNY",))]
    assert "NYZ072" in firings[0].reason


def test_match_item_city_name_without_station_zone_does_not_fire(fixtures_dir: Path) -> None:
    # same heat advisory text naming New York, but issued for Long Island zones only
    rules = load_rules(DEFAULTS.read_text())
    alert = _alerts(fixtures_dir, "alerts_nyc_heat.json")[0]
    elsewhere = NewsItem(alert.source, "li-1", "nws_alert", alert.title, alert.published,
                         summary=alert.summary, event=alert.event, zones=("NYZ078", "NYZ080"))
    assert "New York" in elsewhere.text
    assert match_item(elsewhere, rules) == ()


def test_match_item_real_oregon_flood_watch_matches_no_settlement_station(
        fixtures_dir: Path) -> None:
    rules = load_rules(DEFAULTS.read_text())
    for alert in _alerts(fixtures_dir, "alerts_active_zone_second.json"):
        assert match_item(alert, rules) == ()


def test_match_item_nyc_flood_watch_shifts_rain_and_refreshes_high(fixtures_dir: Path) -> None:
    rules = load_rules(DEFAULTS.read_text())
    flood = _alerts(fixtures_dir, "alerts_nyc_flood.json")[0]
    got = {(f.rule_id, f.effect, f.series, f.weight) for f in match_item(flood, rules)}
    assert got == {("flood-kxrain", "shift", ("KXRAINNYC",), 0.6),
                   ("flood-kxhigh", "refresh", ("KXHIGHNY",), 0.0)}


def test_apply_firings_update_replaces_and_cancel_removes_thread_shifts(
        fixtures_dir: Path) -> None:
    rules = load_rules(DEFAULTS.read_text())
    flood = _alerts(fixtures_dir, "alerts_nyc_flood.json")[0]
    firings = match_item(flood, rules)
    active = apply_firings((), firings, thread_id="t1", kind="new", as_of=T0)
    assert [(s.series, s.weight) for s in active] == [("KXRAINNYC", 0.6)]
    again = apply_firings(active, firings, thread_id="t1", kind="update",
                          as_of=T0 + timedelta(hours=1))
    assert len(again) == 1
    assert again[0].start == T0 + timedelta(hours=1)
    assert apply_firings(again, firings, thread_id="t1", kind="cancel", as_of=T0) == ()
    assert apply_firings(again, firings, thread_id="t1", kind="duplicate", as_of=T0) == again


def test_total_shift_decays_linearly_to_zero_at_ttl(fixtures_dir: Path) -> None:
    rules = load_rules(DEFAULTS.read_text())
    firings = match_item(_alerts(fixtures_dir, "alerts_nyc_flood.json")[0], rules)
    active = apply_firings((), firings, thread_id="t1", kind="new", as_of=T0)
    assert total_shift(active, "KXRAINNYC", "M", T0) == pytest.approx(0.6)
    assert total_shift(active, "KXRAINNYC", "M", T0 + timedelta(hours=3)) == pytest.approx(0.3)
    assert total_shift(active, "KXRAINNYC", "M", T0 + timedelta(hours=6)) == 0.0
    assert total_shift(active, "KXHIGHNY", "M", T0) == 0.0


@given(st.lists(st.floats(min_value=-1.5, max_value=1.5), max_size=12),
       st.floats(min_value=0.0, max_value=1.0))
def test_total_shift_any_stack_stays_bounded_and_probability_valid(weights, prob) -> None:
    from models.news_rules import ActiveShift

    active = [ActiveShift(f"t{i}", "r", "S", w, T0, 3600) for i, w in enumerate(weights)]
    shift = total_shift(active, "S", "M", T0)
    assert abs(shift) <= MAX_TOTAL_SHIFT
    moved = shift_probability(prob, shift)
    assert 0.0 < moved < 1.0
    base = min(max(prob, 1e-4), 1 - 1e-4)
    assert math.log(moved / (1 - moved)) - math.log(base / (1 - base)) == pytest.approx(
        shift, abs=1e-6)


def test_shift_probability_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="prob"):
        shift_probability(1.2, 0.5)


def test_thin_book_reason_one_sided_book_is_thin() -> None:
    assert thin_book_reason([50, 20], [], min_depth_contracts=10) is not None
    assert thin_book_reason([5, 4], [30], min_depth_contracts=10) is not None
    assert thin_book_reason([6, 4], [10], min_depth_contracts=10) is None
