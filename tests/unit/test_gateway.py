"""The order gateway's mappings and its unknown-outcome rule, on a real SQLite ledger with an
``httpx.MockTransport`` venue for the rare failure shapes (a batch answered 500 after it was
accepted, a key that is reusable once its order is done)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from deployments.cli_trade import parse_params
from flows.registry import UnknownFlowError, get_flow
from kalshi.client import KalshiClient, RetryPolicy
from kalshi.wire import BookLevel, Orderbook, parse_fill
from models.edge import DesiredOrder
from models.orders import RestingOrder
from models.risk import RiskLimits
from tasks.db import ledger_engine, upgrade_ledger
from tasks.gateway import Want, apply_orders, book_order, fill_report, sync_exchange
from tasks.ledger_store import order_by_client_id
from tasks.trading import _top_without_own

AS_OF = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
TICKER = "KXHIGHNY-26NOV22-B48.5"


def _order(ticker: str, side: str, price: int, count: int, tif: str = "good_till_canceled"
           ) -> DesiredOrder:
    return DesiredOrder(ticker, side, price, count, tif, None, 6, tif != "good_till_canceled")  # type: ignore[arg-type]


def test_book_order_no_at_40_is_yes_ask_at_60() -> None:
    mapped = book_order(_order(TICKER, "no", 40, 3))
    assert (mapped.side, mapped.price_cents, mapped.count) == ("ask", 60, 3)
    assert book_order(_order(TICKER, "yes", 40, 3)).side == "bid"


def _fill(**overrides: Any) -> dict[str, Any]:
    raw = {"fill_id": "f-1", "trade_id": "t-1", "order_id": "o-1", "ticker": TICKER,
           "book_side": "ask", "count_fp": "4.00", "yes_price_dollars": "0.6200",
           "no_price_dollars": "0.3800", "is_taker": True, "fee_cost": "0.0610",
           "created_time": "2026-11-22T14:00:01Z"}
    raw.update(overrides)
    return raw


def test_fill_report_ask_fill_is_no_at_no_price_fee_rounded_up() -> None:
    report = fill_report(parse_fill(_fill()), "ed-x")
    assert (report.side, report.price_cents, report.count) == ("no", 38, 4)
    assert report.fee_cents == 7  # $0.0610 -> 7 cents: a cost is never understated
    assert report.client_order_id == "ed-x"


def test_fill_report_subpenny_price_refused_naming_fill() -> None:
    from kalshi.wire import CENT_GRID, PriceGrid, PriceRange

    grid = PriceGrid(ranges=(PriceRange(start=Decimal(0), end=Decimal(1),
                                        step=Decimal("0.001")),))
    fill = parse_fill(_fill(yes_price_dollars="0.6150", no_price_dollars="0.3850"), grid)
    with pytest.raises(ValueError, match="f-1"):
        fill_report(fill, None)
    assert CENT_GRID is not None


def test_top_without_own_own_best_bid_ignored_others_kept() -> None:
    book = Orderbook(yes=(BookLevel(price=Decimal("0.40"), count=Decimal(5)),
                          BookLevel(price=Decimal("0.42"), count=Decimal(2))),
                     no=(BookLevel(price=Decimal("0.50"), count=Decimal(3)),))
    own = [RestingOrder("o1", "c1", TICKER, "bid", 42, 2)]
    assert _top_without_own(book, own) == (40, 50)
    partly = [RestingOrder("o1", "c1", TICKER, "bid", 42, 1)]
    assert _top_without_own(book, partly) == (42, 50)
    assert _top_without_own(book, [RestingOrder("o2", "c2", TICKER, "ask", 50, 3)]) == (42, None)


def test_parse_params_json_values_and_text() -> None:
    assert parse_params(["dry_run=true", "series=[\"KXHIGHNY\"]", "strategy=w1"]) == {
        "dry_run": True, "series": ["KXHIGHNY"], "strategy": "w1"}
    with pytest.raises(typer.BadParameter, match="nokey"):
        parse_params(["nokey"])


def test_flow_registry_unknown_name_lists_known() -> None:
    with pytest.raises(UnknownFlowError, match="trade-weather"):
        get_flow("trade-wether")
    assert get_flow("trade-weather").name == "trade-weather"


class _Venue:
    """Just enough of the V2 order endpoints; can answer a batch 500 after accepting it."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.creates = 0
        self.fail_batch_after_accept = False
        self.done_keys_reusable = True

    def _order(self, body: dict[str, Any]) -> dict[str, Any]:
        oid = f"o-{len(self.orders) + 1}"
        price = Decimal(body["price"])
        order = {"order_id": oid, "client_order_id": body["client_order_id"],
                 "ticker": body["ticker"], "book_side": body["side"], "type": "limit",
                 "status": "resting", "yes_price_dollars": f"{price:.4f}",
                 "no_price_dollars": f"{1 - price:.4f}", "fill_count_fp": "0.00",
                 "remaining_count_fp": body["count"]}
        self.orders[oid] = order
        return order

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/trade-api/v2")
        if request.method == "GET" and path == "/portfolio/orders":
            return httpx.Response(200, json={"orders": list(self.orders.values()), "cursor": ""})
        if request.method == "GET" and path == "/portfolio/fills":
            return httpx.Response(200, json={"fills": [], "cursor": ""})
        if request.method == "POST" and path == "/portfolio/events/orders/batched":
            items = []
            for body in json.loads(request.content)["orders"]:
                self.creates += 1
                order = self._order(body)
                items.append({"order_id": order["order_id"],
                              "client_order_id": order["client_order_id"],
                              "fill_count": "0.00", "remaining_count": body["count"]})
            if self.fail_batch_after_accept:
                return httpx.Response(500, json={"error": {"code": "internal_server_error"}})
            return httpx.Response(201, json={"orders": items})
        if request.method == "POST" and path == "/portfolio/events/orders":
            self.creates += 1
            order = self._order(json.loads(request.content))
            return httpx.Response(201, json={"order_id": order["order_id"],
                                             "client_order_id": order["client_order_id"],
                                             "fill_count": "0.00",
                                             "remaining_count": order["remaining_count_fp"]})
        return httpx.Response(404, json={"error": {"code": "not_found"}})


