"""Order-path ledger writes on a real SQLite file: reserve, record, book, settle, race."""

from __future__ import annotations

import multiprocessing
import shutil
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from models.ledger import (
    DailyEquity,
    Decision,
    Fill,
    Halt,
    Heartbeat,
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
    ReservedIntent,
    active_halts,
    clear_halt,
    load_risk_state,
    order_by_client_id,
    read_risk_state,
    record_decision,
    record_fill,
    record_heartbeat,
    record_settlement,
    record_start_of_day_equity,
    reserve_and_record_intent,
    set_halt,
    transition_order,
)
from tests.integration.ledger_race_worker import race, upgrade

AS_OF = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
LIMITS = RiskLimits()
EQUITY = 100_000  # 5 % per event = 5,000c
EVENT = "KXHIGHNY-26NOV22"


@pytest.fixture(scope="module")
def migrated_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ledger-template") / "ledger.sqlite"
    upgrade_ledger(f"sqlite:///{path}")
    return path


@pytest.fixture
def engine(migrated_file, tmp_path):
    # a copy of one migrated file per test: same schema, a fraction of the migration time
    path = tmp_path / "ledger.sqlite"
    shutil.copyfile(migrated_file, path)
    engine = ledger_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def intent(n: int = 0, *, count: int = 10, price: int = 50, bracket: str = "B50",
           side: str = "yes", adv: int | None = 10_000, decision_id: int | None = None,
           strategy: str = "weather-v1") -> IntentRequest:
    ticker = f"{EVENT}-{bracket}"
    return IntentRequest(
        client_order_id=client_order_id(strategy, ticker, side, "day:2026-11-22", n),
        strategy=strategy,
        order=OrderRequest(ticker, EVENT, "weather", side, price, count, adv),
        time_in_force="good_till_canceled",
        expiration_ts_ms=1795356900000,
        decision_id=decision_id,
    )


def reserve(engine, request, equity=EQUITY, as_of=AS_OF):
    return reserve_and_record_intent(engine, request, equity_cents=equity, as_of=as_of,
                                     limits=LIMITS)


def rows(engine, model):
    with read_session(engine) as session:
        return session.exec(select(model)).all()


def test_reserve_within_limits_records_intent_and_event(engine):
    result = reserve(engine, intent())
    assert isinstance(result, ReservedIntent)
    assert not result.already_recorded
    (order,) = rows(engine, OrderRecord)
    assert (order.status, order.count, order.price_cents, order.client_order_id) == (
        "intent", 10, 50, intent().client_order_id)
    assert [e.status for e in rows(engine, OrderEvent)] == ["intent"]


def test_reserve_same_key_again_returns_first_record_without_a_second_row(engine):
    first = reserve(engine, intent())
    again = reserve(engine, intent())
    assert isinstance(again, ReservedIntent)
    assert again.already_recorded
    assert again.order_id == first.order_id
    assert len(rows(engine, OrderRecord)) == 1


def test_reserve_same_key_other_terms_rejects_duplicate_key(engine):
    reserve(engine, intent())
    changed = IntentRequest(intent().client_order_id, "weather-v1",
                            OrderRequest(f"{EVENT}-B50", EVENT, "weather", "yes", 51, 10, 10_000),
                            "good_till_canceled", None)
    result = reserve(engine, changed)
    assert isinstance(result, Rejection)
    assert result.limit == "duplicate_key"
    assert len(rows(engine, OrderRecord)) == 1


def test_reserve_over_limit_records_rejection_and_no_order(engine):
    result = reserve(engine, intent(count=101))  # 101 x 50c = 5,050c > 5,000c
    assert isinstance(result, Rejection)
    assert result.limit == "contract"
    assert rows(engine, OrderRecord) == []
    (event,) = rows(engine, RiskEvent)
    assert (event.kind, event.limit_name, event.client_order_id) == (
        "rejection", "contract", intent(count=101).client_order_id)


