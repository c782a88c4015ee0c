"""Fault drills against the paper exchange's fault injection: dropped acknowledgements after
acceptance, 5xx, 429, a process killed with SIGKILL between intent and acknowledgement, Prefect
task and flow retries, and two runs racing for one limit. Each drill counts the injected faults
and proves 0 duplicate orders and 0 lost fills by comparing the ledger with the exchange."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import select

from kalshi.errors import KalshiError
from models.edge import DesiredOrder
from models.ledger import ACTIVE_ORDER_STATUSES, DailyEquity, OrderRecord, RiskEvent
from models.orderkey import decision_slot
from models.risk import RiskLimits
from tasks.db import read_session
from tasks.gateway import Want, apply_orders, sync_exchange
from tasks.settings import load_settings
from tasks.trading import ledger
from tests.integration._trading_helpers import Venue, trading_venue
from tests.integration.test_trade_weather import assert_ledger_matches_exchange

REPO = Path(__file__).resolve().parents[2]
SERIES = ["KXHIGHNY", "KXHIGHMIA"]


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory):
    with trading_venue(tmp_path_factory.mktemp("drills"), series=SERIES) as running:
        yield running


@pytest.fixture
def ledger_env(venue: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    venue.new_account(f"drill-{tmp_path.name}"[:40], tmp_path)
    db_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    env = venue.env(db_url, EVENTDESK_KALSHI_MAX_RETRIES="1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_settings(fresh=True)
    yield env
    venue.set_faults(clear=True)
    monkeypatch.undo()
    load_settings(fresh=True)


def _assert_no_duplicates(venue: Venue) -> int:
    """Every exchange order is one ledger intent, and each intent reached the exchange once."""
    with venue.client() as client:
        orders = list(client.iter_orders())
    cids = Counter(o.client_order_id for o in orders)
    assert all(n == 1 for n in cids.values()), cids.most_common(3)
    with read_session(ledger()) as session:
        rows = list(session.exec(select(OrderRecord)))
    known = {r.client_order_id for r in rows}
    assert set(cids) <= known  # nothing reached the exchange without an intent first
    per_intent = Counter((r.market_ticker, r.side, r.created_ts_ms) for r in rows
                         if r.exchange_order_id is not None)
    assert all(n == 1 for n in per_intent.values()), per_intent.most_common(3)
    return len(orders)


def _resting_per_side(venue: Venue) -> Counter[tuple[str, str]]:
    with venue.client() as client:
        return Counter((o.ticker, o.book_side) for o in client.iter_orders(status="resting"))


def _wants(venue: Venue, tickers: list[str], cycle: int) -> list[Want]:
    wants = []
    for i, ticker in enumerate(tickers):
        book = venue.exchange.engine.book(ticker)
        if not book.yes or not book.no:
            continue
        best_bid, best_ask = book.yes[0][0], 100 - book.no[0][0]
        if (cycle + i) % 4 == 0 and best_ask < 99:  # a take: fills now
            order = DesiredOrder(ticker, "yes", best_ask, 1, "immediate_or_cancel", None, 5,
                                 True)
        elif (cycle + i) % 4 == 3:
            continue  # no order: cancel what rests
        else:  # rest at (or one below) the best bid: the noise taker fills some of these
            price = max(best_bid - (cycle + i) % 2, 1)
            order = DesiredOrder(ticker, "yes", price, 1 + cycle % 3, "good_till_canceled",
                                 None, 5, False)
        wants.append(Want(order, ticker.rsplit("-", 1)[0], "Climate and Weather", 100_000))
    return wants


def test_drills_gateway_under_injected_faults_no_duplicates_no_lost_fills(
        venue: Venue, ledger_env: dict[str, str]) -> None:
    engine = ledger()
    tickers = sorted(venue.exchange.market_tickers())[:8]
    before = venue.faults_seen.total
    venue.set_faults(error_rate=0.3, rate_limit_rate=0.3, drop_after_accept=0.6)
    start = datetime.now(UTC)
    cycles = retried = 0
    outcomes: Counter[tuple[str, str]] = Counter()
    with venue.client(retries=2) as client:
        while venue.faults_seen.total - before < 220:
            assert cycles < 400, f"only {venue.faults_seen.total - before} faults injected"
            as_of = start + timedelta(seconds=60 * cycles)
            for _attempt in range(10):  # a failed cycle is retried whole, as Prefect would
                try:
                    snapshot = sync_exchange(client, engine, as_of=as_of, resolve_after_s=0)
                    report = apply_orders(
                        client, engine, _wants(venue, tickers, cycles), managed_tickers=tickers,
                        snapshot=snapshot, strategy="drill", slot=decision_slot(as_of, 60),
                        as_of=as_of, equity_cents=1_000_000, limits=RiskLimits(), ttl_s=900)
                    break
                except KalshiError:
                    retried += 1
            else:
                pytest.fail("a cycle failed 10 times in a row")
            outcomes.update((o.action, o.status) for o in report.outcomes)
            cycles += 1
            if cycles % 5 == 0:  # between cycles: never two of ours resting on one side
                venue.set_faults(clear=True)
                assert max(_resting_per_side(venue).values(), default=0) <= 1
                venue.set_faults(error_rate=0.3, rate_limit_rate=0.3, drop_after_accept=0.6)
        venue.set_faults(clear=True)
        venue.stop_liquidity()  # nothing trades between the last sync and the comparison
        sync_exchange(client, engine, as_of=start + timedelta(seconds=60 * (cycles + 1)),
                      resolve_after_s=0)
    faults = venue.faults_seen.counts
    assert venue.faults_seen.total - before >= 200
    assert faults["dropped_ack"] > 0
    assert faults["5xx"] > 0
    assert faults["429"] > 0
    assert _assert_no_duplicates(venue) > 0
    assert_ledger_matches_exchange(venue)  # includes: every exchange fill is in the ledger
    with read_session(engine) as session:
        open_rows = [r for r in session.exec(select(OrderRecord))
                     if r.status in ("intent", "sent", "unknown")]
    assert open_rows == []
    assert outcomes[("place", "resting")] > 0
    assert outcomes[("cancel", "canceled")] > 0
    print(f"drill: {cycles} cycles, {retried} cycle retries, faults {dict(faults)}, "
          f"outcomes {dict(outcomes)}")


def _worker(env: dict[str, str], strategy: str, go: Path | None = None) -> subprocess.Popen:
    args = [sys.executable, "-m", "tests.integration.trade_drill_worker", strategy,
            ",".join(SERIES)]
    if go is not None:
        args.append(str(go))
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ledger_statuses(db_url: str) -> Counter[str]:
    path = db_url.removeprefix("sqlite:///")
    if not Path(path).exists():
        return Counter()
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return Counter(s for (s,) in conn.execute("SELECT status FROM orders"))
    except sqlite3.OperationalError:
        return Counter()


def test_drills_kill9_between_intent_and_ack_then_flow_resolves(
        venue: Venue, ledger_env: dict[str, str], prefect_harness) -> None:
    from flows.trade_weather import trade_weather

    venue.stop_liquidity()
    venue.nws.bias_f.update({"KXHIGHNY": 2.0, "KXHIGHMIA": -2.0})
    venue.set_faults(latency_ms=1500)  # acknowledgements take long: a window to kill in
    proc = _worker(ledger_env, "weather-v0")
    deadline = time.monotonic() + 60
    while _ledger_statuses(ledger_env["EVENTDESK_DATABASE_URL"])["sent"] == 0:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the worker never sent an order"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    venue.set_faults(clear=True)
    stranded = _ledger_statuses(ledger_env["EVENTDESK_DATABASE_URL"])
    assert stranded["sent"] >= 1  # the dead run left intents without acknowledgement
    time.sleep(2.0)  # longer than any request can still be in flight (latency 1.5 s)

    summary = trade_weather(series=SERIES, interval_s=60, resolve_after_s=1.0)

    with read_session(ledger()) as session:
        problems = [e.reason for e in session.exec(select(RiskEvent))
                    if "not booked" in e.reason or "needs review" in e.reason]
    assert problems == []
    assert summary["resolved"], "the next cycle resolved the dead run's intents by key"
    statuses = _ledger_statuses(ledger_env["EVENTDESK_DATABASE_URL"])
    assert statuses["sent"] == statuses["intent"] == statuses["unknown"] == 0
    _assert_no_duplicates(venue)
    assert_ledger_matches_exchange(venue)
    venue.nws.bias_f.clear()


def test_drills_prefect_task_and_flow_retries_under_faults_no_duplicates(
        venue: Venue, ledger_env: dict[str, str], prefect_harness) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    from flows.trade_weather import trade_weather

    venue.nws.bias_f.update({"KXHIGHNY": 2.0, "KXHIGHMIA": -2.0})
    before = venue.faults_seen.total
    flow_ids = []
    while len(flow_ids) < 3 or (venue.faults_seen.total - before < 20 and len(flow_ids) < 8):
        venue.set_faults(error_rate=0.25, rate_limit_rate=0.1, drop_after_accept=0.5)
        state = trade_weather(series=SERIES, interval_s=60, resolve_after_s=0,
                              return_state=True)
        flow_ids.append(state.state_details.flow_run_id)
        venue.set_faults(clear=True)
        _assert_no_duplicates(venue)
    faults = venue.faults_seen.total - before

    import asyncio

    async def run_counts() -> tuple[list[int], list[int]]:
        async with get_client() as client:
            flows = [await client.read_flow_run(i) for i in flow_ids]
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_ids)), limit=200,
                sort=TaskRunSort.EXPECTED_START_TIME_DESC)
        return [f.run_count for f in flows], [t.run_count for t in tasks]

    flow_counts, task_counts = asyncio.run(run_counts())
    assert faults >= 20
    assert max(task_counts) > 1 or max(flow_counts) > 1, (flow_counts, task_counts)
    trade_weather(series=SERIES, interval_s=60, resolve_after_s=0)  # a clean cycle settles all
    _assert_no_duplicates(venue)
    assert_ledger_matches_exchange(venue)
    venue.nws.bias_f.clear()


def test_drills_two_runs_racing_for_one_limit_never_exceed_it(
        venue: Venue, ledger_env: dict[str, str], tmp_path: Path) -> None:
    venue.stop_liquidity()
    venue.nws.bias_f.update({"KXHIGHNY": 2.0, "KXHIGHMIA": -2.0})
    env = {**ledger_env, "EVENTDESK_CAPITAL_ALLOCATION": "0.02"}  # a $200 desk: $10 per event
    go = tmp_path / "go"
    racers = [_worker(env, "race-a", go), _worker(env, "race-b", go)]
    deadline = time.monotonic() + 120  # both decided and waiting at the gateway barrier
    while not all(Path(f"{go}.ready-{s}").exists() for s in ("race-a", "race-b")):
        assert time.monotonic() < deadline, "racers never reached the barrier"
        assert all(p.poll() is None for p in racers), "a racer died before the barrier"
        time.sleep(0.05)
    go.touch()
    attempts = []
    for proc in racers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        attempts.append(int(out.split("changes ", 1)[1].split()[0]))
    with read_session(ledger()) as session:
        start = session.exec(select(DailyEquity)).first()
        rows = list(session.exec(select(OrderRecord)))
        rejections = list(session.exec(select(RiskEvent).where(RiskEvent.kind == "rejection")))
    assert start is not None
    limit = int(int(Decimal(start.start_equity_cents) * Decimal("0.02")) * Decimal("0.05"))
    exposure: Counter[str] = Counter()
    for row in rows:
        if row.status in ACTIVE_ORDER_STATUSES:
            exposure[row.event_ticker] += (row.count - row.filled_count) * row.price_cents
        exposure[row.event_ticker] += row.filled_count * row.price_cents
    # both runs sent order changes through the gateway (placed or rejected by the gate): a race,
    # not one run after the other; which one wins each event's headroom is up to the scheduler
    assert all(n > 0 for n in attempts), attempts
    assert {r.strategy for r in rows} <= {"race-a", "race-b"}
    assert max(exposure.values()) <= limit, (exposure, limit)
    assert any(r.limit_name in ("contract", "category", "capital") for r in rejections)
    _assert_no_duplicates(venue)
    venue.nws.bias_f.clear()