@pytest.fixture
def engine(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    upgrade_ledger(url)
    engine = ledger_engine(url)
    yield engine
    engine.dispose()


def _apply(client: KalshiClient, engine: Any, wants: list[Want]) -> Any:
    snapshot = sync_exchange(client, engine, as_of=AS_OF)
    return apply_orders(client, engine, wants, managed_tickers=[TICKER], snapshot=snapshot,
                        strategy="unit", slot="2026-11-22T14:00:00Z/600s", as_of=AS_OF,
                        equity_cents=1_000_000, limits=RiskLimits(), ttl_s=900)


def test_apply_orders_batch_500_after_accept_resolved_by_lookup_not_resent(engine) -> None:
    venue = _Venue()
    venue.fail_batch_after_accept = True
    client = KalshiClient("https://venue.test/trade-api/v2",
                          transport=httpx.MockTransport(venue.handler),
                          backoff=RetryPolicy(max_retries=2, base_s=0.0, cap_s=0.0))
    want = Want(_order(TICKER, "yes", 41, 3), "KXHIGHNY-26NOV22", "weather", 1000, None)

    report = _apply(client, engine, [want])

    assert venue.creates == 1  # the accepted order was found by its key, never sent again
    (outcome,) = report.outcomes
    assert (outcome.action, outcome.status, outcome.detail) == ("place", "resting",
                                                               "resolved by lookup")
    row = order_by_client_id(engine, outcome.client_order_id)
    assert row is not None
    assert (row.status, row.exchange_order_id) == ("resting", "o-1")
    assert row.expiration_ts_ms == int((AS_OF + timedelta(seconds=900)).timestamp() * 1000)


def test_apply_orders_same_slot_rerun_after_fill_places_nothing(engine) -> None:
    venue = _Venue()
    client = KalshiClient("https://venue.test/trade-api/v2",
                          transport=httpx.MockTransport(venue.handler))
    want = Want(_order(TICKER, "yes", 41, 3), "KXHIGHNY-26NOV22", "weather", 1000, None)
    _apply(client, engine, [want])
    for order in venue.orders.values():  # the order filled and is done at the exchange
        order.update(status="executed", fill_count_fp="3.00", remaining_count_fp="0.00")

    report = _apply(client, engine, [want])  # a retried run in the same decision slot

    assert venue.creates == 1
    assert [o.status for o in report.outcomes] == ["skipped"]
    assert "already reached the exchange" in report.outcomes[0].detail


class _FillVenue(_Venue):
    """A venue that also reports fills (e.g. of an order placed outside eventdesk)."""

    def __init__(self, fills: list[dict[str, Any]]) -> None:
        super().__init__()
        self.fills = fills

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/portfolio/fills"):
            return httpx.Response(200, json={"fills": self.fills, "cursor": ""})
        return super().handler(request)


def test_sync_exchange_unknown_order_fill_new_market_records_drift_halts_and_goes_on(
        engine) -> None:
    from tasks.ledger_store import active_halts, read_risk_state

    other = "KXHIGHCHI-26NOV22-B40.5"
    venue = _FillVenue([_fill(fill_id="f-out", order_id="o-outside", ticker=other),
                        _fill(fill_id="f-out2", order_id="o-outside2", ticker=other)])
    client = KalshiClient("https://venue.test/trade-api/v2",
                          transport=httpx.MockTransport(venue.handler))

    snapshot = sync_exchange(client, engine, as_of=AS_OF)  # must not raise
    again = sync_exchange(client, engine, as_of=AS_OF)

    assert snapshot.fills_booked == 0
    assert again.fills_booked == 0
    halts = active_halts(engine)
    assert len(halts) == 1  # one drift halt, not one per fill or per cycle
    assert "drift:" in halts[0]
    assert "f-out" in halts[0]
    assert other in halts[0]
    state = read_risk_state(engine, equity_cents=1_000_000, as_of=AS_OF)
    assert state.halts
    want = Want(_order(TICKER, "yes", 41, 3), "KXHIGHNY-26NOV22", "weather", 1000, None)
    report = apply_orders(client, engine, [want], managed_tickers=[TICKER], snapshot=snapshot,
                          strategy="unit", slot="2026-11-22T14:00:00Z/600s", as_of=AS_OF,
                          equity_cents=1_000_000, limits=RiskLimits(), ttl_s=900)
    assert venue.creates == 0  # the cycle carried on, but added no exposure while halted
    assert [o.status for o in report.outcomes] == ["rejected"]
