"""Order groups on the desk, against the paper exchange over HTTP with a real SQLite ledger: one
group per strategy, carried by every order the gateway sends; one trigger call cancels a whole
strategy; a volume burst halts trading until a resume resets the group; the kill switch triggers
each group once and sweeps what no group holds; a group the exchange forgot is replaced."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from kalshi.client import KalshiClient, order_request
from kalshi.errors import OrderRejected
from kalshi.signing import KalshiAuth
from models.edge import DesiredOrder
from models.ledger import Halt, OrderGroupRecord, OrderRecord, RiskEvent
from models.risk import RiskLimits
from tasks.db import ledger_engine, ledger_revision, read_session, upgrade_ledger
from tasks.gateway import GatewayReport, Want, apply_orders, sync_exchange
from tasks.order_groups import strategy_groups
from tasks.safety import cancel_strategy, kill, list_halts, resume_task, safety_client
from tests.integration.safety_harness import Desk, desk, safety_cli, safety_venue  # noqa: F401

_ids = itertools.count(1)
runner = CliRunner()


class CountingTransport(httpx.BaseTransport):
    """Real HTTP to the paper exchange, counting (method, path) and failing chosen paths."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.fail_containing: str | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/trade-api/v2")
        self.calls[(request.method, path)] += 1
        if self.fail_containing and self.fail_containing in path:
            return httpx.Response(503, json={"error": {"code": "service_unavailable",
                                                       "message": "injected"}})
        return self._inner.handle_request(request)

    def count(self, method: str, ending: str) -> int:
        """Calls of `method` whose path ends with `ending`."""
        return sum(n for (m, p), n in self.calls.items() if m == method and p.endswith(ending))

    def close(self) -> None:
        self._inner.close()


def _client(desk: Desk) -> tuple[KalshiClient, CountingTransport]:  # noqa: F811
    transport = CountingTransport()
    client = safety_client(desk.venue.base_url, KalshiAuth(desk.key_id, desk.key), desk.engine,
                           max_retries=0, inner=transport, now=desk.venue.clock.now)
    desk.clients.append(client)
    return client, transport


def _trade(desk: Desk, client: KalshiClient, strategy: str,  # noqa: F811
           wants: list[tuple[str, str, int, int]], *, limit: int | None = 50) -> GatewayReport:
    # one trading run of `strategy` through the gateway, with its order group
    as_of = desk.venue.clock.now()
    desired = [Want(DesiredOrder(t, side, price, count, "good_till_canceled",  # type: ignore[arg-type]
                                 None, 5, False), t.rsplit("-", 1)[0], "weather", 100_000)
               for t, side, price, count in wants]
    snapshot = sync_exchange(client, desk.engine, as_of=as_of, resolve_after_s=0)
    equity = client.get_balance().balance_cents
    return apply_orders(client, desk.engine, desired,
                        managed_tickers=sorted({w.order.market_ticker for w in desired}),
                        snapshot=snapshot, strategy=strategy, slot=f"og{next(_ids)}",
                        as_of=as_of, equity_cents=equity, limits=RiskLimits(), ttl_s=900,
                        order_group_limit=limit)


def _group_of(desk: Desk, strategy: str) -> str:  # noqa: F811
    (group,) = strategy_groups(desk.engine, strategy)
    return group.order_group_id


def _rows(desk: Desk) -> dict[str, OrderRecord]:  # noqa: F811
    with read_session(desk.engine) as session:
        return {r.client_order_id: r for r in session.exec(select(OrderRecord))}