def test_reserve_counts_intents_and_resting_orders_of_other_brackets(engine):
    # Arrange: 60 x 50c resting on one bracket, 30 x 50c intent on another: 4,500c in flight
    reserve(engine, intent(0, count=60, bracket="B48"))
    transition_order(engine, intent(0, count=60, bracket="B48").client_order_id, "resting",
                     as_of=AS_OF, exchange_order_id="x-1")
    reserve(engine, intent(1, count=30, bracket="B50"))
    # Act: 11 more on a third bracket = 5,050c
    result = reserve(engine, intent(2, count=11, bracket="B52"))
    # Assert
    assert isinstance(result, Rejection)
    assert result.limit == "contract"
    assert isinstance(reserve(engine, intent(3, count=10, bracket="B52")), ReservedIntent)


def test_reserve_canceled_order_frees_its_exposure(engine):
    reserve(engine, intent(0, count=100))
    assert isinstance(reserve(engine, intent(1, count=1)), Rejection)
    transition_order(engine, intent(0, count=100).client_order_id, "canceled", as_of=AS_OF)
    assert isinstance(reserve(engine, intent(1, count=1)), ReservedIntent)


def test_reserve_executed_but_unbooked_fills_still_count(engine):
    # the exchange says all 100 filled; the fills are not booked yet: still 5,000c at risk
    reserve(engine, intent(0, count=100))
    transition_order(engine, intent(0, count=100).client_order_id, "executed", as_of=AS_OF,
                     exchange_order_id="x-1")
    assert isinstance(reserve(engine, intent(1, count=1)), Rejection)


def test_record_fill_moves_exposure_from_order_to_position(engine):
    reserve(engine, intent(0, count=10))
    coid = intent(0, count=10).client_order_id
    transition_order(engine, coid, "resting", as_of=AS_OF, exchange_order_id="x-1")
    fill = FillReport("f-1", f"{EVENT}-B50", "yes", 50, 4, 2, True, 1795356000000,
                      client_order_id=coid)
    assert record_fill(engine, fill) is True
    with read_session(engine) as session:
        state = load_risk_state(session, equity_cents=EQUITY, as_of=AS_OF)
    (holding,) = state.holdings
    assert (holding.exposure_cents, holding.contracts) == (500, 10)
    (position,) = rows(engine, Position)
    assert (position.contracts, position.cost_cents, position.fees_cents) == (4, 200, 2)
    assert order_by_client_id(engine, coid).filled_count == 4


def test_record_fill_same_fill_id_twice_books_once(engine):
    reserve(engine, intent(0, count=10))
    coid = intent(0, count=10).client_order_id
    fill = FillReport("f-1", f"{EVENT}-B50", "yes", 50, 4, 2, True, 1, client_order_id=coid)
    assert record_fill(engine, fill) is True
    assert record_fill(engine, fill) is False
    assert len(rows(engine, Fill)) == 1
    assert rows(engine, Position)[0].contracts == 4


def test_record_fill_completing_order_marks_it_executed(engine):
    reserve(engine, intent(0, count=5))
    coid = intent(0, count=5).client_order_id
    transition_order(engine, coid, "resting", as_of=AS_OF, exchange_order_id="x-1")
    record_fill(engine, FillReport("f-1", f"{EVENT}-B50", "yes", 50, 5, 2, False, 1,
                                   exchange_order_id="x-1"))
    order = order_by_client_id(engine, coid)
    assert (order.status, order.filled_count) == ("executed", 5)


def test_record_fill_overfill_raises_and_books_nothing(engine):
    reserve(engine, intent(0, count=5))
    coid = intent(0, count=5).client_order_id
    with pytest.raises(LedgerError, match="overfill"):
        record_fill(engine, FillReport("f-1", f"{EVENT}-B50", "yes", 50, 6, 2, True, 1,
                                       client_order_id=coid))
    assert rows(engine, Fill) == []
    assert rows(engine, Position) == []


def test_record_fill_unknown_market_without_category_raises(engine):
    with pytest.raises(LedgerError, match="category"):
        record_fill(engine, FillReport("f-1", "OTHER-M", "yes", 50, 1, 1, True, 1))


