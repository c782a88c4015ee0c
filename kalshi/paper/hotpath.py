"""A lean ASGI path for the busiest route, ``POST /trade-api/v2/portfolio/events/orders``.

Invariant: it answers exactly what the Starlette route answers (status, JSON bytes, and the
``content-length``/``content-type`` headers of ``JSONResponse``): the signature is verified on
every request, rate-limit tokens are spent, and a 201 goes out only after the command is
committed. Every other request goes to the wrapped app unchanged. It skips only framework work
per order (middleware layers, ``Request`` and ``Headers`` objects, route lookup), which is about a
tenth of the exchange's CPU per order.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from kalshi.paper.exchange import PaperExchange
from kalshi.paper.http import PREFIX, REFUSALS, RateLimitedError, refusal
from kalshi.paper.portfolio import submit_order
from kalshi.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP

__all__ = ["ORDERS_PATH", "OrderFastPath", "json_bytes"]

ORDERS_PATH = PREFIX + "/portfolio/events/orders"
_AUTH_HEADERS = frozenset(
    name.lower().encode("latin-1") for name in (HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP)
)
# Starlette's JSONResponse.render, with the encoder built once instead of per response
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                           separators=(",", ":")).encode
_JSON = (b"content-type", b"application/json")


def json_bytes(content: Any) -> bytes:
    """Return ``content`` rendered as Starlette's ``JSONResponse`` renders it."""
    return _ENCODE(content).encode("utf-8")


async def _respond(send: Send, status: int, content: Any) -> None:
    body = json_bytes(content)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode("latin-1")), _JSON]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    # the whole body, or None when the client went away before sending it
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class OrderFastPath:
    """Serve ``POST .../portfolio/events/orders`` directly; pass everything else to ``app``."""

    def __init__(self, app: ASGIApp, exchange: PaperExchange) -> None:
        self.app = app
        self.exchange = exchange

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != ORDERS_PATH
                or scope["method"] != "POST" or scope.get("root_path")):
            await self.app(scope, receive, send)
            return
        exchange = self.exchange
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in _AUTH_HEADERS:  # the first of repeated headers wins, as in Starlette
                headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
        account, why = exchange.authenticate("POST", path, headers)
        if account is None:
            await _respond(send, 401, {"code": "unauthorized",
                                       "message": "authentication failed", "details": why})
            return
        key_id = exchange.key_for_request(headers) or ""
        try:
            if not exchange.rate_limiter.allow(key_id, exchange.key_tier(key_id), "write", 10):
                raise RateLimitedError(key_id)
            raw = await _read_body(receive)
            if raw is None:
                return  # nobody to answer; nothing was submitted
            body = await submit_order(exchange, account, raw)
        except REFUSALS as exc:
            status, error = refusal(exc)
            await _respond(send, status, error)
            return
        # committed: from here on a dropped response is a "lost ack" fault (FaultMiddleware)
        scope.setdefault("state", {})["paper_accepted"] = True
        await _respond(send, 201, body)