def test_gateway_orders_carry_strategy_group_created_once_then_remembered(
        desk: Desk) -> None:  # noqa: F811
    # Arrange
    client, calls = _client(desk)
    m1, m2 = desk.venue.market(), desk.venue.market()

    # Act: two runs of one strategy, the second adding a market
    first = _trade(desk, client, "alpha", [(m1, "yes", 10, 5)], limit=40)
    second = _trade(desk, client, "alpha", [(m1, "yes", 10, 5), (m2, "no", 20, 3)], limit=40)

    # Assert: one group, created once, checked once by the second run, on every order
    assert first.count("place", "resting") == 1
    assert second.count("place", "resting") == 1
    assert calls.count("POST", "/portfolio/order_groups/create") == 1
    group_id = _group_of(desk, "alpha")
    assert calls.count("GET", f"/portfolio/order_groups/{group_id}") == 1
    resting = desk.resting()
    assert len(resting) == 2
    assert {o.order_group_id for o in resting} == {group_id}
    assert client.get_order_group(group_id).contracts_limit == 40
    (group,) = strategy_groups(desk.engine, "alpha")
    assert (group.contracts_limit, group.triggered_at) == (40, None)


def test_cancel_strategy_one_trigger_call_cancels_it_other_strategy_keeps_resting(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: alpha rests 3 orders in 2 markets, beta 1 order in a third
    client, calls = _client(desk)
    m1, m2, m3 = (desk.venue.market() for _ in range(3))
    _trade(desk, client, "alpha", [(m1, "yes", 10, 5), (m1, "no", 10, 5), (m2, "yes", 12, 2)])
    _trade(desk, client, "beta", [(m3, "yes", 11, 4)])
    assert len(desk.resting()) == 4
    calls.calls.clear()

    # Act
    report = cancel_strategy(client, desk.engine, "alpha", "model retired",
                             as_of=desk.venue.clock.now())

    # Assert: one exchange call cancelled alpha's three orders; no per-order cancels needed
    assert calls.count("PUT", "/trigger") == 1
    assert calls.count("DELETE", "/portfolio/events/orders/batched") == 0
    assert calls.count("DELETE", "/portfolio/events/orders") == 0
    assert len(report.canceled) == 3
    assert report.complete
    left = desk.resting()
    assert [(o.ticker, o.order_group_id) for o in left] == [(m3, _group_of(desk, "beta"))]
    rows = _rows(desk)
    assert Counter((r.strategy, r.status) for r in rows.values()) == {
        ("alpha", "canceled"): 3, ("beta", "resting"): 1}
    assert strategy_groups(desk.engine, "alpha")[0].triggered_at is not None


def test_kill_triggers_each_group_once_sweeps_manual_order_groups_stay_closed(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: two strategies, and an order placed by hand outside any group
    client, calls = _client(desk)
    m1, m2, m3 = (desk.venue.market() for _ in range(3))
    _trade(desk, client, "alpha", [(m1, "yes", 10, 5), (m2, "yes", 10, 5)])
    _trade(desk, client, "beta", [(m3, "yes", 11, 4)])
    client.create_order(order_request(m3, "ask", 2, 90, client_order_id=f"hand-{next(_ids)}"))
    calls.calls.clear()

    # Act
    halt_id, report = kill(client, desk.engine, "drill", by="test",
                           as_of=desk.venue.clock.now())

    # Assert: one trigger per strategy, one batch for the hand-placed order, nothing left
    assert calls.count("PUT", "/trigger") == 2
    assert calls.count("DELETE", "/portfolio/events/orders/batched") == 1
    assert report is not None
    assert len(report.canceled) == 4
    assert report.complete
    assert desk.resting() == []
    assert [h.halt_id for h in list_halts(desk.engine)] == [halt_id]
    assert list_halts(desk.engine)[0].reason == "kill switch: drill"
    # the groups keep refusing the strategies' orders at the exchange until resume resets them
    with pytest.raises(OrderRejected) as refused:
        client.create_order(order_request(m1, "bid", 1, 5, client_order_id=f"x-{next(_ids)}",
                                          order_group_id=_group_of(desk, "alpha")))
    assert refused.value.code == "order_group_limit_exceeded"


def test_cli_kill_strategy_cancels_only_it_halt_names_it_resume_resets_group(
        desk: Desk) -> None:  # noqa: F811
    # Arrange
    client, _ = _client(desk)
    m1, m2 = desk.venue.market(), desk.venue.market()
    _trade(desk, client, "alpha", [(m1, "yes", 10, 5)])
    _trade(desk, client, "beta", [(m2, "yes", 11, 4)])
    app = safety_cli()

    # Act
    killed = runner.invoke(app, ["kill", "--strategy", "alpha", "--reason", "bad fills"])

    # Assert: alpha's order is gone, beta's rests, the halt names alpha
    assert killed.exit_code == 0, killed.output
    record = json.loads(killed.output.splitlines()[-1])
    assert (record["canceled"], record["strategy"]) == (1, "alpha")
    assert [o.ticker for o in desk.resting()] == [m2]
    (halt,) = list_halts(desk.engine)
    assert halt.reason == "kill switch [strategy alpha]: bad fills"
    assert _trade(desk, client, "alpha", [(m1, "yes", 10, 5)]).count("place", "rejected") == 1
    shown = json.loads(runner.invoke(app, ["status", "--json"]).output)
    groups = {g["strategy"]: g for g in shown["order_groups"]}
    assert groups["alpha"]["triggered_at"] is not None
    assert groups["beta"]["triggered_at"] is None
    assert "order group alpha" in runner.invoke(app, ["status"]).output
    assert runner.invoke(app, ["kill", "--strategy", " "]).exit_code == 2

    # Act: resume clears the halt, then resets the groups
    resumed = runner.invoke(app, ["resume", "--reason", "fills explained"])

    # Assert: alpha's orders are accepted in its (same) group again
    assert resumed.exit_code == 0, resumed.output
    assert "order groups reset" in resumed.output
    again = _trade(desk, client, "alpha", [(m1, "yes", 10, 5)])
    assert again.count("place", "resting") == 1
    assert {o.order_group_id for o in desk.resting() if o.ticker == m1} == {
        _group_of(desk, "alpha")}
    assert strategy_groups(desk.engine, "alpha")[0].triggered_at is None


def test_volume_burst_triggers_group_next_runs_place_nothing_halt_resume_reopens(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: alpha's group matches at most 5 contracts per 15 s; it rests a 10-lot
    client, calls = _client(desk)
    market = desk.venue.market()
    assert _trade(desk, client, "alpha", [(market, "yes", 40, 10)], limit=5).count(
        "place", "resting") == 1

    # Act: a burst of selling takes 5 of them; the exchange triggers the group
    desk.fill_resting(market, yes_price_cents=40, count=8)
    assert desk.resting() == []
    burst_run = _trade(desk, client, "alpha", [(market, "yes", 40, 10)], limit=5)
    calls.calls.clear()
    halted_run = _trade(desk, client, "alpha", [(market, "yes", 40, 10)], limit=5)

    # Assert: the refused order is not resent, a halt names the strategy, nothing is placed
    assert [(o.action, o.status) for o in burst_run.outcomes] == [("place", "rejected")]
    assert "order_group_limit_exceeded" in burst_run.outcomes[0].detail
    (halt,) = list_halts(desk.engine)
    assert halt.reason.startswith("order-group triggered: alpha (")
    assert halt.set_by == "gateway"
    assert "halt" in desk.webhook.kinds()
    assert [(o.action, o.status) for o in halted_run.outcomes] == [("place", "rejected")]
    assert calls.count("POST", "/portfolio/events/orders/batched") == 0
    assert desk.resting() == []
    assert strategy_groups(desk.engine, "alpha")[0].triggered_at is not None

    # Act: an explicit resume clears the halt and resets the group
    cleared = resume_task.fn("burst explained", "test", desk.venue.clock.now(), {}, {}, {})

    # Assert: orders flow again, in the same group
    assert cleared == [halt.halt_id]
    resumed = _trade(desk, client, "alpha", [(market, "yes", 40, 3)], limit=5)
    assert resumed.count("place", "resting") == 1
    assert {o.order_group_id for o in desk.resting()} == {_group_of(desk, "alpha")}


def test_group_forgotten_by_exchange_replaced_recorded_orders_use_new_one(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: alpha's group exists, then the exchange forgets it
    client, _ = _client(desk)
    m1, m2 = desk.venue.market(), desk.venue.market()
    _trade(desk, client, "alpha", [(m1, "yes", 10, 5)])
    old = _group_of(desk, "alpha")
    client.delete_order_group(old)  # also cancels its order, as Kalshi's delete does

    # Act
    report = _trade(desk, client, "alpha", [(m2, "yes", 10, 5)])

    # Assert: a new group carries the new order; the old row is retired with the reason
    assert report.count("place", "resting") == 1
    new = _group_of(desk, "alpha")
    assert new != old
    assert [o.order_group_id for o in desk.resting()] == [new]
    with read_session(desk.engine) as session:
        rows = {r.order_group_id: r for r in session.exec(select(OrderGroupRecord))}
        events = [e.reason for e in session.exec(select(RiskEvent).where(
            RiskEvent.kind == "order_group"))]
    assert rows[old].retired_ts_ms is not None
    assert "404" in (rows[old].detail or "")
    assert rows[new].retired_ts_ms is None
    assert any(f"replaces {old}" in e for e in events)


def test_gateway_group_unavailable_sends_no_orders_says_why(desk: Desk) -> None:  # noqa: F811
    # Arrange: the order group endpoints fail (503)
    client, calls = _client(desk)
    market = desk.venue.market()
    calls.fail_containing = "/order_groups"

    # Act
    report = _trade(desk, client, "alpha", [(market, "yes", 10, 5)])

    # Assert: the order is not sent outside its group
    assert [(o.action, o.status) for o in report.outcomes] == [("place", "skipped")]
    assert "order group of alpha unavailable" in report.outcomes[0].detail
    assert calls.count("POST", "/portfolio/events/orders/batched") == 0
    assert desk.resting() == []


def test_ledger_migration_from_0003_keeps_rows_and_adds_order_groups(tmp_path: Path) -> None:
    # Arrange: a ledger at revision 0003 holding a halt
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    upgrade_ledger(url, "0003")
    engine = ledger_engine(url)
    with Session(engine) as session:
        session.add(Halt(reason="kept across the upgrade", set_by="test", set_ts_ms=1))
        session.commit()
    assert ledger_revision(url) == "0003"

    # Act
    upgrade_ledger(url)

    # Assert: the halt is still there and the new table takes rows
    assert ledger_revision(url) != "0003"
    with Session(engine) as session:
        assert [h.reason for h in session.exec(select(Halt))] == ["kept across the upgrade"]
        session.add(OrderGroupRecord(strategy="alpha", order_group_id="g-1",
                                     contracts_limit=500, created_ts_ms=2))
        session.commit()
    (group,) = strategy_groups(engine, "alpha")
    assert (group.order_group_id, group.contracts_limit) == ("g-1", 500)
    assert group.created_at == datetime.fromtimestamp(0.002, tz=group.created_at.tzinfo)
    engine.dispose()


def test_kill_switch_flow_run_with_strategy_cancels_only_its_orders_and_halts(
        desk: Desk, prefect_harness) -> None:  # noqa: F811
    from flows.kill import kill_switch

    # Arrange: two strategies, one resting order each
    client, _ = _client(desk)
    m1, m2 = desk.venue.market(), desk.venue.market()
    _trade(desk, client, "alpha", [(m1, "yes", 10, 5)])
    _trade(desk, client, "beta", [(m2, "yes", 11, 4)])

    # Act: the kill-switch deployment's flow, run with a strategy parameter (the UI path)
    result = kill_switch(reason="from the UI", by="deployment", strategy="alpha")

    # Assert: alpha's order is gone, beta's rests, the halt names alpha and blocks every order
    assert len(result["canceled"]) == 1
    assert result["still_resting"] == []
    assert [o.ticker for o in desk.resting()] == [m2]
    (halt,) = list_halts(desk.engine)
    assert halt.reason == "kill switch [strategy alpha]: from the UI"
    m3 = desk.venue.market()
    assert _trade(desk, client, "beta", [(m3, "yes", 12, 3)]).count("place", "rejected") == 1