def test_record_fill_opposite_side_nets_and_realizes(engine):
    # buy 10 YES at 40c, then 4 NO at 55c: 4 pairs pay 100c each
    for n, (side, price, count) in enumerate([("yes", 40, 10), ("no", 55, 4)]):
        record_fill(engine, FillReport(f"f-{n}", "M", side, price, count, 0, True, n,
                                       event_ticker="E", category="weather"))
    (position,) = rows(engine, Position)
    # realized: 4 x 100 - 4 x 55 - 4 x 40 = 20c; 6 YES left at 40c
    assert (position.contracts, position.cost_cents, position.realized_pnl_cents) == (6, 240, 20)


def test_record_settlement_pays_winners_once(engine):
    record_fill(engine, FillReport("f-1", "M", "yes", 40, 6, 3, True, 1, event_ticker="E",
                                   category="weather"))
    assert record_settlement(engine, "M", "yes", as_of=AS_OF) is True
    assert record_settlement(engine, "M", "yes", as_of=AS_OF) is False
    (position,) = rows(engine, Position)
    assert (position.contracts, position.cost_cents, position.realized_pnl_cents) == (0, 0, 360)


def test_record_settlement_losing_no_position_loses_cost(engine):
    record_fill(engine, FillReport("f-1", "M", "no", 30, 5, 0, True, 1, event_ticker="E",
                                   category="weather"))
    record_settlement(engine, "M", "yes", as_of=AS_OF)
    assert rows(engine, Position)[0].realized_pnl_cents == -150


def test_record_settlement_unknown_result_raises(engine):
    with pytest.raises(LedgerError, match="result"):
        record_settlement(engine, "M", "void", as_of=AS_OF)


def test_daily_loss_rejection_sets_halt_until_cleared(engine):
    record_start_of_day_equity(engine, date(2026, 11, 22), EQUITY, as_of=AS_OF)
    result = reserve(engine, intent(0), equity=96_999)
    assert isinstance(result, Rejection)
    assert result.limit == "daily_loss"
    (halt,) = rows(engine, Halt)
    # equity recovered, but the halt holds until a person clears it
    assert reserve(engine, intent(1), equity=EQUITY).limit == "halt"
    clear_halt(engine, halt.id, cleared_by="ops", as_of=AS_OF)
    assert isinstance(reserve(engine, intent(1), equity=EQUITY), ReservedIntent)
    assert active_halts(engine) == []


def test_set_halt_rejects_every_order(engine):
    set_halt(engine, "NWS outage", set_by="guard", as_of=AS_OF)
    result = reserve(engine, intent())
    assert isinstance(result, Rejection)
    assert "NWS outage" in result.reason


def test_start_of_day_equity_first_value_of_the_day_wins(engine):
    assert record_start_of_day_equity(engine, date(2026, 11, 22), 100_000, as_of=AS_OF) == 100_000
    assert record_start_of_day_equity(engine, date(2026, 11, 22), 90_000, as_of=AS_OF) == 100_000
    next_day = AS_OF + timedelta(days=1)
    reserve(engine, intent(), equity=90_000, as_of=next_day)
    with read_session(engine) as session:
        state = load_risk_state(session, equity_cents=90_000, as_of=next_day)
    assert state.start_of_day_equity_cents == 90_000


def test_transition_order_from_terminal_status_raises(engine):
    reserve(engine, intent())
    coid = intent().client_order_id
    transition_order(engine, coid, "canceled", as_of=AS_OF)
    with pytest.raises(LedgerError, match="'canceled' to 'resting'"):
        transition_order(engine, coid, "resting", as_of=AS_OF)


def test_transition_order_conflicting_exchange_id_raises(engine):
    reserve(engine, intent())
    coid = intent().client_order_id
    transition_order(engine, coid, "acknowledged", as_of=AS_OF, exchange_order_id="x-1")
    with pytest.raises(LedgerError, match="x-2"):
        transition_order(engine, coid, "resting", as_of=AS_OF, exchange_order_id="x-2")


