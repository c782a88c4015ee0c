"""Refusals of the paper exchange: 401 signatures, 429 limits, bad input leaving state as is."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.server import serve_in_thread
from kalshi.signing import KalshiAuth, generate_private_key, public_key_pem
from tests.integration.conftest import PaperExchangeHandle, add_market, http, register_key


def _request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    with http(timeout=30) as client:
        return client.request(method, url, **kwargs)


def _order(ticker: str, overrides: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ticker": ticker, "side": "bid", "count": "5", "price": "0.4000",
                            "time_in_force": "good_till_canceled",
                            "self_trade_prevention_type": "taker_at_cross"}
    body.update(overrides or {})
    body.update(more)
    return {k: v for k, v in body.items() if v is not None}


def _state(client: httpx.Client, ticker: str) -> tuple[Any, ...]:
    book = client.get(f"/markets/{ticker}/orderbook").json()
    balance = client.get("/portfolio/balance").json()["balance"]
    orders = client.get("/portfolio/orders", params={"ticker": ticker}).json()["orders"]
    return book, balance, len(orders)


@pytest.mark.parametrize(
    ("auth_kind", "reason"),
    [
        ("unknown_key", "unknown API key"),
        ("wrong_private_key", "invalid signature"),
        ("stale_timestamp", "stale timestamp"),
        ("no_headers", "missing"),
    ],
)
def test_portfolio_request_bad_credentials_returns_401_with_reason(
    paper_exchange: PaperExchangeHandle, auth_kind: str, reason: str
) -> None:
    now = paper_exchange.exchange.clock
    auth: httpx.Auth | None = {
        "unknown_key": KalshiAuth("nobody", paper_exchange.private_key),
        "wrong_private_key": KalshiAuth(paper_exchange.key_id, generate_private_key()),
        "stale_timestamp": KalshiAuth(paper_exchange.key_id, paper_exchange.private_key,
                                      now_ms=lambda: now() - 60_000),
        "no_headers": None,
    }[auth_kind]
    response = _request("GET", f"{paper_exchange.base_url}/portfolio/balance", auth=auth)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert reason in response.json()["details"]
    assert paper_exchange.private_key.__class__.__name__ not in response.text


def test_signature_over_other_path_is_refused(paper_exchange: PaperExchangeHandle) -> None:
    class WrongPathAuth(httpx.Auth):
        def auth_flow(self, request: httpx.Request):
            signer = KalshiAuth(paper_exchange.key_id, paper_exchange.private_key)
            fake = httpx.Request("GET", str(request.url).replace("balance", "positions"))
            signed = next(signer.auth_flow(fake))
            request.headers.update({k: v for k, v in signed.headers.items()
                                    if k.lower().startswith("kalshi-")})
            yield request

    response = _request("GET", f"{paper_exchange.base_url}/portfolio/balance", auth=WrongPathAuth())
    assert response.status_code == 401


BAD_ORDERS = [
    ("unknown_ticker", {"ticker": "KXNOPE-99JAN01-B1"}, 404, "not_found"),
    ("subpenny_price", {"price": "0.4250"}, 400, "invalid_price"),
    ("zero_price", {"price": "0.0000"}, 400, "invalid_price"),
    ("price_one_dollar", {"price": "1.0000"}, 400, "invalid_price"),
    ("price_not_string", {"price": 0.4}, 400, "invalid_parameters"),
    ("zero_count", {"count": "0"}, 400, "invalid_order_size"),
    ("negative_count", {"count": "-3"}, 400, "invalid_order_size"),
    ("fractional_count", {"count": "1.50"}, 400, "invalid_order_size"),
    ("missing_time_in_force", {"time_in_force": None}, 400, "invalid_parameters"),
    ("bad_time_in_force", {"time_in_force": "day"}, 400, "invalid_parameters"),
    ("missing_stp", {"self_trade_prevention_type": None}, 400, "invalid_parameters"),
    ("bad_side", {"side": "buy"}, 400, "invalid_parameters"),
    ("unknown_field", {"yes_price": 40}, 400, "invalid_parameters"),
    ("reduce_only_gtc", {"reduce_only": True}, 400, "invalid_parameters"),
    ("expiration_with_ioc", {"expiration_time": 4_000_000_000,
                             "time_in_force": "immediate_or_cancel"}, 400, "invalid_parameters"),
    ("insufficient_balance", {"count": "100000000", "price": "0.9900"}, 400,
     "insufficient_balance"),
    ("other_subaccount", {"subaccount": 3}, 400, "invalid_parameters"),
]


@pytest.mark.parametrize(("case", "overrides", "status", "code"), BAD_ORDERS,
                         ids=[c[0] for c in BAD_ORDERS])
def test_create_order_bad_input_returns_kalshi_error_and_leaves_state_unchanged(
    paper_exchange: PaperExchangeHandle, paper_market: str, case: str,
    overrides: dict[str, Any], status: int, code: str,
) -> None:
    with paper_exchange.client() as client:
        client.post("/portfolio/events/orders", json=_order(paper_market, price="0.3000"))
        before = _state(client, paper_market)
        response = client.post("/portfolio/events/orders", json=_order(paper_market, overrides))
        after = _state(client, paper_market)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert body["message"]
    assert after == before


def test_create_order_malformed_json_returns_400_and_state_unchanged(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        before = _state(client, paper_market)
        response = client.post("/portfolio/events/orders", content=b'{"ticker": "X", ',
                               headers={"content-type": "application/json"})
        not_object = client.post("/portfolio/events/orders", content=json.dumps([1, 2]))
        after = _state(client, paper_market)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_parameters"
    assert "malformed JSON" in response.json()["message"]
    assert not_object.status_code == 400
    assert after == before


def test_duplicate_client_order_id_returns_409_order_already_exists(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        first = client.post("/portfolio/events/orders",
                            json=_order(paper_market, client_order_id="dup-1"))
        before = _state(client, paper_market)
        second = client.post("/portfolio/events/orders",
                             json=_order(paper_market, client_order_id="dup-1", price="0.3900"))
        after = _state(client, paper_market)
    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["code"] == "order_already_exists"
    assert after == before


def test_batch_over_the_limit_returns_400_and_places_nothing(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        before = _state(client, paper_market)
        response = client.post("/portfolio/events/orders/batched",
                               json={"orders": [_order(paper_market)] * 21})
        empty = client.post("/portfolio/events/orders/batched", json={"orders": []})
        after = _state(client, paper_market)
    assert response.status_code == 400
    assert "exceeds" in response.json()["message"]
    assert empty.status_code == 400
    assert after == before


def test_order_on_settled_market_returns_market_inactive_and_state_unchanged(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    settled = _request("POST", f"{paper_exchange.operator_url}/settle",
                         json={"ticker": paper_market, "result": "yes"})
    with paper_exchange.client() as client:
        before = _state(client, paper_market)
        response = client.post("/portfolio/events/orders", json=_order(paper_market))
        market = client.get(f"/markets/{paper_market}").json()["market"]
        after = _state(client, paper_market)
    assert settled.status_code == 200
    assert response.status_code == 400
    assert response.json()["code"] == "market_inactive"
    assert (market["status"], market["result"]) == ("finalized", "yes")
    assert after == before


def test_other_accounts_order_is_not_found_for_cancel_amend_and_get(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as owner, paper_exchange.client(counterparty=True) as other:
        order_id = owner.post("/portfolio/events/orders",
                              json=_order(paper_market)).json()["order_id"]
        responses = [
            other.delete(f"/portfolio/events/orders/{order_id}"),
            other.get(f"/portfolio/orders/{order_id}"),
            other.post(f"/portfolio/events/orders/{order_id}/amend", json={
                "ticker": paper_market, "side": "bid", "price": "0.4100", "count": "5"}),
            other.post(f"/portfolio/events/orders/{order_id}/decrease", json={"reduce_by": "1"}),
        ]
        still = owner.get(f"/portfolio/orders/{order_id}").json()["order"]
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert still["status"] == "resting"
    assert still["remaining_count_fp"] == "5.00"


def test_amend_with_mismatched_side_is_refused_with_kalshi_code(
    paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        order_id = client.post("/portfolio/events/orders",
                               json=_order(paper_market)).json()["order_id"]
        wrong_side = client.post(f"/portfolio/events/orders/{order_id}/amend", json={
            "ticker": paper_market, "side": "ask", "price": "0.4100", "count": "5"})
        both = client.post(f"/portfolio/events/orders/{order_id}/decrease",
                           json={"reduce_by": "1", "reduce_to": "2"})
    assert wrong_side.status_code == 400
    assert wrong_side.json()["code"] == "order_side_mismatch"
    assert both.status_code == 400


def test_basic_tier_key_over_write_budget_gets_kalshi_429_body(tmp_path: Path) -> None:
    now_s = [100.0]  # a frozen monotonic clock: the bucket refills only when the test says so
    exchange = PaperExchange(tmp_path / "limits.sqlite", monotonic=lambda: now_s[0])
    key = generate_private_key()
    statuses = []
    with serve_in_thread(create_app(exchange, extra_routes=[])) as url:
        register_key(f"{url}/operator", "basic-tier-key", key, tier="basic")
        add_market(f"{url}/operator", "KXLIMIT-1-M", "KXLIMIT-1")
        with http(base_url=f"{url}/trade-api/v2", auth=KalshiAuth("basic-tier-key", key)) as c:
            for _ in range(11):  # basic: 100 write tokens/s, capacity 1 s; an order costs 10
                response = c.post("/portfolio/events/orders",
                                  json=_order("KXLIMIT-1-M", price="0.0100", count="1"))
                statuses.append(response.status_code)
            limited = response
            reads = c.get("/portfolio/balance")  # the Read bucket is separate
            now_s[0] += 0.15  # 15 tokens refilled: one more order
            refilled = c.post("/portfolio/events/orders",
                              json=_order("KXLIMIT-1-M", price="0.0100", count="1"))
            orders = c.get("/portfolio/orders").json()["orders"]
    exchange.close()
    assert statuses == [201] * 10 + [429]
    assert limited.json() == {"error": "too many requests"}
    assert "retry-after" not in limited.headers
    assert reads.status_code == 200
    assert refilled.status_code == 201
    assert len(orders) == 11


def test_operator_api_from_non_loopback_client_is_forbidden(tmp_path) -> None:
    exchange = PaperExchange(tmp_path / "ex.sqlite")
    app = create_app(exchange, extra_routes=[])
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
    pem = public_key_pem(generate_private_key()).decode()

    async def attempt() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://paper") as client:
            response = await client.post("/operator/keys", json={
                "key_id": "x", "public_key_pem": pem, "balance_cents": 100})
            faults = await client.post("/operator/faults", json={"error_rate": 1.0})
        return response, faults

    try:
        response, faults = asyncio.run(attempt())
    finally:
        exchange.close()
    assert response.status_code == 403
    assert faults.status_code == 403
    assert exchange.account_ids() == set()


def test_add_market_definition_errors_name_ticker_and_field(
    paper_exchange: PaperExchangeHandle,
) -> None:
    bad = {"ticker": "KXBAD-1", "event_ticker": "KXBAD", "open_time": "2020-01-01T00:00:00Z",
           "close_time": "2099-01-01T00:00:00Z",
           "price_ranges": [{"start": "0", "end": "1", "step": "0.001"}]}
    response = _request("POST", f"{paper_exchange.operator_url}/markets",
                          json={"definitions": [bad]})
    add_market(paper_exchange.operator_url, "KXDUP-A-M", "KXDUP-A")
    again = _request("POST", f"{paper_exchange.operator_url}/markets", json={"definitions": [
        {"ticker": "KXDUP-A-M", "event_ticker": "KXDUP-A", "open_time": "2020-01-01T00:00:00Z",
         "close_time": "2099-01-01T00:00:00Z"}]})
    assert response.status_code == 201
    assert response.json()["added"] == []
    [error] = response.json()["errors"]
    assert error["ticker"] == "KXBAD-1"
    assert "price_ranges" in error["error"]
    assert "already exists" in again.json()["errors"][0]["error"]
