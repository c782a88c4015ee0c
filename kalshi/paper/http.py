"""HTTP plumbing shared by the paper exchange's routes: Kalshi error bodies, auth, paging, parsing.

Invariant: every refusal is a Kalshi-shaped error (``{"code","message","details"}``, or the 429
``{"error": "too many requests"}``) naming the field and value; parsing never guesses a value and
never drops an unknown field silently.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kalshi.paper.exchange import PaperExchange
from kalshi.paper.store import StoreError
from models.matching import EngineReject

__all__ = [
    "ApiError",
    "AuthedHandler",
    "ENGINE_ERRORS",
    "PREFIX",
    "authed",
    "engine_error",
    "error_response",
    "exchange_of",
    "json_body",
    "json_object",
    "opt_bool",
    "opt_int",
    "opt_str",
    "page",
    "query_int",
    "rate_limited",
    "RateLimitedError",
    "REFUSALS",
    "refusal",
    "require_str",
    "spend",
]

PREFIX = "/trade-api/v2"

# engine reject code -> (HTTP status, Kalshi error code)
ENGINE_ERRORS: dict[str, tuple[int, str]] = {
    "market_not_found": (404, "not_found"),
    "order_not_found": (404, "not_found"),
    "order_group_not_found": (404, "not_found"),
    "account_not_found": (404, "not_found"),
    "market_closed": (400, "market_inactive"),
    "invalid_price": (400, "invalid_price"),
    "invalid_count": (400, "invalid_order_size"),
    "invalid_parameters": (400, "invalid_parameters"),
    "insufficient_balance": (400, "insufficient_balance"),
    "order_already_exists": (409, "order_already_exists"),
    "reduce_only_requires_ioc": (400, "invalid_parameters"),
    "expiration_requires_gtc": (400, "invalid_parameters"),
    "order_group_limit_exceeded": (400, "order_group_limit_exceeded"),
    "fill_or_kill_insufficient_volume": (400, "fill_or_kill_insufficient_volume"),
    "buy_max_cost_exceeded": (400, "invalid_order"),
}


class ApiError(Exception):
    """A request refused with a Kalshi error body."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict[str, str]:
        """Return the Kalshi error body."""
        return {"code": self.code, "message": self.message, "details": self.details}


def error_response(status: int, code: str, message: str, details: str = "") -> JSONResponse:
    """Return a Kalshi error response ``{"code","message","details"}``."""
    return JSONResponse({"code": code, "message": message, "details": details}, status_code=status)


def rate_limited() -> JSONResponse:
    """Return Kalshi's 429: ``{"error": "too many requests"}`` and no Retry-After header."""
    return JSONResponse({"error": "too many requests"}, status_code=429)


def engine_error(exc: EngineReject) -> ApiError:
    """Translate an engine rejection into the Kalshi status and code."""
    status, code = ENGINE_ERRORS.get(exc.code, (400, exc.code))
    return ApiError(status, code, exc.message, exc.code)


def exchange_of(request: Request) -> PaperExchange:
    """Return the PaperExchange of the app serving ``request``."""
    exchange: PaperExchange = request.app.state.exchange
    return exchange


AuthedHandler = Callable[[Request, str], Awaitable[Response]]


class RateLimitedError(Exception):
    """The key's token bucket cannot pay for this request (answered with Kalshi's 429)."""


def spend(request: Request, bucket: str, cost: int) -> None:
    """Spend ``cost`` tokens of the authenticated key's ``bucket``, or raise RateLimitedError."""
    exchange = exchange_of(request)
    key_id = request.state.key_id
    if not exchange.rate_limiter.allow(key_id, exchange.key_tier(key_id), bucket, cost):
        raise RateLimitedError(key_id)