def test_transition_order_unknown_key_raises(engine):
    with pytest.raises(LedgerError, match="client_order_id"):
        transition_order(engine, "ed-nothing", "sent", as_of=AS_OF)


def test_record_decision_links_to_order(engine):
    decision_id = record_decision(engine, Decision(
        strategy="weather-v1", market_ticker=f"{EVENT}-B50", event_ticker=EVENT,
        model_version="nws-normal-1", model_inputs_json='{"forecast_id": 7}', prob_yes=0.61,
        yes_bid_cents=50, yes_ask_cents=52, edge_cents=7, action="take", intended_side="yes",
        intended_price_cents=52, intended_count=10, reason="take", decided_ts_ms=1))
    reserve(engine, intent(decision_id=decision_id))
    assert rows(engine, OrderRecord)[0].decision_id == decision_id


def test_record_heartbeat_keeps_latest(engine):
    record_heartbeat(engine, "trade_weather", as_of=AS_OF)
    record_heartbeat(engine, "trade_weather", as_of=AS_OF + timedelta(minutes=1), detail="ok")
    (beat,) = rows(engine, Heartbeat)
    assert beat.ts_ms == 1795356060000
    assert beat.detail == "ok"


# --- the race: several processes competing for one limit ---------------------------------------

def test_reserve_racing_processes_never_exceed_the_limit_together(tmp_path):
    # 3 processes x 6 attempts of 10 x 50c on one event; the 5 % limit (5,000c) fits 10 of 18
    url = f"sqlite:///{tmp_path / 'race.sqlite'}"
    upgrade_ledger(url)
    # forkserver: one clean single-threaded server imports the worker once, then forks workers
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.integration.ledger_race_worker"])
    barrier, results = context.Barrier(3), context.Queue()
    workers = [context.Process(target=race, args=(url, w, 6, barrier, results))
               for w in range(3)]
    for process in workers:
        process.start()
    approved = dict(results.get(timeout=120) for _ in workers)
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    engine = ledger_engine(url)
    orders, rejections = rows(engine, OrderRecord), rows(engine, RiskEvent)
    engine.dispose()
    assert sum(approved.values()) == len(orders) == 10
    assert sum(o.count * o.price_cents for o in orders) == 5_000
    assert len(rejections) == 18 - 10
    assert {r.limit_name for r in rejections} == {"contract"}


def test_record_fill_late_fill_of_canceled_order_is_booked_without_reopening(engine):
    reserve(engine, intent(0, count=5))
    coid = intent(0, count=5).client_order_id
    transition_order(engine, coid, "resting", as_of=AS_OF, exchange_order_id="x-1")
    transition_order(engine, coid, "canceled", as_of=AS_OF, exchange_filled_count=5)
    assert record_fill(engine, FillReport("f-1", f"{EVENT}-B50", "yes", 50, 5, 2, False, 1,
                                          client_order_id=coid))
    order = order_by_client_id(engine, coid)
    assert (order.status, order.filled_count) == ("canceled", 5)
    assert rows(engine, Position)[0].contracts == 5


def test_upgrade_ledger_racing_startups_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.integration.ledger_race_worker"])
    barrier, results = context.Barrier(3), context.Queue()
    workers = [context.Process(target=upgrade, args=(url, barrier, results)) for _ in range(3)]
    for process in workers:
        process.start()
    revisions = [results.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    from alembic.script import ScriptDirectory

    from tasks.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None
    assert revisions == [head, head, head]


def test_read_risk_state_sees_in_flight_orders_and_writes_nothing(engine):
    reserve(engine, intent(0, count=20, bracket="B48"))
    state = read_risk_state(engine, equity_cents=EQUITY, as_of=AS_OF + timedelta(days=1))
    assert [(h.market_ticker, h.exposure_cents, h.contracts) for h in state.holdings] == [
        (f"{EVENT}-B48", 1_000, 20)]
    assert state.start_of_day_equity_cents == EQUITY
    assert len(rows(engine, DailyEquity)) == 1  # only the reservation's own day was recorded
