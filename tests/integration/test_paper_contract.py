"""Contract tests: every paper-exchange response validates against the published OpenAPI schemas.

The schemas come from the OpenAPI document reconstructed from Kalshi's SDK 3.34.0
(``../shared/reference/specs/openapi_3.34.0_reconstructed.json``): required fields present, JSON
types right (dollar and count strings, integer cents, RFC3339 datetimes), and the exact success
status the SDK dispatches on.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.integration.conftest import PaperExchangeHandle, http

_REPO = Path(__file__).resolve().parents[2]
_SPEC_NAME = "openapi_3.34.0_reconstructed.json"


def _spec_path() -> Path | None:
    env = os.environ.get("EVENTDESK_SHARED_REFERENCE")
    for base in ([Path(env)] if env else []) + [_REPO.parent / "shared" / "reference"]:
        path = base / "specs" / _SPEC_NAME
        if path.is_file():
            return path
    return None


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    path = _spec_path()
    if path is None:
        pytest.skip(f"{_SPEC_NAME} not found: set EVENTDESK_SHARED_REFERENCE or check out "
                    "../shared")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


_formats = FormatChecker()


@_formats.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not value.endswith("Z"):
        raise ValueError(f"not a UTC RFC3339 datetime: {value!r}")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def check(spec: dict[str, Any], method: str, template: str, response: httpx.Response) -> None:
    """Assert ``response`` has a documented success status and validates against its schema."""
    operation = spec["paths"][template][method.lower()]
    documented = {int(code) for code in operation["responses"]}
    assert response.status_code in documented, (
        f"{method} {template}: status {response.status_code} not in {sorted(documented)}: "
        f"{response.text[:300]}")
    content = operation["responses"][str(response.status_code)].get("content")
    if content is None:
        assert response.content == b"", f"{method} {template} must have an empty body"
        return
    schema = {**content["application/json"]["schema"], "components": spec["components"]}
    errors = sorted(Draft202012Validator(schema, format_checker=_formats)
                    .iter_errors(response.json()), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {template}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])


def _order(ticker: str, side: str, count: str, price: str, tif: str = "good_till_canceled",
           **extra: object) -> dict[str, object]:
    return {"ticker": ticker, "side": side, "count": count, "price": price,
            "time_in_force": tif, "self_trade_prevention_type": "taker_at_cross", **extra}


def test_public_market_data_responses_match_the_published_schemas(
    spec: dict[str, Any], paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    event_ticker = paper_exchange.event_tickers[0]
    with paper_exchange.client() as maker, paper_exchange.client(counterparty=True) as taker:
        maker.post("/portfolio/events/orders", json=_order(paper_market, "bid", "5", "0.5500"))
        taker.post("/portfolio/events/orders",
                   json=_order(paper_market, "ask", "2", "0.5500", "immediate_or_cancel"))
        maker.post("/portfolio/events/orders", json=_order(paper_market, "ask", "5", "0.6100"))
        now_s = paper_exchange.exchange.clock() // 1000
        public = http(base_url=paper_exchange.base_url)
        calls = [
            ("GET", "/exchange/status", public.get("/exchange/status")),
            ("GET", "/exchange/schedule", public.get("/exchange/schedule")),
            ("GET", "/series", public.get("/series")),
            ("GET", "/series/{series_ticker}", public.get("/series/KXHIGHNY")),
            ("GET", "/events", public.get("/events", params={"with_nested_markets": "true"})),
            ("GET", "/events", public.get("/events")),
            ("GET", "/events/{event_ticker}", public.get(f"/events/{event_ticker}")),
            ("GET", "/markets", public.get("/markets", params={"limit": 3})),
            ("GET", "/markets", public.get("/markets", params={"status": "open"})),
            ("GET", "/markets/{ticker}", public.get(f"/markets/{paper_market}")),
            ("GET", "/markets/{ticker}/orderbook",
             public.get(f"/markets/{paper_market}/orderbook")),
            ("GET", "/markets/orderbooks", public.get(
                "/markets/orderbooks", params=[("tickers", paper_market),
                                               ("tickers", f"{event_ticker}-T71")])),
            ("GET", "/markets/trades", public.get("/markets/trades",
                                                  params={"ticker": paper_market})),
            ("GET", "/historical/cutoff", public.get("/historical/cutoff")),
            ("GET", "/historical/markets", public.get("/historical/markets")),
            ("GET", "/historical/trades", public.get("/historical/trades")),
            ("GET", "/series/{series_ticker}/markets/{ticker}/candlesticks", public.get(
                f"/series/KXPAPERTEST/markets/{paper_market}/candlesticks",
                params={"start_ts": now_s - 600, "end_ts": now_s + 60, "period_interval": 1})),
        ]
        public.close()
    for method, template, response in calls:
        check(spec, method, template, response)
    books = [r for _m, t, r in calls if t == "/markets/{ticker}/orderbook"]
    assert books[0].json()["orderbook_fp"]["no_dollars"] == [["0.3900", "5.00"]]


def test_portfolio_and_order_write_responses_match_the_published_schemas(
    spec: dict[str, Any], paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    calls: list[tuple[str, str, httpx.Response]] = []
    with paper_exchange.client() as client, paper_exchange.client(counterparty=True) as other:
        created = client.post("/portfolio/events/orders",
                              json=_order(paper_market, "bid", "10", "0.4000",
                                          client_order_id="contract-1"))
        calls.append(("POST", "/portfolio/events/orders", created))
        order_id = created.json()["order_id"]
        taken = other.post("/portfolio/events/orders",
                           json=_order(paper_market, "ask", "3", "0.4000", "fill_or_kill"))
        calls.append(("POST", "/portfolio/events/orders", taken))
        calls.append(("POST", "/portfolio/events/orders/batched", client.post(
            "/portfolio/events/orders/batched", json={"orders": [
                _order(paper_market, "bid", "1", "0.0500"),
                _order(paper_market, "bid", "1", "0.0550")]})))
        calls.append(("POST", "/portfolio/events/orders/{order_id}/amend", client.post(
            f"/portfolio/events/orders/{order_id}/amend",
            json={"ticker": paper_market, "side": "bid", "price": "0.4100", "count": "12"})))
        amended_id = calls[-1][2].json()["order_id"]
        calls.append(("POST", "/portfolio/events/orders/{order_id}/decrease", client.post(
            f"/portfolio/events/orders/{amended_id}/decrease", json={"reduce_to": "6"})))
        for method, template, path, params in [
            ("GET", "/portfolio/balance", "/portfolio/balance", None),
            ("GET", "/portfolio/positions", "/portfolio/positions", None),
            ("GET", "/portfolio/fills", "/portfolio/fills", None),
            ("GET", "/portfolio/orders", "/portfolio/orders", {"ticker": paper_market}),
            ("GET", "/portfolio/orders/{order_id}", f"/portfolio/orders/{amended_id}", None),
            ("GET", "/portfolio/summary/total_resting_order_value",
             "/portfolio/summary/total_resting_order_value", None),
            ("GET", "/account/limits", "/account/limits", None),
            ("GET", "/historical/orders", "/historical/orders", None),
            ("GET", "/historical/fills", "/historical/fills", None),
            ("GET", "/historical/positions", "/historical/positions", None),
        ]:
            calls.append((method, template, client.get(path, params=params)))
        calls.append(("DELETE", "/portfolio/events/orders/{order_id}",
                      client.delete(f"/portfolio/events/orders/{amended_id}")))
        extra = client.post("/portfolio/events/orders",
                            json=_order(paper_market, "bid", "1", "0.0600")).json()["order_id"]
        calls.append(("DELETE", "/portfolio/events/orders/batched", client.request(
            "DELETE", "/portfolio/events/orders/batched",
            json={"orders": [{"order_id": extra}, {"order_id": "o-404404"}]})))
        calls.append(("DELETE", "/portfolio/events/orders",
                      client.delete("/portfolio/events/orders")))
        group = client.post("/portfolio/order_groups/create", json={"contracts_limit": 3})
        calls.append(("POST", "/portfolio/order_groups/create", group))
        gid = group.json()["order_group_id"]
        g = "/portfolio/order_groups/{order_group_id}"
        calls += [
            ("GET", g, client.get(f"/portfolio/order_groups/{gid}")),
            ("GET", "/portfolio/order_groups", client.get("/portfolio/order_groups")),
            ("PUT", g + "/trigger", client.put(f"/portfolio/order_groups/{gid}/trigger")),
            ("PUT", g + "/reset", client.put(f"/portfolio/order_groups/{gid}/reset")),
            ("PUT", g + "/limit", client.put(f"/portfolio/order_groups/{gid}/limit",
                                             json={"contracts_limit_fp": "7"})),
            ("DELETE", g, client.delete(f"/portfolio/order_groups/{gid}")),
        ]
    with paper_exchange.operator() as operator:
        operator.post("/settle", json={"ticker": paper_market, "result": "yes"})
    with paper_exchange.client() as client:
        calls.append(("GET", "/portfolio/settlements", client.get("/portfolio/settlements")))
        calls.append(("GET", "/portfolio/positions", client.get(
            "/portfolio/positions", params={"settlement_status": "all"})))
    for method, template, response in calls:
        check(spec, method, template, response)
    assert created.status_code == 201
    assert calls[-2][2].json()["settlements"][0]["revenue"] == 300


def test_error_responses_match_the_error_schema(
    spec: dict[str, Any], paper_exchange: PaperExchangeHandle, paper_market: str
) -> None:
    with paper_exchange.client() as client:
        client.post("/portfolio/events/orders",
                    json=_order(paper_market, "bid", "1", "0.2000", client_order_id="e-1"))
        responses = [
            client.post("/portfolio/events/orders", json=_order(paper_market, "bid", "1", "2")),
            client.post("/portfolio/events/orders",
                        json=_order(paper_market, "bid", "1", "0.2000", client_order_id="e-1")),
            client.get("/portfolio/orders/o-000000"),
        ]
        with http() as bare:
            unsigned = bare.get(f"{paper_exchange.base_url}/portfolio/balance")
    for response in responses[:2]:
        check(spec, "POST", "/portfolio/events/orders", response)
    check(spec, "GET", "/portfolio/orders/{order_id}", responses[2])
    check(spec, "GET", "/portfolio/balance", unsigned)
    assert [r.status_code for r in responses] == [400, 409, 404]
    assert unsigned.status_code == 401
