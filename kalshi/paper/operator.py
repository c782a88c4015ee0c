"""Operator API of the paper exchange (not Kalshi's API): keys, markets, settlement, faults.

Invariant: only loopback clients reach these routes (403 otherwise); every definition that cannot
be turned into a market exactly (unknown fee type, sub-cent tick, missing times) is refused with a
reason naming the ticker and field, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kalshi.paper.exchange import FaultsError, PaperExchange
from kalshi.paper.http import ApiError, exchange_of, json_body
from kalshi.signing import KeyLoadError
from models.fees import FEE_TYPES, FeeSchedule
from models.matching import EngineReject, MarketSpec
from models.money import MoneyError, cents_from_dollars

__all__ = [
    "DefinitionError",
    "LOOPBACK_HOSTS",
    "MarketDefinitions",
    "OPERATOR_PREFIX",
    "load_definitions",
    "market_spec",
    "routes",
]

OPERATOR_PREFIX = "/operator"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

# fields of a stored market that describe live trading; the engine owns them, so they are dropped
_LIVE_MARKET_FIELDS = {
    "status", "result", "yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "previous_yes_bid",
    "previous_yes_ask", "previous_price", "volume", "volume_24h", "liquidity", "open_interest",
    "notional_value", "tick_size", "risk_limit_cents", "response_price_units", "yes_bid_dollars",
    "yes_ask_dollars", "no_bid_dollars", "no_ask_dollars", "last_price_dollars", "volume_fp",
    "volume_24h_fp", "open_interest_fp", "liquidity_dollars", "yes_bid_size_fp", "yes_ask_size_fp",
    "previous_yes_bid_dollars", "previous_yes_ask_dollars", "previous_price_dollars",
    "settlement_value", "settlement_value_dollars", "settlement_ts",
}


class DefinitionError(ValueError):
    """A series/event/market definition that cannot be loaded; names the ticker and field."""


class MarketDefinitions:
    """Series, events and markets collected from Kalshi JSON objects of any supported shape."""

    def __init__(self) -> None:
        self.series: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.markets: dict[str, dict[str, Any]] = {}

    def add(self, obj: Any) -> None:
        """Add one JSON object: a GET response (event, events, market(s), series) or a bare one."""
        if not isinstance(obj, dict):
            raise DefinitionError(f"expected a JSON object (got {type(obj).__name__})")
        known = False
        if isinstance(obj.get("series"), dict):
            self._series(obj["series"])
            known = True
        elif isinstance(obj.get("series"), list):
            for item in obj["series"]:
                self._series(item)
            known = True
        if isinstance(obj.get("event"), dict):
            self._event(obj["event"])
            known = True
        for event in obj.get("events") or []:
            self._event(event)
            known = True
        if isinstance(obj.get("market"), dict):
            self._market(obj["market"])
            known = True
        for market in obj.get("markets") or []:
            self._market(market)
            known = True
        if known:
            return
        if "ticker" in obj and "event_ticker" in obj:
            self._market(obj)
        elif "event_ticker" in obj and "series_ticker" in obj:
            self._event(obj)
        elif "ticker" in obj and ("fee_type" in obj or "frequency" in obj):
            self._series(obj)
        else:
            raise DefinitionError(f"not a Kalshi series, event or market object "
                                  f"(keys {sorted(obj)[:8]})")

    def _series(self, raw: Any) -> None:
        if not isinstance(raw, dict) or not isinstance(raw.get("ticker"), str):
            raise DefinitionError("series object without a string ticker")
        self.series[raw["ticker"]] = raw

    def _event(self, raw: Any) -> None:
        if not isinstance(raw, dict) or not isinstance(raw.get("event_ticker"), str):
            raise DefinitionError("event object without a string event_ticker")
        nested = raw.get("markets")
        self.events[raw["event_ticker"]] = {k: v for k, v in raw.items() if k != "markets"}
        for market in nested or []:
            self._market(market)

    def _market(self, raw: Any) -> None:
        if not isinstance(raw, dict) or not isinstance(raw.get("ticker"), str):
            raise DefinitionError("market object without a string ticker")
        if not isinstance(raw.get("event_ticker"), str):
            raise DefinitionError(f"market {raw['ticker']}: event_ticker missing")
        self.markets[raw["ticker"]] = raw


def _iter_objects(text: str) -> Iterator[Any]:
    stripped = text.strip()
    if not stripped:
        return
    try:
        yield json.loads(stripped)
        return
    except json.JSONDecodeError:
        pass
    for number, line in enumerate(stripped.splitlines(), start=1):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise DefinitionError(f"line {number}: not JSON ({exc.msg})") from exc


def load_definitions(text: str) -> MarketDefinitions:
    """Parse JSON or JSONL text of Kalshi objects into definitions."""
    defs = MarketDefinitions()
    for obj in _iter_objects(text):
        if isinstance(obj, list):
            for item in obj:
                defs.add(item)
        else:
            defs.add(obj)
    return defs


def _ts_ms(raw: dict[str, Any], field: str, ticker: str) -> int:
    value = raw.get(field)
    if not isinstance(value, str):
        raise DefinitionError(f"market {ticker}: {field} missing or not a datetime ({value!r})")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DefinitionError(f"market {ticker}: {field} is not RFC3339 ({value!r})") from exc
    if moment.tzinfo is None:
        raise DefinitionError(f"market {ticker}: {field} has no time zone ({value!r})")
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _tick_cents(raw: dict[str, Any], ticker: str) -> int:
    ranges = raw.get("price_ranges")
    if ranges:
        steps = {str(r.get("step")) for r in ranges if isinstance(r, dict)}
        if len(steps) != 1:
            raise DefinitionError(f"market {ticker}: price_ranges with several steps {steps} are "
                                  "not supported by the whole-cent engine")
        try:
            return int(cents_from_dollars(steps.pop(), field="price_ranges.step"))
        except MoneyError as exc:
            raise DefinitionError(f"market {ticker}: {exc} (sub-cent ticks are not supported)") \
                from exc
    tick = raw.get("tick_size", 1)
    if not isinstance(tick, int) or tick < 1:
        raise DefinitionError(f"market {ticker}: tick_size must be a positive int (got {tick!r})")
    return tick


def _fee(series_raw: dict[str, Any] | None, ticker: str) -> FeeSchedule:
    if not series_raw:
        return FeeSchedule()
    fee_type = series_raw.get("fee_type", "quadratic")
    if fee_type not in FEE_TYPES or fee_type == "flat":
        raise DefinitionError(f"market {ticker}: series fee_type {fee_type!r} is not supported")
    try:
        multiplier = Decimal(str(series_raw.get("fee_multiplier", 1)))
    except InvalidOperation as exc:
        raise DefinitionError(f"market {ticker}: fee_multiplier "
                              f"{series_raw.get('fee_multiplier')!r} is not a number") from exc
    return FeeSchedule(fee_type=fee_type, fee_multiplier=multiplier)


def market_spec(
    raw: dict[str, Any],
    *,
    series_ticker: str,
    series_raw: dict[str, Any] | None,
    reopen_at_ms: int | None = None,
    reopen_hours: float = 24.0,
) -> MarketSpec:
    """Return the engine spec of a stored Kalshi market (``reopen_at_ms``: open now, close later).

    ``reopen_at_ms`` keeps the ticker and strikes but opens the market at that time and closes it
    ``reopen_hours`` later.
    """
    ticker = raw["ticker"]
    if raw.get("market_type", "binary") != "binary":
        raise DefinitionError(f"market {ticker}: market_type {raw.get('market_type')!r} is not "
                              "supported (binary only)")
    if reopen_at_ms is not None:
        open_ms = reopen_at_ms
        close_ms = reopen_at_ms + int(reopen_hours * 3_600_000)
    else:
        open_ms = _ts_ms(raw, "open_time", ticker)
        close_ms = _ts_ms(raw, "close_time", ticker)
    if close_ms <= open_ms:
        raise DefinitionError(f"market {ticker}: close_time is not after open_time")
    return MarketSpec(
        ticker=ticker,
        event_ticker=raw["event_ticker"],
        series_ticker=series_ticker,
        open_ts_ms=open_ms,
        close_ts_ms=close_ms,
        fee=_fee(series_raw, ticker),
        tick_cents=_tick_cents(raw, ticker),
    )


def _series_of(defs: MarketDefinitions, exchange: PaperExchange, event_ticker: str) -> str:
    event = defs.events.get(event_ticker) or exchange.events_raw.get(event_ticker) or {}
    series = event.get("series_ticker")
    if isinstance(series, str) and series:
        return series
    return event_ticker.split("-", 1)[0]


async def add_definitions(
    exchange: PaperExchange, defs: MarketDefinitions, *, reopen: bool, reopen_hours: float
) -> dict[str, Any]:
    """Store the definitions and add their markets to the engine; return what was added."""
    now = exchange.clock()
    existing = set(exchange.market_tickers())
    errors: list[dict[str, str]] = []
    specs: list[MarketSpec] = []
    for ticker, raw in sorted(defs.markets.items()):
        try:
            if ticker in existing:
                raise DefinitionError(f"market {ticker} already exists")
            series_ticker = raw.get("series_ticker") or _series_of(defs, exchange,
                                                                   raw["event_ticker"])
            series_raw = defs.series.get(series_ticker) or exchange.series_raw.get(series_ticker)
            specs.append(market_spec(raw, series_ticker=series_ticker, series_raw=series_raw,
                                     reopen_at_ms=now if reopen else None,
                                     reopen_hours=reopen_hours))
        except (DefinitionError, MoneyError) as exc:
            errors.append({"ticker": ticker, "error": str(exc)})
    rows: list[tuple[str, str, dict[str, Any]]] = [("series", t, r) for t, r in
                                                   defs.series.items()]
    rows += [("event", t, r) for t, r in defs.events.items()]
    # reference rows first: a market in the engine always has its descriptive fields stored
    for spec in specs:
        stored = {k: v for k, v in defs.markets[spec.ticker].items()
                  if k not in _LIVE_MARKET_FIELDS}
        if reopen:  # the recorded expiry dates belong to the original schedule
            for name in ("expiration_value", "expected_expiration_time", "expiration_time",
                         "latest_expiration_time"):
                stored.pop(name, None)
        stored["_paper_created_ms"] = now
        rows.append(("market", spec.ticker, stored))
    exchange.add_references(rows)
    added: list[str] = []
    rejects = await exchange.add_markets(specs) if specs else []
    for spec, reject in zip(specs, rejects, strict=True):
        if reject is None:
            added.append(spec.ticker)
        else:
            errors.append({"ticker": spec.ticker, "error": f"{reject.code}: {reject.message}"})
    return {"added": added, "errors": errors, "series": sorted(defs.series),
            "events": sorted(defs.events)}


# --- routes ---------------------------------------------------------------------------------


def _operator(fn: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        host = request.client.host if request.client else ""
        if host not in LOOPBACK_HOSTS:
            return JSONResponse({"code": "forbidden", "message": "the operator API answers "
                                 "loopback clients only", "details": host}, status_code=403)
        try:
            result: Response = await fn(request)
        except ApiError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except (ValueError, KeyLoadError) as exc:
            return JSONResponse({"code": "invalid_parameters", "message": str(exc),
                                 "details": ""}, status_code=400)
        except EngineReject as exc:
            return JSONResponse({"code": exc.code, "message": exc.message, "details": ""},
                                status_code=400)
        return result

    endpoint.__name__ = fn.__name__
    return endpoint


def _balance_cents(data: dict[str, Any]) -> int:
    if data.get("balance_cents") is not None:
        value = data["balance_cents"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(400, "invalid_parameters",
                           f"balance_cents must be an int (got {value!r})", "balance_cents")
        return value
    if data.get("balance") is not None:
        try:
            return int(cents_from_dollars(data["balance"], field="balance"))
        except MoneyError as exc:
            raise ApiError(400, "invalid_parameters", str(exc), "balance") from exc
    return 0


@_operator
async def post_key(request: Request) -> Response:
    data = await json_body(request)
    key_id, pem = data.get("key_id"), data.get("public_key_pem")
    if not isinstance(key_id, str) or not isinstance(pem, str):
        raise ApiError(400, "invalid_parameters", "key_id and public_key_pem (strings) are "
                       "required", "key_id")
    exchange = exchange_of(request)
    account = await exchange.add_key(
        key_id, pem, balance_cents=_balance_cents(data),
        account_id=data.get("account_id"), tier=data.get("tier") or "prestige",
    )
    return JSONResponse({"key_id": key_id, "account_id": account,
                         "balance_cents": exchange.engine.balance_cents(account)}, status_code=201)


@_operator
async def post_markets(request: Request) -> Response:
    data = await json_body(request)
    text = data.get("text")
    objects = data.get("definitions")
    try:
        if isinstance(text, str):
            defs = load_definitions(text)
        elif isinstance(objects, list):
            defs = MarketDefinitions()
            for obj in objects:
                defs.add(obj)
        else:
            raise ApiError(400, "invalid_parameters", "give definitions (a list of Kalshi "
                           "objects) or text (JSON/JSONL)", "definitions")
    except DefinitionError as exc:
        raise ApiError(400, "invalid_parameters", str(exc), "definitions") from exc
    reopen = bool(data.get("reopen", False))
    hours = data.get("reopen_hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24 * 365:
        raise ApiError(400, "invalid_parameters", f"reopen_hours out of range ({hours!r})",
                       "reopen_hours")
    result = await add_definitions(exchange_of(request), defs, reopen=reopen,
                                   reopen_hours=float(hours))
    return JSONResponse(result, status_code=201)


@_operator
async def post_settle(request: Request) -> Response:
    data = await json_body(request)
    ticker, result = data.get("ticker"), data.get("result")
    if not isinstance(ticker, str) or result not in ("yes", "no"):
        raise ApiError(400, "invalid_parameters",
                       f"ticker (string) and result yes|no are required (got {result!r})", "result")
    exchange = exchange_of(request)
    state = exchange.engine.market(ticker)
    if state.status not in ("determined", "finalized"):
        await exchange.run("determine", {"ticker": ticker, "result": result})
    await exchange.run("settle", {"ticker": ticker})
    if isinstance(data.get("expiration_value"), str):
        raw = dict(exchange.markets_raw.get(ticker, {}))
        raw["expiration_value"] = data["expiration_value"]
        exchange.add_reference("market", ticker, raw)
    state = exchange.engine.market(ticker)
    return JSONResponse({"ticker": ticker, "status": state.status, "result": state.result})


@_operator
async def get_faults(request: Request) -> Response:
    return JSONResponse(asdict(exchange_of(request).faults))


@_operator
async def post_faults(request: Request) -> Response:
    data = await json_body(request, required=False)
    clear = bool(data.pop("clear", False))
    try:
        faults = exchange_of(request).set_faults(data, clear=clear)
    except FaultsError as exc:
        raise ApiError(400, "invalid_parameters", str(exc), "faults") from exc
    return JSONResponse(asdict(faults))


@_operator
async def get_health(request: Request) -> Response:
    exchange = exchange_of(request)
    return JSONResponse({
        "markets": len(exchange.market_tickers()),
        "accounts": len(exchange.account_ids()),
        "commands_committed": exchange.store.commands_committed,
        "commit_batches": exchange.store.batches_committed,
        "replayed_commands": exchange.replayed_commands,
        "replay_seconds": round(exchange.replay_seconds, 3),
        "now_ms": exchange.clock(),
    })


def routes() -> list[Route]:
    """Return the operator routes (under ``/operator``)."""
    p = OPERATOR_PREFIX
    return [
        Route(p + "/keys", post_key, methods=["POST"]),
        Route(p + "/markets", post_markets, methods=["POST"]),
        Route(p + "/settle", post_settle, methods=["POST"]),
        Route(p + "/faults", get_faults, methods=["GET"]),
        Route(p + "/faults", post_faults, methods=["POST"]),
        Route(p + "/health", get_health, methods=["GET"]),
    ]
