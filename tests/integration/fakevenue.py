"""A small fake Kalshi venue for client tests: real HTTP on 127.0.0.1, real signature checks.

It serves canned current-shape payloads under /trade-api/v2, keeps the orders it accepts, verifies
every signed request with ``kalshi.signing.verify`` (portfolio paths must be signed), and can be
told to fail: answer a status before processing (429 n times, 500...), answer 500 *after* accepting,
stall past the client's timeout after accepting, or drop the connection after accepting.

It is deliberately not the paper exchange: no matching, just enough state to observe the client.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from kalshi.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, signing_message, verify

PREFIX = "/trade-api/v2"


def make_market(ticker: str, *, event_ticker: str = "KXHIGHNY-26JUN02", yes_bid: str = "0.4100",
                yes_ask: str = "0.4300", last: str = "0.4200", volume: str = "120.00",
                status: str = "active") -> dict[str, Any]:
    """A current-shape (2026) market object."""
    no_bid = f"{1 - Decimal(yes_ask):.4f}"
    no_ask = f"{1 - Decimal(yes_bid):.4f}"
    return {
        "ticker": ticker, "event_ticker": event_ticker, "market_type": "binary",
        "title": "t", "subtitle": "", "yes_sub_title": "80 or above", "no_sub_title": "80 or above",
        "created_time": "2026-06-01T09:30:49.292343Z", "updated_time": "2026-06-01T14:00:02Z",
        "open_time": "2026-06-01T14:00:00Z", "close_time": "2026-06-03T04:59:00Z",
        "latest_expiration_time": "2026-06-09T14:00:00Z", "settlement_timer_seconds": 3600,
        "status": status, "yes_bid_dollars": yes_bid, "yes_ask_dollars": yes_ask,
        "no_bid_dollars": no_bid, "no_ask_dollars": no_ask, "last_price_dollars": last,
        "previous_yes_bid_dollars": "0.0000", "previous_yes_ask_dollars": "0.0000",
        "previous_price_dollars": "0.0000", "yes_bid_size_fp": "5.00", "yes_ask_size_fp": "7.00",
        "volume_fp": volume, "volume_24h_fp": volume, "open_interest_fp": "10.00",
        "notional_value_dollars": "1.0000", "result": "", "can_close_early": True,
        "expiration_value": "", "rules_primary": "r", "rules_secondary": "s",
        "price_level_structure": "linear_cent",
        "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
        "strike_type": "greater", "floor_strike": 80,
    }


@dataclass
class Fault:
    """One planned failure for the next request matching ``method`` and ``path`` (suffix)."""

    method: str
    path: str
    mode: str  # "status" | "after_status" | "stall" | "drop"
    status: int = 500
    body: dict[str, Any] | None = None
    seconds: float = 0.0


@dataclass
class FakeVenue:
    """State and fault plan of the fake venue (all mutation under ``lock``)."""

    public_key: rsa.RSAPublicKey
    key_id: str
    markets: list[dict[str, Any]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)
    balance_cents: int = 123456
    page_size: int = 10
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 0

    def reset(self) -> None:
        """Forget orders, faults and the request log."""
        with self.lock:
            self.markets.clear()
            self.orders.clear()
            self.fills.clear()
            self.faults.clear()
            self.log.clear()
            self.bad_signatures = 0
            self.page_size = 10

    def fail(self, method: str, path: str, mode: str = "status", *, times: int = 1,
             status: int = 500, body: dict[str, Any] | None = None, seconds: float = 0.0) -> None:
        """Plan ``times`` failures for requests to ``path`` (matched as a suffix)."""
        with self.lock:
            for _ in range(times):
                self.faults.append(Fault(method, path, mode, status, body, seconds))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for i, fault in enumerate(self.faults):
                if fault.method == method and path.endswith(fault.path):
                    return self.faults.pop(i)
        return None

    def requests_to(self, method: str, path: str) -> int:
        """How many requests reached the server for ``path`` (suffix)."""
        with self.lock:
            return sum(1 for m, p, _ in self.log if m == method and p.endswith(path))

    def new_id(self) -> str:
        with self.lock:
            self._next_id += 1
            return f"ord-{self._next_id:04d}"


def _page(items: list[Any], request: Request, default_size: int) -> tuple[list[Any], str]:
    start = int(request.query_params.get("cursor") or 0)
    size = int(request.query_params.get("limit") or default_size)
    chunk = items[start:start + size]
    cursor = str(start + size) if start + size < len(items) else ""
    return chunk, cursor


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "details": ""}, status_code=status)


def build_app(venue: FakeVenue) -> Any:
    """The ASGI app: routes under /trade-api/v2 wrapped in the fault-injection layer."""
    app = FastAPI()

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        with venue.lock:
            venue.log.append((request.method, path, str(request.url.query)))
        key = request.headers.get(HEADER_KEY)
        if key is not None:
            ts = request.headers.get(HEADER_TIMESTAMP, "0")
            message = signing_message(int(ts), request.method, path)
            good = key == venue.key_id and verify(
                venue.public_key, message, request.headers.get(HEADER_SIGNATURE, "")
            )
            if not good:
                with venue.lock:
                    venue.bad_signatures += 1
                return _error(401, "authentication_error", "invalid signature")
        elif path.startswith(f"{PREFIX}/portfolio"):
            return _error(401, "authentication_error", "missing credentials")
        response: Response = await call_next(request)
        return response

    @app.get(f"{PREFIX}/exchange/status")
    async def status() -> dict[str, Any]:
        return {"exchange_active": True, "trading_active": True}

    @app.get(f"{PREFIX}/markets")
    async def markets(request: Request) -> dict[str, Any]:
        items = list(venue.markets)
        series = request.query_params.get("series_ticker")
        if series:
            items = [m for m in items if m["event_ticker"].startswith(series)]
        wanted = {"open": "active", "closed": "closed", "settled": "finalized"}.get(
            request.query_params.get("status", ""))
        if wanted:
            items = [m for m in items if m["status"] == wanted]
        chunk, cursor = _page(items, request, venue.page_size)
        return {"markets": chunk, "cursor": cursor}

    @app.get(f"{PREFIX}/markets/{{ticker}}")
    async def market(ticker: str) -> Response:
        for m in venue.markets:
            if m["ticker"] == ticker:
                return JSONResponse({"market": m})
        return _error(404, "not_found", f"market {ticker} not found")

    @app.get(f"{PREFIX}/markets/{{ticker}}/orderbook")
    async def orderbook(ticker: str) -> Response:
        if not any(m["ticker"] == ticker for m in venue.markets):
            return _error(404, "not_found", f"market {ticker} not found")
        return JSONResponse({"orderbook_fp": {
            "yes_dollars": [["0.4000", "3.00"], ["0.4100", "5.00"]],
            "no_dollars": [["0.5600", "2.00"], ["0.5700", "7.00"]],
        }})

    @app.get(f"{PREFIX}/portfolio/balance")
    async def balance() -> dict[str, Any]:
        cents = venue.balance_cents
        return {"balance": cents, "balance_dollars": f"{cents // 100}.{cents % 100:02d}",
                "portfolio_value": 5000, "updated_ts": 1767225600}

    @app.get(f"{PREFIX}/portfolio/positions")
    async def positions() -> dict[str, Any]:
        return {"market_positions": [{
            "ticker": "KXHIGHNY-26JUN02-T80", "exchange_index": 0, "position_fp": "-3.00",
            "market_exposure_dollars": "1.5900", "realized_pnl_dollars": "0.0000",
            "total_traded_dollars": "1.5900", "fees_paid_dollars": "0.0600",
            "last_updated_ts": "2026-06-02T03:00:00Z"}],
            "event_positions": [], "cursor": ""}

    @app.get(f"{PREFIX}/portfolio/fills")
    async def fills(request: Request) -> dict[str, Any]:
        chunk, cursor = _page(list(venue.fills), request, venue.page_size)
        return {"fills": chunk, "cursor": cursor}

    @app.get(f"{PREFIX}/portfolio/orders")
    async def orders(request: Request) -> dict[str, Any]:
        with venue.lock:
            items = list(venue.orders.values())
        ticker = request.query_params.get("ticker")
        if ticker:
            items = [o for o in items if o["ticker"] == ticker]
        status = request.query_params.get("status")
        if status:
            items = [o for o in items if o["status"] == status]
        chunk, cursor = _page(items, request, venue.page_size)
        return {"orders": chunk, "cursor": cursor}

    @app.get(f"{PREFIX}/portfolio/orders/{{order_id}}")
    async def order(order_id: str) -> Response:
        found = venue.orders.get(order_id)
        if found is None:
            return _error(404, "not_found", "order not found")
        return JSONResponse({"order": found})

    @app.post(f"{PREFIX}/portfolio/events/orders")
    async def create(request: Request) -> Response:
        body = json.loads(await request.body())
        for key in ("ticker", "side", "count", "price", "time_in_force",
                    "self_trade_prevention_type"):
            if key not in body:
                return _error(400, "invalid_parameters", f"missing {key}")
        if not any(m["ticker"] == body["ticker"] for m in venue.markets):
            return _error(400, "market_not_found", f"no market {body['ticker']}")
        cid = body.get("client_order_id") or ""
        with venue.lock:
            if cid and any(o["client_order_id"] == cid for o in venue.orders.values()):
                return _error(409, "order_already_exists", "duplicate client_order_id")
        order_id = venue.new_id()
        yes = Decimal(body["price"])
        count = f"{Decimal(body['count']):.2f}"
        record = {
            "order_id": order_id, "user_id": "u1", "client_order_id": cid,
            "ticker": body["ticker"], "outcome_side": "yes" if body["side"] == "bid" else "no",
            "book_side": body["side"], "type": "limit", "status": "resting",
            "yes_price_dollars": f"{yes:.4f}", "no_price_dollars": f"{1 - yes:.4f}",
            "fill_count_fp": "0.00", "remaining_count_fp": count, "initial_count_fp": count,
            "taker_fill_cost_dollars": "0.0000", "maker_fill_cost_dollars": "0.0000",
            "taker_fees_dollars": "0.0000", "maker_fees_dollars": "0.0000",
            "created_time": "2026-06-02T03:00:00Z",
        }
        with venue.lock:
            venue.orders[order_id] = record
        return JSONResponse({"order_id": order_id, "client_order_id": cid,
                             "fill_count": "0.00", "remaining_count": record["remaining_count_fp"],
                             "ts_ms": int(time.time() * 1000)}, status_code=201)

    @app.delete(f"{PREFIX}/portfolio/events/orders/{{order_id}}")
    async def cancel(order_id: str) -> Response:
        with venue.lock:
            found = venue.orders.get(order_id)
            if found is None:
                return _error(404, "not_found", "order not found")
            reduced = found["remaining_count_fp"]
            found["status"] = "canceled"
            found["remaining_count_fp"] = "0.00"
        return JSONResponse({"order_id": order_id, "client_order_id": found["client_order_id"],
                             "reduced_by": reduced, "ts_ms": int(time.time() * 1000)})

    @app.delete(f"{PREFIX}/portfolio/events/orders")
    async def cancel_all() -> Response:
        with venue.lock:
            for o in venue.orders.values():
                o["status"], o["remaining_count_fp"] = "canceled", "0.00"
        return Response(status_code=204)

    @app.post(f"{PREFIX}/portfolio/order_groups/create")
    async def create_group() -> Response:
        return JSONResponse({"order_group_id": "og-1", "subaccount": 0}, status_code=201)

    @app.put(f"{PREFIX}/portfolio/order_groups/{{group_id}}/trigger")
    async def trigger_group(group_id: str) -> dict[str, Any]:
        return {}

    return _Faults(app, venue)


class _Faults:
    """Raw ASGI wrapper that applies the venue's planned faults around the real app."""

    def __init__(self, app: Any, venue: FakeVenue) -> None:
        self.app = app
        self.venue = venue

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fault = self.venue.take_fault(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.mode == "status":
            with self.venue.lock:
                self.venue.log.append((scope["method"], scope["path"], "fault"))
            body = fault.body if fault.body is not None else {"code": "fault", "message": "x"}
            await JSONResponse(body, status_code=fault.status)(scope, receive, send)
            return
        captured: list[dict[str, Any]] = []

        async def capture(message: dict[str, Any]) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)  # the request is processed (accepted) here
        if fault.mode == "after_status":
            body = fault.body if fault.body is not None else {"code": "internal", "message": "x"}
            await JSONResponse(body, status_code=fault.status)(scope, receive, send)
        elif fault.mode == "stall":
            await asyncio.sleep(fault.seconds)
            for message in captured:
                await send(message)
        elif fault.mode == "drop":
            await send(captured[0])  # response start, then the connection dies mid-body
            raise ConnectionAbortedError("fake venue: dropping the connection after accepting")
        else:  # pragma: no cover - a typo in a test
            raise ValueError(fault.mode)


@contextmanager
def serve(venue: FakeVenue) -> Iterator[str]:
    """Serve the venue on 127.0.0.1:<free port> in a thread; yield the base URL."""
    config = uvicorn.Config(build_app(venue), host="127.0.0.1", port=0, log_level="critical",
                            lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake venue did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{PREFIX}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
