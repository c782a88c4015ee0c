"""Batched ledger writes of the order path on real SQLite files: ``reserve_intents``,
``transition_orders`` and ``record_fills`` leave the same ledger and return the same result per
item as the single forms called one by one; a trading process killed (SIGKILL) after its batch
was marked ``sent`` leaves every order resolvable by ``client_order_id`` on a real paper exchange.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import col, select

from kalshi.client import KalshiClient
from kalshi.signing import KalshiAuth, generate_private_key, private_key_pem
from models.ledger import (
    ORDER_STATUSES,
    DailyEquity,
    Fill,
    Halt,
    LedgerError,
    OrderEvent,
    OrderRecord,
    Position,
    RiskEvent,
)
from models.orderkey import client_order_id
from models.risk import OrderRequest, Rejection, RiskLimits
from tasks.db import ledger_engine, read_session, upgrade_ledger
from tasks.ledger_store import (
    FillReport,
    IntentRequest,
    OrderSnapshot,
    ReservedIntent,
    Transition,
    TransitionRefused,
    record_fill,
    record_fills,
    record_start_of_day_equity,
    reserve_and_record_intent,
    reserve_intents,
    transition_order,
    transition_orders,
)
from tests.integration.conftest import PaperExchangeHandle, http, register_key

REPO = Path(__file__).resolve().parents[2]
AS_OF = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
LIMITS = RiskLimits()
EQUITY = 100_000  # desk capital; 5 % per event = 5,000c
EVENTS = ("KXHIGHNY-26NOV22", "KXHIGHCHI-26NOV22")
SLOT = "day:2026-11-22"
EXAMPLES = settings(max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger-batch") / "ledger.sqlite"
    upgrade_ledger(f"sqlite:///{path}")
    return path


_ARRANGED: dict[tuple[str, ...], Path] = {}


def arranged(template: Path, *steps: Callable[[Engine], None]) -> Path:
    """The migrated `template` after `steps`, built once per test session and combination."""
    key = (str(template), *(step.__name__ for step in steps))
    if key not in _ARRANGED:
        path = template.with_name("-".join(["arranged", *key[1:]]) + ".sqlite")
        shutil.copyfile(template, path)
        engine = ledger_engine(f"sqlite:///{path}")
        for step in steps:
            step(engine)
        engine.dispose()
        _ARRANGED[key] = path
    return _ARRANGED[key]


@contextmanager
def two_ledgers(source: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two copies of the ledger file `source` (same rows: the same ids are handed out next)."""
    with tempfile.TemporaryDirectory() as tmp:
        first, second = Path(tmp) / "one.sqlite", Path(tmp) / "batch.sqlite"
        shutil.copyfile(source, first)
        shutil.copyfile(source, second)
        engines = ledger_engine(f"sqlite:///{first}"), ledger_engine(f"sqlite:///{second}")
        try:
            yield engines
        finally:
            for engine in engines:
                engine.dispose()


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row the order path writes, as plain values."""
    tables = (OrderRecord, OrderEvent, RiskEvent, Halt, DailyEquity, Fill, Position)
    with read_session(engine) as session:
        return {model.__name__: [row.model_dump() for row in
                                 session.exec(select(model).order_by(*model.__table__.primary_key))]
                for model in tables}


def intent(bracket: int, side: str, price: int, count: int, *, n: int = 0, event: int = 0,
           adv: int | None = 10_000, tif: str = "good_till_canceled") -> IntentRequest:
    ticker = f"{EVENTS[event]}-B{bracket}"
    return IntentRequest(client_order_id(f"batch-{event}", ticker, side, SLOT, n), "batch",
                         OrderRequest(ticker, EVENTS[event], "weather", side, price, count, adv),
                         tif, 1795356900000)


def resting(engine: Engine, request: IntentRequest, exchange_id: str) -> None:
    result = reserve_and_record_intent(engine, request, equity_cents=10 * EQUITY, as_of=AS_OF,
                                       limits=LIMITS)
    assert isinstance(result, ReservedIntent), result
    transition_order(engine, request.client_order_id, "resting", as_of=AS_OF,
                     exchange_order_id=exchange_id)


def arrange_book(engine: Engine) -> None:
    """Two resting orders (one partly filled) and a position in a third market."""
    resting(engine, intent(1, "yes", 40, 30), "x-1")
    resting(engine, intent(2, "no", 55, 20, event=1), "x-2")
    record_fill(engine, FillReport("f-0", f"{EVENTS[0]}-B1", "yes", 40, 10, 1, False, 1,
                                   client_order_id=intent(1, "yes", 40, 30).client_order_id))
    record_fill(engine, FillReport("f-00", f"{EVENTS[1]}-B3", "yes", 30, 15, 1, True, 2,
                                   event_ticker=EVENTS[1], category="weather"))


def losing_day(engine: Engine) -> None:
    """The day started 4 % richer: every order breaches the daily loss limit (and halts)."""
    record_start_of_day_equity(engine, AS_OF.date(), EQUITY * 104 // 100, as_of=AS_OF)


intents = st.builds(
    intent,
    bracket=st.integers(1, 4), side=st.sampled_from(["yes", "no"]), price=st.integers(1, 99),
    count=st.integers(1, 90), n=st.integers(0, 2), event=st.integers(0, 1),
    adv=st.sampled_from([10_000, 10_000, 10_000, 60, None]),
    tif=st.sampled_from(["good_till_canceled"] * 6 + ["immediate_or_cancel", "day"]),
)


@EXAMPLES
@given(requests=st.lists(intents, min_size=1, max_size=9), booked=st.booleans(),
       losing=st.booleans())
def test_reserve_intents_same_results_and_rows_as_one_by_one(template: Path, requests, booked,
                                                             losing) -> None:
    steps = [arrange_book] if booked else []
    if losing:
        steps.append(losing_day)
    with two_ledgers(arranged(template, *steps)) as (single, batched):
        one_by_one = [reserve_and_record_intent(single, r, equity_cents=EQUITY, as_of=AS_OF,
                                                limits=LIMITS) for r in requests]
        together = reserve_intents(batched, requests, equity_cents=EQUITY, as_of=AS_OF,
                                   limits=LIMITS)
        assert together == one_by_one
        assert dump(batched) == dump(single)


def test_reserve_intents_third_of_five_breaches_event_limit_others_reserved(template) -> None:
    # Arrange: 5,000c of room in the event; 2,000 + 2,000 fit, the 3rd 2,000 does not, and
    # 500 + 500 fill the room exactly
    requests = [intent(1, "yes", 50, 40), intent(2, "yes", 50, 40), intent(3, "yes", 50, 40),
                intent(4, "no", 50, 10), intent(1, "no", 50, 10)]
    with two_ledgers(template) as (_, engine):
        results = reserve_intents(engine, requests, equity_cents=EQUITY, as_of=AS_OF,
                                  limits=LIMITS)

        assert [type(r).__name__ for r in results] == [
            "ReservedIntent", "ReservedIntent", "Rejection", "ReservedIntent", "ReservedIntent"]
        rejection = results[2]
        assert isinstance(rejection, Rejection)
        assert rejection.limit == "contract"
        assert "exposure 4000c + order 2000c > 5000c" in rejection.reason
        with read_session(engine) as session:
            orders = session.exec(select(OrderRecord).order_by(col(OrderRecord.id))).all()
            events = session.exec(select(OrderEvent)).all()
            risk = session.exec(select(RiskEvent)).all()
        assert [o.client_order_id for o in orders] == [
            r.client_order_id for n, r in enumerate(requests) if n != 2]
        assert sum(o.count * o.price_cents for o in orders) == 5_000  # the limit, exactly
        assert [(e.order_id, e.status) for e in events] == [(o.id, "intent") for o in orders]
        assert [(e.limit_name, e.client_order_id) for e in risk] == [
            ("contract", requests[2].client_order_id)]


def test_reserve_intents_same_key_twice_in_batch_second_is_the_first_record(template) -> None:
    first, again = intent(1, "yes", 30, 5), intent(1, "yes", 30, 5)
    other_terms = intent(1, "yes", 31, 5)
    with two_ledgers(template) as (_, engine):
        a, b, c = reserve_intents(engine, [first, again, other_terms], equity_cents=EQUITY,
                                  as_of=AS_OF, limits=LIMITS)
    assert isinstance(a, ReservedIntent)
    assert isinstance(b, ReservedIntent)
    assert (b.order_id, b.already_recorded, a.already_recorded) == (a.order_id, True, False)
    assert isinstance(c, Rejection)
    assert c.limit == "duplicate_key"


def single_transition(engine: Engine, change: Transition) -> OrderSnapshot | TransitionRefused:
    try:
        return transition_order(engine, change.client_order_id, change.status, as_of=AS_OF,
                                exchange_order_id=change.exchange_order_id,
                                exchange_filled_count=change.exchange_filled_count,
                                detail=change.detail)
    except LedgerError as exc:
        return TransitionRefused(change.client_order_id, change.status, str(exc))


def arrange_orders(engine: Engine) -> None:
    """Orders in intent, sent, resting (with an exchange id) and executed."""
    for n, bracket in enumerate((1, 2, 3, 4)):
        result = reserve_and_record_intent(engine, intent(bracket, "yes", 20, 10),
                                           equity_cents=10 * EQUITY, as_of=AS_OF, limits=LIMITS)
        assert isinstance(result, ReservedIntent)
        coid = intent(bracket, "yes", 20, 10).client_order_id
        for status in ("sent", "resting", "executed")[:n]:
            transition_order(engine, coid, status, as_of=AS_OF,
                             exchange_order_id=f"x-{n}" if status == "resting" else None)


KEYS = [intent(b, "yes", 20, 10).client_order_id for b in (1, 2, 3, 4)] + [
    intent(9, "no", 20, 10).client_order_id]  # the last one names no order
changes = st.builds(
    Transition, client_order_id=st.sampled_from(KEYS), status=st.sampled_from(ORDER_STATUSES),
    exchange_order_id=st.sampled_from([None, None, "x-2", "x-3", "x-9"]),
    exchange_filled_count=st.sampled_from([None, 0, 4, 10, 11]),
    detail=st.sampled_from([None, "by the gateway"]))


@EXAMPLES
@given(batch=st.lists(changes, min_size=1, max_size=10))
def test_transition_orders_same_results_and_rows_as_one_by_one(template: Path, batch) -> None:
    with two_ledgers(arranged(template, arrange_orders)) as (single, batched):
        one_by_one = [single_transition(single, change) for change in batch]
        together = transition_orders(batched, batch, as_of=AS_OF)
        assert together == one_by_one
        assert dump(batched) == dump(single)


def test_transition_orders_refused_change_leaves_others_applied_one_event_each(template) -> None:
    with two_ledgers(arranged(template, arrange_orders)) as (_, engine):
        batch = [Transition(KEYS[0], "sent"), Transition(KEYS[4], "sent"),  # unknown key
                 Transition(KEYS[3], "resting"),  # executed is final
                 Transition(KEYS[1], "resting", "x-7", 3, "ack")]
        results = transition_orders(engine, batch, as_of=AS_OF)

        assert [type(r).__name__ for r in results] == [
            "OrderSnapshot", "TransitionRefused", "TransitionRefused", "OrderSnapshot"]
        assert results[1] == TransitionRefused(
            KEYS[4], "sent", f"client_order_id: no order recorded as {KEYS[4]!r}")
        assert results[2] == TransitionRefused(
            KEYS[3], "resting", "status: an order cannot move from 'executed' to 'resting'")
        with read_session(engine) as session:
            trail = [(o.client_order_id, e.status, e.detail) for e, o in session.exec(
                select(OrderEvent, OrderRecord).join(OrderRecord)
                .order_by(col(OrderEvent.id)))]
        assert trail[-2:] == [(KEYS[0], "sent", None), (KEYS[1], "resting", "ack")]
        with pytest.raises(LedgerError, match="cannot move from 'executed' to 'resting'"):
            transition_order(engine, KEYS[3], "resting", as_of=AS_OF)


def single_fill(engine: Engine, fill: FillReport) -> bool | str:
    try:
        return record_fill(engine, fill)
    except LedgerError as exc:
        return str(exc)


fills = st.builds(
    lambda n, target, side, price, count: FillReport(
        f"f-{n}", target[0], side, price, count, count % 3, n % 2 == 0, 1000 + n,
        client_order_id=target[1], exchange_order_id=target[2], event_ticker=target[3],
        category=target[3] and "weather"),
    n=st.integers(1, 6),  # repeats: the same fill reported twice
    target=st.sampled_from([
        (f"{EVENTS[0]}-B1", intent(1, "yes", 40, 30).client_order_id, None, None),
        (f"{EVENTS[1]}-B2", None, "x-2", None),  # found by exchange id
        (f"{EVENTS[1]}-B3", None, None, None),  # no order; the position exists
        (f"{EVENTS[0]}-B7", None, None, EVENTS[0]),  # no order, new market, event given
        (f"{EVENTS[0]}-B8", None, None, None),  # no order, new market, nothing to open it
    ]),
    side=st.sampled_from(["yes", "no"]), price=st.integers(0, 99), count=st.integers(0, 25))


@EXAMPLES
@given(batch=st.lists(fills, min_size=1, max_size=8))
def test_record_fills_same_results_and_rows_as_one_by_one(template: Path, batch) -> None:
    with two_ledgers(arranged(template, arrange_book)) as (single, batched):
        one_by_one = [single_fill(single, fill) for fill in batch]
        together = [r if isinstance(r, bool) else str(r) for r in record_fills(batched, batch)]
        assert together == one_by_one
        assert dump(batched) == dump(single)


# -- a process killed between its batched `sent` and the request -----------------------------

def _markets(paper: PaperExchangeHandle, prefix: str, count: int) -> list[str]:
    definitions = []
    for n in range(count):
        event = f"{prefix}-E{n:02d}"
        definitions.append({
            "event": {"event_ticker": event, "series_ticker": "KXPAPERTEST", "title": "Batch",
                      "sub_title": "batch", "mutually_exclusive": False},
            "markets": [{
                "ticker": f"{event}-M", "event_ticker": event, "series_ticker": "KXPAPERTEST",
                "market_type": "binary", "title": f"Batch {n}", "yes_sub_title": "Yes",
                "no_sub_title": "No", "open_time": "2020-01-01T00:00:00Z",
                "close_time": "2099-01-01T00:00:00Z", "rules_primary": "Test.",
                "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]}]})
    with http(timeout=30) as client:
        response = client.post(f"{paper.operator_url}/markets", json={
            "definitions": definitions, "reopen": True, "reopen_hours": 24})
    assert response.status_code == 201, response.text
    return [f"{prefix}-E{n:02d}-M" for n in range(count)]


def test_gateway_killed_after_batched_sent_every_order_resolvable_by_key(
        paper_exchange: PaperExchangeHandle, tmp_path: Path) -> None:
    from tests.integration.ledger_batch_worker import SLOT as WORKER_SLOT
    from tests.integration.ledger_batch_worker import wants

    # Arrange: a fresh account, 21 markets (a batch of 20 and one more), a worker process that
    # is killed with SIGKILL right after the exchange accepted its first batch (its
    # acknowledgements never recorded), so the second batch never leaves
    key = generate_private_key()
    unique = uuid.uuid4().hex[:8].upper()
    key_id = f"batch-drill-{unique}"
    register_key(paper_exchange.operator_url, key_id, key)
    key_path = tmp_path / "key.pem"
    key_path.write_bytes(private_key_pem(key))
    tickers = _markets(paper_exchange, f"KXPAPERTEST-B{unique}", 21)
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade_ledger(url)
    as_of = datetime.now(UTC)
    args = [url, paper_exchange.base_url, key_id, str(key_path), ",".join(tickers),
            as_of.isoformat()]

    worker = subprocess.run([sys.executable, "-m", "tests.integration.ledger_batch_worker",
                             *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})

    assert worker.returncode == -9, worker.stderr[-2000:]
    engine = ledger_engine(url)
    client = KalshiClient(paper_exchange.base_url, KalshiAuth(key_id, key))
    try:
        with read_session(engine) as session:
            stranded = Counter(o.status for o in session.exec(select(OrderRecord)))
        assert stranded == {"sent": 21}  # all marked sent before the first request left
        at_exchange = {o.client_order_id: o for o in client.iter_orders()}
        assert len(at_exchange) == 20

        # Act: the next run's start resolves every order by key, then runs the same wants
        from tasks.gateway import apply_orders, sync_exchange

        # (a cycle later: an intent the exchange does not know by then was never accepted)
        later = datetime.now(UTC)
        snapshot = sync_exchange(client, engine, as_of=later, resolve_after_s=0.0)
        report = apply_orders(client, engine, wants(tickers), managed_tickers=tickers,
                              snapshot=sync_exchange(client, engine, as_of=later),
                              strategy="batch-drill", slot=WORKER_SLOT, as_of=later,
                              equity_cents=1_000_000, limits=LIMITS, ttl_s=900)

        # Assert: resolved by key, nothing sent twice, one order per market at the exchange
        assert len(snapshot.resolved) == 21
        with read_session(engine) as session:
            rows = session.exec(select(OrderRecord).order_by(col(OrderRecord.id))).all()
            trails = Counter(tuple(e.status for e in session.exec(
                select(OrderEvent).where(OrderEvent.order_id == row.id)
                .order_by(col(OrderEvent.id)))) for row in rows)
        accepted = [r for r in rows if r.client_order_id in at_exchange]
        assert all(r.status == "resting" and r.exchange_order_id ==
                   at_exchange[r.client_order_id].order_id for r in accepted)
        assert len(accepted) == 20
        # 20 found at the exchange, 1 never accepted, and that market's order placed anew
        assert trails == {("intent", "sent", "resting"): 21, ("intent", "sent", "canceled"): 1}
        assert Counter((o.action, o.status) for o in report.outcomes) == {
            ("keep", "kept"): 20, ("place", "resting"): 1}
        final = list(client.iter_orders())
        assert Counter(o.ticker for o in final) == Counter(tickers)
        assert len({o.client_order_id for o in final}) == 21
    finally:
        client.close()
        engine.dispose()
