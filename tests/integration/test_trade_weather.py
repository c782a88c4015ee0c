"""The weather trading flow under Prefect against the paper exchange (synthetic liquidity) and a
loopback NWS stand-in: it places, replaces (amends) and cancels orders, and afterwards the ledger
matches the exchange order by order, fill by fill and position by position."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from flows.trade_weather import trade_weather
from models.ledger import Decision, Fill, OrderRecord, Position, RiskEvent
from tasks.db import read_session
from tasks.settings import load_settings
from tasks.trading import ledger, slippage_rows
from tests.integration._trading_helpers import Venue, trading_venue

SERIES = ["KXHIGHNY", "KXHIGHCHI"]


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory):
    with trading_venue(tmp_path_factory.mktemp("trade"), series=SERIES) as running:
        running.stop_liquidity()  # books stay put: each cycle sees only its own changes
        yield running


@pytest.fixture
def settings_env(venue: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    venue.new_account(f"trade-{tmp_path.name}"[:40], tmp_path)  # no orders from other tests
    db_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    for name, value in venue.env(db_url).items():
        monkeypatch.setenv(name, value)
    load_settings(fresh=True)
    yield db_url
    monkeypatch.undo()
    load_settings(fresh=True)


def assert_ledger_matches_exchange(venue: Venue) -> None:
    """Every exchange order and fill is in the ledger with the same status, counts, position."""
    engine = ledger()
    with venue.client() as client:
        orders = list(client.iter_orders())
        fills = list(client.iter_fills())
        positions, _ = client.get_positions()
    with read_session(engine) as session:
        rows = {r.client_order_id: r for r in session.exec(select(OrderRecord))}
        ledger_fills = {f.exchange_fill_id for f in session.exec(select(Fill))}
        held = {p.market_ticker: p.contracts for p in session.exec(select(Position))}
    for order in orders:
        row = rows[order.client_order_id]
        assert row.exchange_order_id == order.order_id
        assert row.status == order.status, (order.client_order_id, row.status, order.status)
        assert row.filled_count == int(order.fill_count)
    accepted = {r.client_order_id for r in rows.values() if r.exchange_order_id}
    assert accepted == {o.client_order_id for o in orders}
    assert ledger_fills == {f.fill_id for f in fills}
    for position in positions:
        assert held.get(position.ticker, 0) == int(position.position), position.ticker


def _improve(venue: Venue, order) -> None:
    # a competing trader betters our resting quote by one cent: the next cycle must move ours
    yes_price = order.yes_price_cents + (1 if order.book_side == "bid" else -1)
    with venue.other_client() as other:
        other.place_order(order.ticker, order.book_side, 1, yes_price,
                          client_order_id=f"other-{order.ticker}"[:60])


def test_trade_weather_cycles_place_amend_cancel_ledger_matches_exchange(
        venue: Venue, settings_env: str, prefect_harness) -> None:
    as_of = datetime.now(UTC)
    venue.nws.bias_f.update({"KXHIGHNY": 1.5, "KXHIGHCHI": -1.5})

    first = trade_weather(as_of=as_of, series=SERIES, interval_s=60)
    actions = Counter((o[1], o[3]) for o in first["outcomes"])
    assert first["markets"] == 24
    assert actions[("place", "resting")] >= 1, actions
    with venue.client() as client:
        ours = list(client.iter_orders(status="resting"))
    for order in ours:
        _improve(venue, order)

    second = trade_weather(as_of=as_of + timedelta(seconds=60), series=SERIES, interval_s=60)
    actions2 = Counter((o[1], o[3]) for o in second["outcomes"])
    canceled = {o[0] for o in second["outcomes"] if o[1] == "cancel"}
    assert actions2[("replace", "resting")] >= 1, (actions2, [
        (d["market_ticker"], d["action"], d["reason"], d["yes_bid_cents"], d["yes_ask_cents"])
        for d in second["decisions"] if d["market_ticker"] in canceled], [
        (o.ticker, o.book_side, o.yes_price_cents) for o in ours])
    replaced = {o[0] for o in second["outcomes"] if o[1] == "replace" and o[3] == "resting"}
    with venue.client() as client:
        now_resting = {o.ticker: o for o in client.iter_orders(status="resting")}
    for order in ours:
        if order.ticker in replaced:  # the new quote is one cent better than the competitor's
            step = 2 if order.book_side == "bid" else -2
            assert now_resting[order.ticker].yes_price_cents == order.yes_price_cents + step

    venue.nws.bias_f.clear()
    venue.nws.stale.add("KXHIGHCHI")  # stale forecast: skipped with a reason, orders pulled
    third = trade_weather(as_of=as_of + timedelta(seconds=120), series=SERIES, interval_s=60)
    venue.nws.stale.clear()
    actions3 = Counter((o[1], o[3]) for o in third["outcomes"])
    assert actions3[("cancel", "canceled")] >= 1, actions3
    stale = [d for d in third["decisions"] if d["event_ticker"].startswith("KXHIGHCHI")]
    assert stale
    assert all(d["action"] == "skip" and "updateTime" in d["reason"] for d in stale)
    assert any(d["action"] != "skip" for d in third["decisions"])  # NY still priced

    assert_ledger_matches_exchange(venue)
    per_order, per_day = slippage_rows(ledger())
    with read_session(ledger()) as session:
        booked = sum(f.count for f in session.exec(select(Fill)))
    assert booked > 0
    assert sum(o["contracts"] for o in per_order) == sum(d["contracts"] for d in per_day) == booked
    with read_session(ledger()) as session:
        linked = session.exec(select(OrderRecord)).all()
        assert linked
        assert all(o.decision_id is not None for o in linked)
        decision_ids = {d.id for d in session.exec(select(Decision))}
        assert {o.decision_id for o in linked} <= decision_ids
        skips = session.exec(select(RiskEvent).where(RiskEvent.limit_name == "input")).all()
        assert any("updateTime" in s.reason for s in skips)
    with venue.client() as client:
        resting = list(client.iter_orders(status="resting"))
    assert not [o for o in resting if o.ticker.startswith("KXHIGHCHI")]
    for order in resting:  # every resting order dies with its TTL
        assert order.expiration_time is not None
        assert order.expiration_time <= datetime.now(UTC) + timedelta(seconds=900 + 60)


def _cli():
    import typer

    from deployments import cli_trade

    app = typer.Typer()
    cli_trade.register(app)
    return app


def test_cli_trace_and_run_order_chain_and_recorded_flow_run(
        venue: Venue, settings_env: str, prefect_harness) -> None:
    from typer.testing import CliRunner

    venue.nws.bias_f.update({"KXHIGHNY": 1.5})
    runner = CliRunner()
    result = runner.invoke(_cli(), ["run", "trade-weather", "--param", 'series=["KXHIGHNY"]',
                                    "--param", "interval_s=60"])
    venue.nws.bias_f.clear()
    assert result.exit_code == 0, result.output
    assert '"state": "COMPLETED"' in result.output
    with read_session(ledger()) as session:
        order = session.exec(select(OrderRecord)).first()
    assert order is not None

    traced = runner.invoke(_cli(), ["trace", order.client_order_id])

    assert traced.exit_code == 0, traced.output
    assert f"order {order.client_order_id} ({order.exchange_order_id})" in traced.output
    assert "decision #" in traced.output
    assert "intent" in traced.output
    missing = runner.invoke(_cli(), ["trace", "ed-nope"])
    assert missing.exit_code == 1
    bad = runner.invoke(_cli(), ["run", "trade-weather", "--param", "interval_s=soon"])
    assert bad.exit_code == 1
    assert "interval_s" in bad.output


def test_trade_weather_started_late_refuses_and_records_heartbeat(
        venue: Venue, settings_env: str, prefect_harness) -> None:
    from models.ledger import Heartbeat

    summary = trade_weather(series=["KXHIGHNY"], max_late_s=-1.0)  # any start is "late"

    assert "late" in summary["refused"]
    with read_session(ledger()) as session:
        beat = session.get(Heartbeat, "trade-weather")
        orders = session.exec(select(OrderRecord)).all()
    assert beat is not None
    assert beat.detail is not None
    assert beat.detail.startswith("refused")
    assert orders == []


def test_trade_weather_run_leaves_decision_table_artifact(
        venue: Venue, settings_env: str, prefect_harness) -> None:
    import asyncio

    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        TaskRunFilter,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    trade_weather(series=["KXHIGHNY"], dry_run=True)

    async def latest() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[
                    "trade-weather-decisions"])), flow_run_filter=FlowRunFilter(),
                task_run_filter=TaskRunFilter(), sort=ArtifactSort.CREATED_DESC, limit=5)

    artifacts = asyncio.run(latest())
    assert artifacts
    assert artifacts[0].type == "table"
    assert "KXHIGHNY" in str(artifacts[0].data)


def test_trade_weather_bad_inputs_skip_only_their_market_with_reason(
        venue: Venue, settings_env: str) -> None:
    from datetime import date

    from tasks.trading import Forecast, MarketInput, decide_markets

    as_of = datetime.now(UTC)
    day = date(2026, 11, 23)
    ticker = "KXHIGHNY-26NOV23-B{}.5"
    close_ms = int((as_of + timedelta(hours=20)).timestamp() * 1000)

    def market(n: int, bid: int | None, ask: int | None, *, series: str = "KXHIGHNY",
               close: int = close_ms) -> MarketInput:
        return MarketInput(ticker.format(n), f"{series}-26NOV23", series, "Climate", day, n,
                           n + 1, bid, ask, 500, close)

    good = market(50, 5, 8)  # fair about 23c: buying YES at 8c is an edge
    markets = [good, market(52, 40, 38), market(54, None, None),
               market(56, 20, 25, close=int(as_of.timestamp() * 1000) - 1)]
    forecasts = [Forecast("KXHIGHNY", day, 50.4, None, None)]

    cycle = decide_markets.fn(markets, forecasts, as_of, 1_000_000, "bad-input")
    missing = decide_markets.fn([market(58, 30, 34, series="KXHIGHCHI")], forecasts, as_of,
                                1_000_000, "bad-input")

    reasons = {r.market_ticker: (r.action, r.reason) for r in cycle.rows}
    assert reasons[ticker.format(52)][1].startswith("crossed book")
    assert reasons[ticker.format(54)][1] == "empty book"
    assert reasons[ticker.format(56)] == ("skip", "market closed before the decision")
    assert reasons[good.market_ticker][0] in ("take", "rest"), reasons[good.market_ticker]
    assert [w.order.market_ticker for w in cycle.wants] == [good.market_ticker]
    assert missing.rows[0].action == "skip"
    assert missing.rows[0].reason == "forecast: missing"
    with read_session(ledger()) as session:
        recorded = {e.market_ticker: e.reason for e in session.exec(select(RiskEvent))}
    assert recorded[ticker.format(56)] == "market closed before the decision"


def test_gateway_market_closing_mid_cycle_rejected_recorded_others_placed(
        venue: Venue, settings_env: str) -> None:
    from models.edge import DesiredOrder
    from models.orderkey import decision_slot
    from models.risk import RiskLimits
    from tasks.gateway import Want, apply_orders, sync_exchange
    from tests.integration.conftest import add_market, http

    tickers = ["KXMIDCYCLE-26NOV23-A", "KXMIDCYCLE-26NOV23-B"]
    for t in tickers:
        add_market(f"{venue.root}/operator", t, "KXMIDCYCLE-26NOV23",
                   series_ticker="KXMIDCYCLE")
    wants = [Want(DesiredOrder(t, "yes", 10, 2, "good_till_canceled", None, 6, False),
                  "KXMIDCYCLE-26NOV23", "test", 1000) for t in tickers]
    as_of = datetime.now(UTC)
    engine = ledger()
    with venue.client() as client:
        snapshot = sync_exchange(client, engine, as_of=as_of)
        with http(timeout=30) as operator:  # the market closes between decision and order
            response = operator.post(f"{venue.root}/operator/settle",
                                     json={"ticker": tickers[0], "result": "no"})
        assert response.status_code == 200, response.text
        report = apply_orders(client, engine, wants, managed_tickers=tickers, snapshot=snapshot,
                              strategy="mid-cycle", slot=decision_slot(as_of, 60), as_of=as_of,
                              equity_cents=1_000_000, limits=RiskLimits(), ttl_s=900)

    status = {o.market_ticker: o for o in report.outcomes}
    assert status[tickers[0]].status == "rejected"
    assert status[tickers[0]].detail
    assert status[tickers[1]].status == "resting"
    with read_session(engine) as session:
        rows = {r.market_ticker: r for r in session.exec(select(OrderRecord))}
    assert rows[tickers[0]].status == "rejected"
    assert rows[tickers[0]].detail == status[tickers[0]].detail


def test_trading_tasks_use_guard_equity_and_record_feed_heartbeats(
        venue: Venue, settings_env: str) -> None:
    from tasks.safety import heartbeat_times, read_exchange_state
    from tasks.trading import fetch_forecasts, fetch_weather_markets, sync_orders

    as_of = datetime.now(UTC)
    with venue.client() as client:  # money held by a resting order must count as equity
        market = next(m for m in client.iter_markets(series_ticker="KXHIGHNY", status="open")
                      if m.close_time > as_of)
        book = client.get_orderbooks([market.ticker])[market.ticker]
        bid = max((int(level.price * 100) for level in book.yes), default=1)  # joins, no cross
        client.place_order(market.ticker, "bid", 10, bid, client_order_id="outside-resting-1")

    sync = sync_orders.fn(as_of, 30.0)

    with venue.client() as client:
        guard_equity = read_exchange_state(client).equity_cents
        balance = client.get_balance()
        held = sum(int(o.remaining_contracts) * o.yes_price_cents
                   for o in client.iter_orders(status="resting"))
    assert held > 0
    assert sync.equity_cents == guard_equity
    assert sync.equity_cents == (balance.balance_cents + (balance.portfolio_value_cents or 0)
                                 + held)
    engine = ledger()
    feeds = ("feed:market-data", "feed:forecast")
    assert heartbeat_times(engine, feeds) == {"feed:market-data": None, "feed:forecast": None}

    venue.nws.stale.update(SERIES)  # every forecast stale: the forecast feed is not alive
    markets, _ = fetch_weather_markets.fn(["KXHIGHNY"], as_of, sync.resting)
    wanted = sorted({(m.series_ticker, m.day) for m in markets})
    assert all(f.max_f is None for f in fetch_forecasts.fn(wanted, as_of))
    beats = heartbeat_times(engine, feeds)
    assert beats["feed:market-data"] == as_of.replace(microsecond=as_of.microsecond // 1000 * 1000)
    assert beats["feed:forecast"] is None
    venue.nws.stale.clear()

    later = as_of + timedelta(seconds=5)
    assert any(f.max_f is not None for f in fetch_forecasts.fn(wanted, later))
    assert heartbeat_times(engine, feeds)["feed:forecast"] == later.replace(
        microsecond=later.microsecond // 1000 * 1000)


def test_decide_markets_sizes_each_market_against_what_the_previous_left(
        venue: Venue, settings_env: str) -> None:
    from datetime import date

    from models.risk import Approved, RiskLimits, RiskState, check_order, with_order
    from models.risk import OrderRequest as RiskOrder
    from tasks.settings import load_settings
    from tasks.trading import Forecast, MarketInput, decide_markets

    # Arrange: three cheap brackets around the forecast in ONE event, a small account, so each
    # market alone would use most of the event's headroom
    as_of = datetime.now(UTC)
    day = date(2026, 11, 23)
    close_ms = int((as_of + timedelta(hours=20)).timestamp() * 1000)
    markets = [MarketInput(f"KXHIGHNY-26NOV23-B{n}.5", "KXHIGHNY-26NOV23", "KXHIGHNY", "Climate",
                           day, n, n + 1, 3, 6, 100_000, close_ms) for n in (48, 50, 52)]
    forecasts = [Forecast("KXHIGHNY", day, 50.9, None, None)]
    equity = 40_000
    limits = RiskLimits.from_settings(load_settings(fresh=True))

    # Act
    cycle = decide_markets.fn(markets, forecasts, as_of, equity, "headroom")

    # Assert: the gate approves the whole cycle in order (before, every market was sized against
    # the full headroom and the gate refused the excess); the markets after the headroom is used
    # are decided with a zero cap, said so, instead of being sent and refused
    rows = [(r.market_ticker, r.action, r.reason) for r in cycle.rows]
    assert cycle.wants, rows
    assert any("cap 0 contracts" in (reason or "") for _, _, reason in rows), rows
    state = RiskState(equity, equity)
    for want in cycle.wants:
        order = RiskOrder(want.order.market_ticker, want.event_ticker, want.category,
                          want.order.side, want.order.price_cents, want.order.count,
                          want.avg_daily_volume)
        verdict = check_order(order, state, limits)
        assert isinstance(verdict, Approved), (want.order, verdict)
        state = with_order(state, order)
    first = cycle.wants[0].order
    alone = decide_markets.fn([m for m in markets if m.market_ticker != first.market_ticker],
                              forecasts, as_of, equity, "headroom-alone").wants
    assert sum(w.order.count for w in cycle.wants[1:]) < sum(w.order.count for w in alone)
