"""One exception tree for everything that goes wrong talking to Kalshi, grouped by what to do.

- ``TransientError``: retry later (429, 5xx, network, timeouts). ``OutcomeUnknown`` is the subset
  where a write may have taken effect: look the order up by ``client_order_id`` before resending.
- ``OrderRejected``: a business rejection with Kalshi's ``code``; record it, never retry blindly.
- ``AuthError``: bad key, signature or clock; fail the run.
- ``NotFound``: unknown market, order or path.
- ``ProtocolError``: the response was not what the contract promises (malformed JSON, a 2xx without
  the expected object, a wrong success status). Never treated as success.

Errors carry method, path, status and Kalshi's code; never a key, a signature or a request body.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "KalshiError",
    "TransientError",
    "RateLimited",
    "ServerError",
    "NetworkError",
    "OutcomeUnknown",
    "OrderRejected",
    "OrderAlreadyExists",
    "AuthError",
    "NotFound",
    "ProtocolError",
    "WireFormatError",
    "classify_status",
]


class KalshiError(Exception):
    """Base of every error raised by ``kalshi``."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        code: str | None = None,
        details: str | None = None,
    ) -> None:
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.details = details
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.method} {self.path}" if self.method and self.path else (self.path or "")
        parts = [
            p for p in (where, f"HTTP {self.status}" if self.status else "", self.code or "") if p
        ]
        head = " ".join(parts)
        tail = f": {self.details}" if self.details else ""
        return f"{head}: {self.message}{tail}" if head else f"{self.message}{tail}"


class TransientError(KalshiError):
    """Retryable: the request may succeed later."""


class RateLimited(TransientError):
    """HTTP 429; Kalshi sends no Retry-After, so back off exponentially with jitter."""


class ServerError(TransientError):
    """HTTP 5xx."""


class NetworkError(TransientError):
    """Connection refused, reset, DNS, TLS: no response at all."""


class OutcomeUnknown(TransientError):
    """A write was sent but its outcome is unknown (timeout, reset or 5xx after sending)."""


class OrderRejected(KalshiError):
    """A business rejection (insufficient balance, market closed, invalid price...)."""


class OrderAlreadyExists(OrderRejected):
    """409: an order with this client_order_id already exists (resolve by looking it up)."""


class AuthError(KalshiError):
    """401/403: unknown key, bad signature, stale timestamp, or not permitted."""


class NotFound(KalshiError):
    """404: unknown market, event, series or order."""


class ProtocolError(KalshiError):
    """The response broke the contract: malformed JSON, wrong status, missing object."""


class WireFormatError(ProtocolError, ValueError):
    """A payload field that is missing, of the wrong type, or holds a value we cannot represent."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        self.field = field
        self.value = value
        shown = json.dumps(value, default=str)
        if len(shown) > 200:
            shown = shown[:200] + "..."
        super().__init__(
            f"{field}: {message} (got {shown})" if field else f"{message} (got {shown})"
        )


def classify_status(
    status: int,
    body: dict[str, Any] | None,
    *,
    method: str | None = None,
    path: str | None = None,
) -> KalshiError:
    """Map a non-2xx status and its parsed error body to the error class the caller acts on."""
    body = body or {}
    code = body.get("code") if isinstance(body.get("code"), str) else None
    message = body.get("message") if isinstance(body.get("message"), str) else None
    if message is None and isinstance(body.get("error"), str):
        message = body["error"]
    details = body.get("details") if isinstance(body.get("details"), str) else None
    text = message or f"HTTP {status}"
    kw: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "code": code,
        "details": details,
    }
    if status == 429:
        return RateLimited(text, **kw)
    if status in (401, 403):
        return AuthError(text, **kw)
    if status == 404:
        return NotFound(text, **kw)
    if status == 409 and (code or "").lower() in (
        "order_already_exists",
        "duplicate_client_order_id",
    ):
        return OrderAlreadyExists(text, **kw)
    if status >= 500:
        return ServerError(text, **kw)
    if 400 <= status < 500:
        return OrderRejected(text, **kw)
    return ProtocolError(f"unexpected status {status}", **kw)