def authed(bucket: str, cost: int = 10) -> Callable[
    [AuthedHandler], Callable[[Request], Awaitable[Response]]
]:
    """Wrap a portfolio route: verify the signature (401), spend rate-limit tokens (429)."""

    def wrap(handler: AuthedHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            exchange = exchange_of(request)
            path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
            account, why = exchange.authenticate(request.method, path, request.headers)
            if account is None:
                return error_response(401, "unauthorized", "authentication failed", why)
            request.state.key_id = exchange.key_for_request(request.headers) or ""
            try:
                if cost:
                    spend(request, bucket, cost)
                if bucket == "read":  # writes advance the engine themselves
                    await exchange.catch_up()
                return await handler(request, account)
            except REFUSALS as exc:
                status, body = refusal(exc)
                return JSONResponse(body, status_code=status)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


REFUSALS = (RateLimitedError, ApiError, EngineReject, StoreError)


def refusal(exc: Exception) -> tuple[int, dict[str, str]]:
    """Return the status and Kalshi body answering one of ``REFUSALS``."""
    if isinstance(exc, RateLimitedError):
        return 429, {"error": "too many requests"}
    if isinstance(exc, EngineReject):
        exc = engine_error(exc)
    if isinstance(exc, ApiError):
        return exc.status, exc.body()
    if isinstance(exc, StoreError):  # not committed, so not acknowledged: the client may retry
        return 503, {"code": "service_unavailable",
                     "message": "the paper exchange cannot write its database",
                     "details": str(exc)}
    raise TypeError(f"not a refusal: {exc!r}")


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """Parse the body as a JSON object, or raise ApiError 400 saying what is wrong."""
    return json_object(await request.body(), required=required)


def json_object(raw: bytes, *, required: bool = True) -> dict[str, Any]:
    """Parse a request body as a JSON object, or raise ApiError 400 saying what is wrong."""
    if not raw.strip():
        if required:
            raise ApiError(400, "invalid_parameters", "request body is required", "body")
        return {}
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_parameters", f"malformed JSON body: {exc}", "body") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_parameters", "JSON body must be an object", "body")
    return data


def require_str(data: Mapping[str, Any], name: str) -> str:
    """Return a required non-empty string field, or raise ApiError naming it."""
    if name not in data or data[name] is None:
        raise ApiError(400, "invalid_parameters", f"{name} is required", name)
    value = data[name]
    if not isinstance(value, str) or not value:
        raise ApiError(400, "invalid_parameters", f"{name} must be a non-empty string "
                       f"(got {value!r})", name)
    return value


def opt_str(data: Mapping[str, Any], name: str) -> str | None:
    """Return an optional string field (None if absent), or raise ApiError naming it."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_parameters", f"{name} must be a string (got {value!r})", name)
    return value


def opt_bool(data: Mapping[str, Any], name: str) -> bool:
    """Return an optional boolean field (False if absent), or raise ApiError naming it."""
    value = data.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, "invalid_parameters", f"{name} must be a boolean (got {value!r})", name)
    return value


def opt_int(data: Mapping[str, Any], name: str) -> int | None:
    """Return an optional integer field, or raise ApiError naming it."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "invalid_parameters", f"{name} must be an integer (got {value!r})",
                       name)
    return value


def query_int(
    request: Request, name: str, default: int | None = None, *, lo: int | None = None,
    hi: int | None = None,
) -> int | None:
    """Return an integer query parameter within [lo, hi], or raise ApiError naming it."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError as exc:
        raise ApiError(400, "invalid_parameters", f"{name} must be an integer (got {text!r})",
                       name) from exc
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ApiError(400, "invalid_parameters", f"{name} must be in {lo}..{hi} (got {value})",
                       name)
    return value


def page(request: Request, items: list[Any], ident: Callable[[Any], str], *,
         default_limit: int = 100, max_limit: int = 1000) -> tuple[list[Any], str]:
    """Return one page of ``items`` and the next cursor ("" when there are no more).

    The cursor names the last item returned (``ident``), not an offset, so items added at the
    front of a newest-first list between two page requests neither repeat nor go missing.
    """
    limit = query_int(request, "limit", default_limit, lo=1, hi=max_limit)
    assert limit is not None
    cursor = request.query_params.get("cursor") or ""
    start = 0
    if cursor:
        try:
            last = base64.urlsafe_b64decode(cursor.encode()).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "invalid_parameters", f"cursor is not one we issued ({cursor!r})",
                           "cursor") from exc
        positions = {ident(item): i for i, item in enumerate(items)}
        if last not in positions:
            raise ApiError(400, "invalid_parameters", f"cursor is not one we issued ({cursor!r})",
                           "cursor")
        start = positions[last] + 1
    chunk = items[start:start + limit]
    end = start + len(chunk)
    if end >= len(items) or not chunk:
        return chunk, ""
    return chunk, base64.urlsafe_b64encode(ident(chunk[-1]).encode()).decode()
