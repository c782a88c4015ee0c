"""KalshiClient on rare response shapes, through httpx.MockTransport (a hand-written fake)."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable

import httpx
import pytest

from kalshi.client import KalshiClient, order_request
from kalshi.errors import (
    AuthError,
    NetworkError,
    NotFound,
    OrderAlreadyExists,
    OrderRejected,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
    ServerError,
    WireFormatError,
)
from kalshi.ratelimit import RateLimiter
from kalshi.signing import HEADER_SIGNATURE, KalshiAuth, generate_private_key
from kalshi.wire import (
    AmendOrderV2Request,
    CreateOrderV2Request,
    DecreaseOrderV2Request,
    SubpennyPriceError,
)
from tests.integration.fakevenue import make_market

BASE = "https://venue.test/trade-api/v2"
Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """Answers each (method, path) with the next scripted reply; records every request."""

    def __init__(self, replies: dict[tuple[str, str], list[Reply]]) -> None:
        self.replies = replies
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path.removeprefix("/trade-api/v2"))
        queue = self.replies[key]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            return reply(request)
        return reply

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests
                   if r.method == method and r.url.path == f"/trade-api/v2{path}")


def _client(script: Script, sleeps: list[float] | None = None, **kw) -> KalshiClient:
    return KalshiClient(BASE, transport=httpx.MockTransport(script), max_retries=3,
                        sleep=(sleeps if sleeps is not None else []).append,
                        rng=random.Random(3), **kw)


def _json(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body)


ORDER = {"order_id": "o-1", "user_id": "u", "client_order_id": "cid-1", "ticker": "T",
         "outcome_side": "yes", "book_side": "bid", "type": "limit", "status": "resting",
         "yes_price_dollars": "0.5600", "no_price_dollars": "0.4400", "fill_count_fp": "0.00",
         "remaining_count_fp": "10.00", "initial_count_fp": "10.00",
         "taker_fill_cost_dollars": "0.0000", "maker_fill_cost_dollars": "0.0000",
         "taker_fees_dollars": "0.0000", "maker_fees_dollars": "0.0000"}
CREATED = {"order_id": "o-1", "client_order_id": "cid-1", "fill_count": "0.00",
           "remaining_count": "10.00", "ts_ms": 1}
CREATE = ("POST", "/portfolio/events/orders")
LIST = ("GET", "/portfolio/orders")


def _create_request() -> CreateOrderV2Request:
    return order_request("T", "bid", 10, 56, client_order_id="cid-1")


def test_get_market_malformed_json_raises_protocol_error_without_retry():
    script = Script({("GET", "/markets/T"): [httpx.Response(200, content=b"{not json")]})
    with _client(script) as c, pytest.raises(ProtocolError, match="malformed JSON"):
        c.get_market("T")
    assert len(script.requests) == 1


def test_get_market_2xx_without_market_object_raises_wire_format_error():
    script = Script({("GET", "/markets/T"): [_json(200, {"markets": []})]})
    with _client(script) as c, pytest.raises(WireFormatError) as info:
        c.get_market("T")
    assert info.value.field == "market"


def test_create_order_answered_200_not_201_is_protocol_error_not_success():
    script = Script({CREATE: [_json(200, CREATED)]})
    with _client(script) as c, pytest.raises(ProtocolError, match="expected HTTP 201, got 200"):
        c.create_order(_create_request())


def test_create_order_201_without_order_id_raises_naming_field():
    body = {"fill_count": "0.00", "remaining_count": "1.00", "ts_ms": 1}
    script = Script({CREATE: [_json(201, body)]})
    with _client(script) as c, pytest.raises(WireFormatError, match="order_id: missing"):
        c.create_order(_create_request())


def test_cancel_all_answered_200_is_protocol_error():
    script = Script({("DELETE", "/portfolio/events/orders"): [_json(200, {})]})
    with _client(script) as c, pytest.raises(ProtocolError, match="expected HTTP 204"):
        c.cancel_all_orders()


def test_create_order_without_client_order_id_refused_before_sending():
    script = Script({})
    request = CreateOrderV2Request(ticker="T", side="bid", count="1", price="0.50",
                                   time_in_force="good_till_canceled",
                                   self_trade_prevention_type="maker")
    with _client(script) as c, pytest.raises(ValueError, match="client_order_id"):
        c.create_order(request)
    assert script.requests == []


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, {"code": "INSUFFICIENT_BALANCE", "message": "no money"}, OrderRejected),
    (401, {"code": "authentication_error"}, AuthError),
    (403, {"code": "forbidden"}, AuthError),
    (404, {"code": "not_found"}, NotFound),
    (409, {"code": "order_cannot_be_modified"}, OrderRejected),
])
def test_create_order_error_status_maps_to_class_with_code(status, body, error):
    script = Script({CREATE: [_json(status, body)]})
    sleeps: list[float] = []
    with _client(script, sleeps) as c, pytest.raises(error) as info:
        c.create_order(_create_request())
    assert info.value.status == status
    assert info.value.code == body["code"]
    assert not isinstance(info.value, OrderAlreadyExists)
    assert sleeps == []
    assert script.count(*CREATE) == 1


def test_get_market_500_html_body_retried_then_server_error():
    script = Script({("GET", "/markets/T"): [httpx.Response(502, content=b"<html>bad</html>")]})
    sleeps: list[float] = []
    with _client(script, sleeps) as c, pytest.raises(ServerError) as info:
        c.get_market("T")
    assert info.value.status == 502
    assert len(sleeps) == 3
    assert len(script.requests) == 4


def test_get_market_read_timeout_retried_as_network_error_then_succeeds():
    script = Script({("GET", "/markets/T"): [httpx.ReadTimeout("slow"),
                                             _json(200, {"market": make_market("T")})]})
    sleeps: list[float] = []
    with _client(script, sleeps) as c:
        assert c.get_market("T").ticker == "T"
    assert len(sleeps) == 1


def test_amend_read_timeout_raises_outcome_unknown_without_resend():
    path = ("POST", "/portfolio/events/orders/o-1/amend")
    script = Script({path: [httpx.ReadTimeout("slow")]})
    amend = AmendOrderV2Request(ticker="T", side="bid", price="0.55", count="10")
    with _client(script) as c, pytest.raises(OutcomeUnknown):
        c.amend_order("o-1", amend)
    assert script.count(*path) == 1


def test_decrease_500_after_sending_is_outcome_unknown_not_retried():
    path = ("POST", "/portfolio/events/orders/o-1/decrease")
    script = Script({path: [_json(500, {"code": "internal"})]})
    with _client(script) as c, pytest.raises(OutcomeUnknown) as info:
        c.decrease_order("o-1", DecreaseOrderV2Request(reduce_by="5"))
    assert info.value.status == 500
    assert isinstance(info.value.__cause__, ServerError)
    assert script.count(*path) == 1


def test_amend_connect_error_is_retried_because_nothing_was_sent():
    path = ("POST", "/portfolio/events/orders/o-1/amend")
    ok = _json(200, {"order_id": "o-1", "ts_ms": 5, "remaining_count": "10.00"})
    script = Script({path: [httpx.ConnectError("refused"), ok]})
    amend = AmendOrderV2Request(ticker="T", side="bid", price="0.55", count="10")
    with _client(script) as c:
        assert c.amend_order("o-1", amend).ts_ms == 5
    assert script.count(*path) == 2


def test_amend_429_is_retried_with_backoff():
    path = ("POST", "/portfolio/events/orders/o-1/amend")
    ok = _json(200, {"order_id": "o-1", "ts_ms": 5})
    script = Script({path: [_json(429, {"error": "too many requests"}), ok]})
    sleeps: list[float] = []
    with _client(script, sleeps) as c:
        c.amend_order("o-1", AmendOrderV2Request(ticker="T", side="bid", price="0.55",
                                                 count="10"))
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.25


def test_create_order_unknown_outcome_and_failed_lookup_raises_without_resend():
    script = Script({CREATE: [httpx.ReadTimeout("slow")], LIST: [_json(503, {})]})
    with _client(script) as c, pytest.raises(OutcomeUnknown, match="lookup failed"):
        c.create_order(_create_request())
    assert script.count(*CREATE) == 1


def test_create_order_always_unknown_and_absent_resends_same_id_then_gives_up():
    script = Script({CREATE: [httpx.RemoteProtocolError("reset")],
                     LIST: [_json(200, {"orders": [], "cursor": ""})]})
    with _client(script) as c, pytest.raises(OutcomeUnknown):
        c.create_order(_create_request())
    bodies = [json.loads(r.content) for r in script.requests if r.method == "POST"]
    assert len(bodies) == 4
    assert {b["client_order_id"] for b in bodies} == {"cid-1"}
    assert script.count(*LIST) == 4  # every resend is preceded by a lookup


def test_create_order_409_lookup_pages_until_client_id_found():
    other = dict(ORDER, order_id="o-0", client_order_id="someone-else")
    script = Script({
        CREATE: [_json(409, {"code": "order_already_exists", "message": "dup"})],
        LIST: [_json(200, {"orders": [other], "cursor": "p2"}),
               _json(200, {"orders": [ORDER], "cursor": ""})],
    })
    with _client(script) as c:
        ack = c.create_order(_create_request())
    assert (ack.order_id, ack.resolved_by_lookup) == ("o-1", True)
    cursors = [r.url.params.get("cursor") for r in script.requests if r.method == "GET"]
    assert cursors == [None, "p2"]
    assert all(r.url.params.get("ticker") == "T" for r in script.requests if r.method == "GET")


def test_create_order_409_but_lookup_finds_nothing_raises_protocol_error():
    script = Script({CREATE: [_json(409, {"code": "order_already_exists"})],
                     LIST: [_json(200, {"orders": [], "cursor": ""})]})
    with _client(script) as c, pytest.raises(ProtocolError, match="no such order"):
        c.create_order(_create_request())


def test_iter_markets_repeated_cursor_raises_instead_of_looping():
    page = _json(200, {"markets": [make_market("T")], "cursor": "same"})
    script = Script({("GET", "/markets"): [page]})
    with _client(script) as c, pytest.raises(ProtocolError, match="repeated cursor"):
        list(c.iter_markets())
    assert len(script.requests) == 2


def test_batch_create_item_count_mismatch_is_protocol_error():
    script = Script({("POST", "/portfolio/events/orders/batched"): [
        _json(201, {"orders": [{"order_id": "o-1", "client_order_id": "a"}]})]})
    orders = [order_request("T", "bid", 1, 50, client_order_id=c) for c in ("a", "b")]
    with _client(script) as c, pytest.raises(ProtocolError, match="1 items for 2 orders"):
        c.batch_create_orders(orders)


def test_batch_create_reports_per_item_errors_in_order():
    script = Script({("POST", "/portfolio/events/orders/batched"): [
        _json(201, {"orders": [{"order_id": "o-1", "client_order_id": "a", "ts_ms": 1},
                               {"client_order_id": "b",
                                "error": {"code": "INVALID_PRICE", "message": "off grid"}}]})]})
    orders = [order_request("T", "bid", 1, 50, client_order_id=c) for c in ("a", "b")]
    with _client(script) as c:
        first, second = c.batch_create_orders(orders)
    assert first.order_id == "o-1"
    assert first.error is None
    assert second.order_id is None
    assert second.error.code == "INVALID_PRICE"
    body = json.loads(script.requests[0].content)
    assert [o["client_order_id"] for o in body["orders"]] == ["a", "b"]


def test_client_429_everywhere_raises_rate_limited_after_max_retries():
    script = Script({("GET", "/exchange/status"): [_json(429, {"error": "too many requests"})]})
    sleeps: list[float] = []
    with _client(script, sleeps) as c, pytest.raises(RateLimited):
        c.get_exchange_status()
    assert len(sleeps) == 3
    assert [s <= cap for s, cap in zip(sleeps, (0.25, 0.5, 1.0), strict=True)] == [True] * 3


def test_client_limiter_charges_documented_write_costs():
    clock_now = [0.0]
    limiter = RateLimiter("basic", clock=lambda: clock_now[0], sleep=lambda s: None)
    script = Script({CREATE: [_json(201, CREATED)],
                     ("DELETE", "/portfolio/events/orders/o-1"): [
                         _json(200, {"order_id": "o-1", "reduced_by": "10.00", "ts_ms": 2})],
                     ("GET", "/portfolio/orders/o-1"): [_json(200, {"order": ORDER})]})
    with _client(script, limiter=limiter) as c:
        c.create_order(_create_request())
        c.cancel_order("o-1")
        c.get_order("o-1")
    assert limiter.bucket("write").available() == pytest.approx(100 - 10 - 2)
    assert limiter.bucket("read").available() == pytest.approx(400 - 2)


def test_client_never_logs_or_raises_with_key_or_signature(caplog):
    key = generate_private_key(1024)
    signatures: list[str] = []

    def reject(request: httpx.Request) -> httpx.Response:
        signatures.append(request.headers[HEADER_SIGNATURE])
        return _json(401, {"code": "authentication_error", "message": "bad signature"})

    script = Script({CREATE: [reject]})
    caplog.set_level(logging.DEBUG)
    with KalshiClient(BASE, KalshiAuth("secret-key-id", key),
                      transport=httpx.MockTransport(script)) as c:
        with pytest.raises(AuthError) as info:
            c.create_order(_create_request())
        text = caplog.text + str(info.value) + repr(c)
    assert signatures
    assert signatures[0] not in text
    assert "secret-key-id" not in text
    assert "PRIVATE KEY" not in text


def test_get_positions_merges_pages_of_market_and_event_positions():
    pos = {"ticker": "T", "position_fp": "2.00", "market_exposure_dollars": "1.0000",
           "realized_pnl_dollars": "0", "total_traded_dollars": "1", "fees_paid_dollars": "0"}
    ev = {"event_ticker": "E", "total_cost_dollars": "1.0000", "event_exposure_dollars": "1",
          "realized_pnl_dollars": "0", "fees_paid_dollars": "0", "total_cost_shares_fp": "2.00"}
    script = Script({("GET", "/portfolio/positions"): [
        _json(200, {"market_positions": [pos], "event_positions": [ev], "cursor": "c2"}),
        _json(200, {"market_positions": [dict(pos, ticker="U")], "event_positions": []}),
    ]})
    with _client(script) as c:
        markets, events = c.get_positions()
    assert [m.ticker for m in markets] == ["T", "U"]
    assert [e.event_ticker for e in events] == ["E"]


def test_client_network_error_on_read_is_not_outcome_unknown():
    script = Script({("GET", "/exchange/status"): [httpx.ReadError("reset")]})
    with _client(script) as c, pytest.raises(NetworkError) as info:
        c.get_exchange_status()
    assert not isinstance(info.value, OutcomeUnknown)


def test_create_order_409_for_other_ticker_or_side_raises_instead_of_returning_it():
    foreign = dict(ORDER, book_side="ask", outcome_side="no")
    script = Script({CREATE: [_json(409, {"code": "order_already_exists"})],
                     LIST: [_json(200, {"orders": [foreign], "cursor": ""})]})
    with _client(script) as c, pytest.raises(OrderAlreadyExists, match="belongs to order o-1"):
        c.create_order(_create_request())


def test_create_order_409_found_at_other_price_returns_it_and_warns(caplog):
    amended = dict(ORDER, yes_price_dollars="0.5500", no_price_dollars="0.4500")
    script = Script({CREATE: [_json(409, {"code": "order_already_exists"})],
                     LIST: [_json(200, {"orders": [amended], "cursor": ""})]})
    with caplog.at_level(logging.WARNING), _client(script) as c:
        ack = c.create_order(_create_request())
    assert ack.order_id == "o-1"
    assert "amended since?" in caplog.text


def test_get_orderbooks_sends_repeated_tickers_and_keys_books_by_ticker():
    book = {"yes_dollars": [["0.4000", "1.00"]], "no_dollars": []}
    script = Script({("GET", "/markets/orderbooks"): [_json(200, {"orderbooks": [
        {"ticker": "A", "orderbook_fp": book}, {"ticker": "B", "orderbook_fp": book}]})]})
    with _client(script) as c:
        books = c.get_orderbooks(["A", "B"])
    assert sorted(books) == ["A", "B"]
    assert books["A"].best_yes_bid is not None
    assert script.requests[0].url.query == b"tickers=A&tickers=B"


def test_wire_format_error_carries_method_path_and_status():
    bad = dict(make_market("T"), status="exploded")
    script = Script({("GET", "/markets/T"): [_json(200, {"market": bad})]})
    with _client(script) as c, pytest.raises(WireFormatError) as info:
        c.get_market("T")
    assert (info.value.method, info.value.path, info.value.status) == ("GET", "/markets/T", 200)
    assert info.value.field == "market[T].status"
    assert info.value.value == "exploded"


def test_create_order_409_lookup_works_on_subpenny_market():
    deci = dict(ORDER, yes_price_dollars="0.5650", no_price_dollars="0.4350")
    script = Script({CREATE: [_json(409, {"code": "order_already_exists"})],
                     LIST: [_json(200, {"orders": [deci], "cursor": ""})]})
    request = CreateOrderV2Request(ticker="T", side="bid", count="10", price="0.5650",
                                   time_in_force="good_till_canceled",
                                   self_trade_prevention_type="maker", client_order_id="cid-1")
    with _client(script) as c:
        assert c.create_order(request).order_id == "o-1"
        with pytest.raises(SubpennyPriceError):  # a plain listing still refuses it by default
            list(c.iter_orders(ticker="T"))
