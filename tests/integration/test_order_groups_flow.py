"""The weather trading flow with order groups, under Prefect against the paper exchange and the
loopback NWS stand-in: its orders carry the strategy's group; a burst of fills reaching the
group's limit makes the exchange cancel the rest, the next run places nothing and halts, and only
an explicit resume (which resets the group) lets orders flow again."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.trade_weather import trade_weather
from tasks.order_groups import strategy_groups
from tasks.safety import list_halts, resume_task
from tasks.settings import load_settings
from tasks.trading import ledger
from tests.integration._trading_helpers import Venue, trading_venue

SERIES = ["KXHIGHNY"]
LIMIT = 1
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory):
    with trading_venue(tmp_path_factory.mktemp("groups"), series=SERIES, min_volume=1) as running:
        running.stop_liquidity()  # books stay put: each cycle sees only its own changes
        yield running


@pytest.fixture
def settings_env(venue: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    venue.new_account(f"groups-{tmp_path.name}"[:40], tmp_path)
    db_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    env = venue.env(db_url, EVENTDESK_ORDER_GROUP_CONTRACTS_LIMIT=str(LIMIT))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_settings(fresh=True)
    yield db_url
    monkeypatch.undo()
    load_settings(fresh=True)


def _burst(venue: Venue, contracts: int) -> int:
    # another trader takes our resting orders until `contracts` have matched; return the matched
    matched = 0
    with venue.client() as ours, venue.other_client() as other:
        for order in ours.iter_orders(status="resting"):
            if matched >= contracts or order.status != "resting":
                continue
            take = "ask" if order.book_side == "bid" else "bid"
            ack = other.place_order(order.ticker, take, contracts - matched,
                                    order.yes_price_cents, client_order_id=f"burst-{next(_ids)}",
                                    time_in_force="immediate_or_cancel")
            matched += int(ack.fill_count or 0)
    return matched


def test_trade_weather_group_volume_halts_next_run_places_nothing_until_resume(
        venue: Venue, settings_env: str, prefect_harness,
        monkeypatch: pytest.MonkeyPatch) -> None:
    as_of = datetime.now(UTC)
    venue.nws.bias_f.update({"KXHIGHNY": 1.5})

    # Run 1: every order the flow sends carries the strategy's group (limit: 1 contract / 15 s)
    first = trade_weather(as_of=as_of, series=SERIES, interval_s=60)
    sent = [o for o in first["outcomes"] if o[1] == "place"]
    assert sent, first["outcomes"]
    (group,) = strategy_groups(ledger(), "weather-v0")
    assert group.contracts_limit == LIMIT
    with venue.client() as client:
        accepted = list(client.iter_orders())
    assert accepted
    assert {o.order_group_id for o in accepted} == {group.order_group_id}

    # Volume reaches the limit (run 1's own taking, or another trader taking a resting quote):
    # the exchange triggers the group and cancels whatever of it rests
    _burst(venue, LIMIT)
    with venue.client() as client:
        assert list(client.iter_orders(status="resting")) == []

    # Run 2 places nothing; the refusal was not resent and the halt names the strategy
    second = trade_weather(as_of=as_of + timedelta(seconds=60), series=SERIES, interval_s=60)
    assert not [o for o in second["outcomes"] if o[3] in ("resting", "executed")], second
    (halt,) = list_halts(ledger())
    assert halt.reason.startswith("order-group triggered: weather-v0 (")
    assert "order_group_limit_exceeded" in halt.reason
    with venue.client() as client:
        assert list(client.iter_orders(status="resting")) == []

    # The operator raises the limit and resumes: the halt is cleared, the group reset, and
    # run 3 places orders again in the same group (its limit updated at the exchange)
    monkeypatch.setenv("EVENTDESK_ORDER_GROUP_CONTRACTS_LIMIT", "1000")
    load_settings(fresh=True)
    # (80-odd contracts offered, 1 filled: the fill-rate breaker would refuse; it wants a
    # longer history than this test has, so its minimum sample is raised)
    assert resume_task.fn("volume reviewed, limit raised", "test", datetime.now(UTC), {}, {},
                          {"min_offered_contracts": 100_000}) == [halt.halt_id]
    third = trade_weather(as_of=as_of + timedelta(seconds=120), series=SERIES, interval_s=60)
    assert Counter(o[3] for o in third["outcomes"])["resting"] >= 1, third["outcomes"]
    with venue.client() as client:
        again = list(client.iter_orders(status="resting"))
        assert client.get_order_group(group.order_group_id).contracts_limit == 1000
    assert again
    assert {o.order_group_id for o in again} == {group.order_group_id}
    assert list_halts(ledger()) == []
