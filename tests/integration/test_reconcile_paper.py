"""Reconciliation against the paper exchange: injected drift is found, classified and imported;
an incomplete view halts and changes nothing."""

from __future__ import annotations

import httpx

from kalshi.signing import KalshiAuth
from models.reconcile import compare
from tasks.ledger_store import active_halts
from tasks.reconcile import ledger_view, read_snapshot, reconcile_once
from tasks.safety import safety_client
from tests.integration.safety_harness import Desk, desk, safety_venue  # noqa: F401


def _reconcile(desk: Desk, client=None):  # noqa: F811
    with client or desk.client() as c:
        return reconcile_once(c, desk.engine, now=desk.venue.clock.now(),
                              webhook=desk.webhook.url)


def test_reconcile_injected_drift_is_classified_imported_and_ledger_equals_exchange(
        desk: Desk) -> None:  # noqa: F811
    # Arrange: a booked position, and a clean first reconciliation (the cash baseline)
    held, filled, cancelled = (desk.venue.market() for _ in range(3))
    assert desk.take(held, side="yes", price_cents=40, count=5).count("place", "executed") == 1
    desk.sync()
    clean = _reconcile(desk)
    assert clean.complete
    assert clean.differences == (), clean.differences
    # drift made outside the bot's view: a fill it missed, a cancel it did not do, a settlement
    placed = desk.trade([(filled, "yes", 30, 4), (cancelled, "no", 20, 3)])
    assert placed.count("place", "resting") == 2
    desk.fill_resting(filled, yes_price_cents=30, count=4)
    with desk.client() as client:
        victim = next(o for o in client.iter_orders(ticker=cancelled) if o.status == "resting")
        client.cancel_order(victim.order_id, market_ticker=cancelled)
    desk.venue.operator("/settle", {"ticker": held, "result": "yes"})

    # Act
    report = _reconcile(desk)

    # Assert: every difference classified and explained, applied, none left, no halt
    kinds = sorted((d.kind, d.action) for d in report.differences)
    assert kinds == [("cancelled_outside", "mark_canceled"), ("missing_fill", "import_fill"),
                     ("missing_settlement", "import_settlement"),
                     ("status_mismatch", "mark_executed")], report.differences
    assert report.unexplained == ()
    assert report.halt_id is None
    assert report.remaining == ()
    assert active_halts(desk.engine) == []
    with desk.client() as client:
        assert compare(read_snapshot(client).view, ledger_view(desk.engine),
                       now_ms=0) == ()
    ledger = ledger_view(desk.engine)
    assert ledger.positions == {filled: 4}
    assert held in ledger.settled
    again = _reconcile(desk)  # cash moved exactly as the imported fill and settlement explain
    assert again.differences == (), again.differences
    assert "drift" in desk.webhook.kinds()


def test_reconcile_order_placed_outside_the_bot_halts_as_unexplained(desk: Desk) -> None:  # noqa: F811
    market = desk.venue.market()
    from kalshi.client import order_request

    with desk.client() as client:
        client.create_order(order_request(market, "bid", 2, 5, client_order_id="manual-1"))

    report = _reconcile(desk)

    assert [d.kind for d in report.unexplained] == ["unknown_order"]
    assert report.halt_id is not None
    assert "unknown_order" in active_halts(desk.engine)[0]
    assert "halt" in desk.webhook.kinds()


def test_reconcile_unreachable_exchange_halts_and_imports_nothing(desk: Desk) -> None:  # noqa: F811
    # Arrange: a fill the ledger has not booked, then the exchange answers only 5xx
    market = desk.venue.market()
    desk.trade([(market, "yes", 25, 2)])
    desk.fill_resting(market, yes_price_cents=25, count=2)
    desk.venue.operator("/faults", {"error_rate": 1.0})
    try:
        report = _reconcile(desk)
    finally:
        desk.venue.operator("/faults", {"clear": True})

    # Assert: halted, says what it could not verify, and the ledger is untouched
    assert not report.complete
    assert report.applied == ()
    assert {d.kind for d in report.differences} == {"unverified"}
    assert "could not verify" in active_halts(desk.engine)[0]
    assert ledger_view(desk.engine).fill_ids == frozenset()


def test_reconcile_repeated_page_cursor_is_unverified_not_imported(desk: Desk) -> None:  # noqa: F811
    # Arrange: a missed fill, and a venue whose fills pages never end (cursor repeats)
    market = desk.venue.market()
    desk.trade([(market, "yes", 25, 2)])
    desk.fill_resting(market, yes_price_cents=25, count=2)
    real = httpx.HTTPTransport()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/portfolio/fills"):  # every page is the first page again
            request = httpx.Request(request.method, request.url.copy_remove_param("cursor"),
                                    headers=request.headers)
        response = real.handle_request(request)
        if request.url.path.endswith("/portfolio/fills"):
            response.read()
            body = response.json()
            return httpx.Response(200, json={**body, "cursor": "same-again"})
        return response

    client = safety_client(desk.venue.base_url, KalshiAuth(desk.key_id, desk.key), desk.engine,
                           max_retries=0, inner=httpx.MockTransport(handler))

    # Act
    report = _reconcile(desk, client)

    # Assert
    assert not report.complete
    assert any("repeated cursor" in d.detail for d in report.differences)
    assert ledger_view(desk.engine).fill_ids == frozenset()
    assert active_halts(desk.engine)
