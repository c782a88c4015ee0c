"""Helpers of the news tests and bench: a scriptable loopback feed server (ETag/Last-Modified,
delays, oversize bodies) and paper-exchange markets with a two-sided book, some traded volume
and a seeded model probability (what the weather model would have recorded)."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kalshi.client import KalshiClient
from kalshi.signing import KalshiAuth, generate_private_key
from models.ledger import Decision, ms_from_datetime
from tasks.ledger_store import record_decision
from tests.integration.conftest import http, register_key

LAST_MODIFIED = "Tue, 14 Jul 2026 14:00:00 GMT"


@dataclass
class FeedScript:
    """What the feed server serves per path: body, content type, delay; what it saw."""

    docs: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    not_modified: Counter[str] = field(default_factory=Counter)

    def set(self, path: str, body: bytes, media_type: str) -> None:
        self.docs[path] = (body, media_type)


def feed_app(script: FeedScript) -> Starlette:
    """Return an ASGI app serving `script` with strong ETags and conditional 304s."""

    async def serve(request: Request) -> Response:
        path = "/" + request.path_params["path"]
        script.hits[path] += 1
        delay = script.delay_s.get(path, 0.0)
        if delay:
            import asyncio

            await asyncio.sleep(delay)
        if path not in script.docs:
            return Response("not found", status_code=404)
        body, media_type = script.docs[path]
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            script.not_modified[path] += 1
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type=media_type,
                        headers={"ETag": etag, "Last-Modified": LAST_MODIFIED})

    return Starlette(routes=[Route("/{path:path}", serve)])


_VOLUME_KEY = generate_private_key()
_registered: set[str] = set()


def _volume_client(root_url: str, operator_url: str) -> KalshiClient:
    if operator_url not in _registered:
        register_key(operator_url, "news-volume-key", _VOLUME_KEY)
        _registered.add(operator_url)
    return KalshiClient(f"{root_url}/trade-api/v2", KalshiAuth("news-volume-key", _VOLUME_KEY),
                        timeout=10)


def add_markets(operator_url: str, series: str, tickers: list[tuple[str, str]], *,
                category: str = "Climate and Weather") -> None:
    """List binary markets (ticker, event_ticker) in `series` (with its category)."""
    definitions: list[dict[str, Any]] = []
    for ticker, event_ticker in tickers:
        market = {
            "ticker": ticker, "event_ticker": event_ticker, "series_ticker": series,
            "market_type": "binary", "title": f"News test {ticker}", "yes_sub_title": "Yes",
            "no_sub_title": "No", "open_time": "2020-01-01T00:00:00Z",
            "close_time": "2099-01-01T00:00:00Z", "rules_primary": "Test market.",
            "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
        }
        event = {"event_ticker": event_ticker, "series_ticker": series, "title": "News test",
                 "sub_title": "test", "mutually_exclusive": False}
        definitions.append({"series": {"ticker": series, "frequency": "daily",
                                       "title": series, "category": category},
                            "event": event, "markets": [market]})
    with http(timeout=60) as client:
        response = client.post(f"{operator_url}/markets", json={
            "definitions": definitions, "reopen": True, "reopen_hours": 24})
    assert response.status_code == 201, response.text


def make_book(root_url: str, operator_url: str, counterparty: KalshiClient, tickers: list[str],
              *, bid: int = 40, ask: int = 55, depth: int = 30, volume: int = 10,
              both_sides: bool = True) -> None:
    """Trade `volume` contracts at `bid` (a third account sells), then leave YES `bid` and
    (optionally) YES `ask` resting from the counterparty, each `depth` deep."""
    from kalshi.client import order_request

    seller = _volume_client(root_url, operator_url)
    stamp = time.time_ns()
    with seller:
        for start in range(0, len(tickers), 10):
            chunk = tickers[start:start + 10]
            bids = [order_request(t, "bid", depth + volume, bid,
                                  client_order_id=f"nb-{stamp}-{t}"[:60],
                                  time_in_force="good_till_canceled") for t in chunk]
            asks = []
            if both_sides:
                asks = [order_request(t, "ask", depth, ask, client_order_id=f"na-{stamp}-{t}"[:60],
                                      time_in_force="good_till_canceled") for t in chunk]
            for item in counterparty.batch_create_orders(bids + asks):
                assert item.error is None, item.error
            if volume:
                sells = [order_request(t, "ask", volume, bid,
                                       client_order_id=f"nv-{stamp}-{t}"[:60],
                                       time_in_force="immediate_or_cancel") for t in chunk]
                for item in seller.batch_create_orders(sells):
                    assert item.error is None, item.error


def seed_model(engine: Any, ticker: str, event_ticker: str, prob_yes: float,
               as_of: datetime | None = None) -> int:
    """Record the weather model's probability for `ticker` (the base a shift moves)."""
    as_of = as_of or datetime.now(UTC)
    return record_decision(engine, Decision(
        strategy="weather-v0", market_ticker=ticker, event_ticker=event_ticker,
        model_version="test-model-v0", model_inputs_json="{}", prob_yes=prob_yes,
        yes_bid_cents=None, yes_ask_cents=None, edge_cents=None, action="none",
        reason="seeded by the test", decided_ts_ms=ms_from_datetime(as_of)))
