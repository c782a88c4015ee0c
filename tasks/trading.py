"""Prefect tasks of the weather trading cycle: markets, books, forecasts, decisions, orders.

Invariants:
- A market is priced only when its series' settlement source and its own rules name the
  registered station, its event's brackets partition the integers, and a fresh NWS forecast for
  its climate day exists; otherwise it is skipped with the reason recorded (``risk_events``, limit
  ``input``) and shown in the run's decision table. A skip never affects another market.
- Every priced market gets one ``decisions`` row (including "none"), and every order links to it.
- All exchange traffic goes through ``tasks.gateway``; clients and sessions are built inside the
  tasks from ``Settings`` (task arguments and results are plain frozen values).
- Equity is the guard's definition (``tasks.safety.ExchangeState.equity_cents``: cash + resting
  collateral + positions at market), so whichever runs first records the same start of day.
- A successful market-data read records heartbeat ``feed:market-data``; a forecast read with at
  least one usable forecast records ``feed:forecast`` (the feed breakers' inputs).
- Series metadata (settlement sources, fee type, terms) is read at most once per
  ``SERIES_TTL_S`` per venue and process (``SeriesCache``); its settlement-source check runs on
  every cycle all the same, only successful reads are kept, and a series whose read failed is
  never traded (no stale fallback). Market rules and books are read fresh every cycle.
- The sync reads the balance, then lists our orders once: equity's resting orders come from that
  listing (the reads and order of ``tasks.safety.read_exchange_state``, minus positions, which
  equity does not use).

The probability model (``MODEL_VERSION``): the NWS gridpoint ``maxTemperature`` of the climate
day is the mean of a normal predictive distribution of the CLI high whose spread grows with the
lead time; brackets get F(b + 0.5) - F(a - 0.5), renormalised over the event (``models.weather``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine
from sqlmodel import col, select

from kalshi.client import KalshiClient
from kalshi.errors import KalshiError
from kalshi.wire import Market, Orderbook, Series
from models.brackets import Bracket, BracketError, parse_bracket, partition_problem
from models.climate import (
    StationError,
    check_market_rules,
    check_series,
    climate_day_bounds_utc,
    station_for,
)
from models.edge import EdgeParams, MarketPlan, Quote, plan_market
from models.ledger import Decision, Fill, OrderRecord, Position, ms_from_datetime
from models.money import MoneyError, price_cents_from_dollars
from models.nws import NwsParseError, grid_max_temperature_f, parse_gridpoint
from models.orderkey import decision_slot
from models.orders import RestingOrder
from models.risk import OrderRequest, RiskLimits, RiskState, max_order_contracts, with_order
from models.weather import Predictive, WeatherModelError, bracket_probabilities
from tasks.api_calls import flush_api_calls
from tasks.db import ledger_engine, read_session, upgrade_ledger, write_session
from tasks.gateway import (
    Want,
    apply_orders,
    record_skips,
    sync_exchange,
)
from tasks.kalshi_client import kalshi_client
from tasks.ledger_store import read_risk_state, record_heartbeat
from tasks.nws import NwsError, nws_client
from tasks.safety import equity_of
from tasks.settings import Settings, load_settings

__all__ = [
    "FEED_FORECAST",
    "FEED_MARKET_DATA",
    "MODEL_VERSION",
    "SERIES_TTL_S",
    "WEATHER_SERIES",
    "CycleOrders",
    "DecisionRow",
    "Forecast",
    "MarketInput",
    "SeriesCache",
    "SyncResult",
    "decide_markets",
    "fetch_forecasts",
    "fetch_weather_markets",
    "forecast_sd_f",
    "ledger",
    "order_trace",
    "place_orders",
    "publish_decisions",
    "record_run_heartbeat",
    "slippage_rows",
    "sync_orders",
]

log = logging.getLogger(__name__)

MODEL_VERSION: Final = "nws-grid-max-normal-v0"
WEATHER_SERIES: Final = ("KXHIGHNY", "KXHIGHCHI", "KXHIGHMIA", "KXHIGHAUS", "KXHIGHLAX",
                         "KXHIGHDEN", "KXHIGHPHIL")
FEED_MARKET_DATA: Final = "feed:market-data"
FEED_FORECAST: Final = "feed:forecast"
BOOK_CHUNK: Final = 100  # GET /markets/orderbooks takes at most 100 tickers
SERIES_TTL_S: Final = 600.0  # series metadata changes rarely; re-read every 10 minutes


class SeriesCache:
    """Successful ``GET /series/{ticker}`` reads of this process, per venue, for ``ttl_s``.

    A failed read raises and stores nothing, so an expired entry is never used as a fallback.
    """

    def __init__(self, ttl_s: float = SERIES_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0:
            raise ValueError(f"ttl_s: must be >= 0 seconds (got {ttl_s})")
        self.ttl_s, self._clock = ttl_s, clock
        self._entries: dict[tuple[str, str], tuple[float, Series]] = {}
        self._lock = threading.Lock()

    def get(self, client: KalshiClient, venue: str, ticker: str) -> Series:
        """Return the series of `ticker` at `venue`, read through `client` when not fresh."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get((venue, ticker))
        if entry is not None and now - entry[0] < self.ttl_s:
            return entry[1]
        series = client.get_series(ticker)  # KalshiError propagates; nothing is stored
        with self._lock:
            self._entries[(venue, ticker)] = (now, series)
        return series

    def clear(self) -> None:
        """Forget every entry (the next read of each series goes to the exchange)."""
        with self._lock:
            self._entries.clear()


_SERIES = SeriesCache()


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    upgrade_ledger(url)  # idempotent; creates the schema on first use
    return ledger_engine(url)


def ledger(settings: Settings | None = None) -> Engine:
    """Return the ledger engine of the settings, migrated to the current schema."""
    return _engine((settings or load_settings()).ledger_url)


@lru_cache(maxsize=8)
def _shared_client(settings: Settings) -> KalshiClient:
    # one client (key loaded once, connections kept alive) per settings and process; it holds
    # no trading state, so sharing it between tasks and runs changes nothing but the latency.
    # Every call it makes is counted for the guard's error-rate breaker (buffered in memory)
    return kalshi_client(settings, ledger=ledger(settings))


@contextmanager
def _client(settings: Settings) -> Iterator[KalshiClient]:
    # the task's call counts are written when it ends (one transaction), failed or not
    try:
        yield _shared_client(settings)
    except BaseException:
        flush_api_calls(ledger(settings), strict=False)  # the task's own error wins
        raise
    flush_api_calls(ledger(settings))


@dataclass(frozen=True)
class MarketInput:
    """One open weather market as the cycle sees it (prices in YES cents)."""

    market_ticker: str
    event_ticker: str
    series_ticker: str
    category: str
    day: date
    bracket_lo: int | None
    bracket_hi: int | None
    yes_bid_cents: int | None
    yes_ask_cents: int | None
    volume_24h: int
    close_ts_ms: int


@dataclass(frozen=True)
class Skip:
    """A market (or event) left out of the cycle and why."""

    market_ticker: str
    event_ticker: str
    reason: str


@dataclass(frozen=True)
class Forecast:
    """The forecast high of one station's climate day, or why there is none."""

    series_ticker: str
    day: date
    max_f: float | None
    issued_ts_ms: int | None
    problem: str | None


@dataclass(frozen=True)
class SyncResult:
    """The exchange state at the start of a cycle (after resolving and booking)."""

    equity_cents: int
    fills_booked: int
    resolved: tuple[str, ...]
    resting: tuple[RestingOrder, ...]
    known_keys: tuple[str, ...]


@dataclass(frozen=True)
class DecisionRow:
    """One line of the run's decision table."""

    market_ticker: str
    event_ticker: str
    prob_yes: float | None
    yes_bid_cents: int | None
    yes_ask_cents: int | None
    edge_cents: int | None
    action: str
    reason: str
    decision_id: int | None = None
    client_order_id: str | None = None
    order_status: str | None = None


@dataclass(frozen=True)
class CycleOrders:
    """What ``decide_markets`` hands the gateway."""

    wants: tuple[Want, ...]
    managed: tuple[str, ...]
    rows: tuple[DecisionRow, ...]


def _series_doc(series: Series) -> dict[str, Any]:
    sources = [{"name": s.name, "url": s.url or ""} for s in series.settlement_sources or ()]
    return {"ticker": series.ticker, "settlement_sources": sources}


def _bracket(market: Market) -> Bracket:
    raw = {"ticker": market.ticker, "strike_type": market.strike_type,
           "floor_strike": market.floor_strike, "cap_strike": market.cap_strike,
           "yes_sub_title": market.yes_sub_title}
    return parse_bracket(raw)


def forecast_sd_f(lead_hours: float) -> float:
    """Return the predictive spread in °F of the NWS grid high at `lead_hours` before day end."""
    return max(0.6, 1.0 + 0.075 * max(lead_hours, 0.0))


@task(name="sync-orders", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def sync_orders(as_of: datetime, resolve_after_s: float = 30.0) -> SyncResult:
    """Book exchange fills, resolve unresolved intents by key, read equity and resting orders."""
    settings = load_settings()
    engine = ledger(settings)
    with _client(settings) as client:
        balance = client.get_balance()  # before the orders, as read_exchange_state reads them
        snapshot = sync_exchange(client, engine, as_of=as_of, resolve_after_s=resolve_after_s,
                                 webhook=settings.alert_webhook_url)
        equity = equity_of(balance, snapshot.orders)  # the guard's equity, not a copy
    return SyncResult(equity, snapshot.fills_booked, snapshot.resolved, snapshot.resting,
                      tuple(o.client_order_id for o in snapshot.orders if o.client_order_id))


def _top_without_own(book: Orderbook, own: Sequence[RestingOrder]) -> tuple[int | None,
                                                                             int | None]:
    # best YES bid and ask in cents once our own resting orders are taken out of the book, so a
    # cycle never prices against (and chases) its own quotes
    mine: dict[tuple[str, int], int] = defaultdict(int)
    for order in own:
        if order.side == "bid":
            mine[("yes", order.price_cents)] += order.remaining_count
        else:
            mine[("no", 100 - order.price_cents)] += order.remaining_count
    tops: dict[str, int | None] = {}
    for name, levels in (("yes", book.yes), ("no", book.no)):
        best = None
        for level in levels:
            price = price_cents_from_dollars(level.price, field=f"book {name} price")
            if int(level.count) - mine.get((name, price), 0) > 0:
                best = price if best is None else max(best, price)
        tops[name] = best
    no_bid = tops["no"]
    return tops["yes"], (None if no_bid is None else 100 - no_bid)


@task(name="fetch-weather-markets", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def fetch_weather_markets(series: Sequence[str], as_of: datetime,
                          own: Sequence[RestingOrder] = ()
                          ) -> tuple[tuple[MarketInput, ...], tuple[Skip, ...]]:
    """Return the open markets of `series` with their books (our own resting orders taken out),
    and the markets skipped with the reason."""
    settings = load_settings()
    engine = ledger(settings)
    markets: list[tuple[Market, Series, date, Bracket]] = []
    skips: list[Skip] = []
    now_ms = ms_from_datetime(as_of)
    series_read = 0
    with _client(settings) as client:
        for ticker in series:
            try:
                info = _SERIES.get(client, settings.base_url, ticker)
            except KalshiError as exc:
                skips.append(Skip("", ticker, f"series {ticker}: {type(exc).__name__}: {exc}"))
                continue
            series_read += 1
            alarm = check_series(_series_doc(info))
            if alarm is not None:
                skips.append(Skip("", ticker, alarm.reason))
                continue
            for event in client.iter_events(series_ticker=ticker, status="open",
                                            with_nested_markets=True):
                markets += _event_markets(event, info, skips, now_ms)
        books: dict[str, Any] = {}
        tickers = [m.ticker for m, *_ in markets]
        for start in range(0, len(tickers), BOOK_CHUNK):
            books.update(client.get_orderbooks(tickers[start:start + BOOK_CHUNK]))
    out: list[MarketInput] = []
    for market, info, day, bracket in markets:
        book = books.get(market.ticker)
        if book is None:
            skips.append(Skip(market.ticker, market.event_ticker, "no order book returned"))
            continue
        try:
            bid, ask = _top_without_own(book, [o for o in own if o.ticker == market.ticker])
        except MoneyError as exc:  # e.g. a sub-penny level: not priced, said so
            skips.append(Skip(market.ticker, market.event_ticker, str(exc)))
            continue
        out.append(MarketInput(
            market.ticker, market.event_ticker, info.ticker, info.category, day, bracket.lo,
            bracket.hi, bid, ask, int(market.volume_24h), ms_from_datetime(market.close_time)))
    record_skips(engine, [(skip.market_ticker or skip.event_ticker, skip.reason)
                          for skip in skips], as_of=as_of)  # one transaction
    if series_read:  # series, events and books were read: the market-data feed is alive
        record_heartbeat(engine, FEED_MARKET_DATA, as_of=as_of,
                         detail=f"{series_read}/{len(series)} series, {len(out)} markets")
    return tuple(out), tuple(skips)


def _event_markets(event: Any, info: Series, skips: list[Skip],
                   now_ms: int) -> list[tuple[Market, Series, date, Bracket]]:
    from tasks.forecast_archive import event_day

    try:
        day = event_day(event.event_ticker)
    except ValueError as exc:
        skips.append(Skip("", event.event_ticker, str(exc)))
        return []
    found: list[tuple[Market, Series, date, Bracket]] = []
    brackets: list[Bracket] = []
    for market in event.markets:
        alarm = check_market_rules(info.ticker, market.ticker, market.rules_primary)
        if alarm is not None:
            skips.append(Skip(market.ticker, event.event_ticker, alarm.reason))
            return []  # one market with foreign rules: the event is not priced at all
        try:
            bracket = _bracket(market)
        except BracketError as exc:
            skips.append(Skip(market.ticker, event.event_ticker, f"bracket: {exc}"))
            return []
        brackets.append(bracket)
        if market.status not in ("active", "open"):
            skips.append(Skip(market.ticker, event.event_ticker, f"status {market.status}"))
            continue
        if ms_from_datetime(market.close_time) <= now_ms:
            skips.append(Skip(market.ticker, event.event_ticker, "closed"))
            continue
        found.append((market, info, day, bracket))
    problem = partition_problem(brackets)
    if problem is not None:
        skips.append(Skip("", event.event_ticker, f"brackets: {problem}"))
        return []
    return found


@task(name="fetch-forecasts", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def fetch_forecasts(wanted: Sequence[tuple[str, date]], as_of: datetime) -> tuple[Forecast, ...]:
    """Return the NWS grid high of each (series, climate day), or the reason it is missing."""
    settings = load_settings()
    max_age = timedelta(hours=settings.nws_max_age_hours)
    days: dict[str, set[date]] = defaultdict(set)
    for series, day in wanted:
        days[series].add(day)
    out: list[Forecast] = []
    with nws_client(settings) as nws:
        for series in sorted(days):
            try:
                station = station_for(series)
                point, _doc = nws.get_points(station.lat, station.lon)
                grid = parse_gridpoint(nws.get_gridpoint_raw(point).payload, as_of=as_of,
                                       max_age=max_age, required=("maxTemperature",))
            except (StationError, NwsError, NwsParseError) as exc:
                out += [Forecast(series, d, None, None, f"forecast: {exc}")
                        for d in sorted(days[series])]
                continue
            for day in sorted(days[series]):
                try:
                    high = grid_max_temperature_f(grid, day, station.standard_offset_hours)
                except NwsParseError as exc:
                    out.append(Forecast(series, day, None, None, f"forecast: {exc}"))
                    continue
                out.append(Forecast(series, day, high, ms_from_datetime(grid.update_time), None))
    usable = [f for f in out if f.max_f is not None]
    if usable:  # at least one fresh forecast parsed: the forecast feed is alive
        record_heartbeat(ledger(settings), FEED_FORECAST, as_of=as_of,
                         detail=f"{len(usable)}/{len(out)} forecasts")
    return tuple(out)


def _probabilities(markets: Sequence[MarketInput], forecasts: Sequence[Forecast],
                   as_of: datetime) -> dict[str, tuple[float | None, str, dict[str, Any]]]:
    # ticker -> (P(YES) or None, reason, model inputs)
    by_key = {(f.series_ticker, f.day): f for f in forecasts}
    events: dict[str, list[MarketInput]] = defaultdict(list)
    for market in markets:
        events[market.event_ticker].append(market)
    out: dict[str, tuple[float | None, str, dict[str, Any]]] = {}
    for event_markets in events.values():
        first = event_markets[0]
        forecast = by_key.get((first.series_ticker, first.day))
        if forecast is None or forecast.max_f is None:
            reason = forecast.problem if forecast is not None else "forecast: missing"
            for m in event_markets:
                out[m.market_ticker] = (None, reason or "forecast: missing", {})
            continue
        offset = station_for(first.series_ticker).standard_offset_hours
        _start, end = climate_day_bounds_utc(first.day, offset)
        lead_h = max((end - as_of).total_seconds() / 3600.0, 0.0)
        pred = Predictive(forecast.max_f, forecast_sd_f(lead_h))
        brackets = [Bracket(0, m.market_ticker, m.bracket_lo, m.bracket_hi)
                    for m in event_markets]
        inputs = {"model": MODEL_VERSION, "grid_max_f": round(forecast.max_f, 2),
                  "sigma_f": round(pred.sigma, 3), "lead_hours": round(lead_h, 2),
                  "forecast_issued_ts_ms": forecast.issued_ts_ms}
        try:
            probs = bracket_probabilities(pred, brackets)
        except WeatherModelError as exc:
            for m in event_markets:
                out[m.market_ticker] = (None, f"model: {exc}", inputs)
            continue
        for m, p in zip(event_markets, probs, strict=True):
            out[m.market_ticker] = (min(max(p, 0.0), 1.0), "", inputs)
    return out


def _held(engine: Engine) -> dict[str, int]:
    with read_session(engine) as session:
        return {p.market_ticker: p.contracts for p in session.exec(select(Position))}


def _without_resting(state: RiskState, resting: Sequence[RestingOrder]) -> RiskState:
    # desired orders replace what rests in their market, so the planning headroom leaves our
    # resting orders out (the gateway cancels or replaces them before it reserves new ones)
    freed: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for order in resting:
        price = order.price_cents if order.side == "bid" else 100 - order.price_cents
        cents, contracts = freed[order.ticker]
        freed[order.ticker] = (cents + price * order.remaining_count,
                               contracts + order.remaining_count)
    holdings = tuple(
        replace(h, exposure_cents=max(h.exposure_cents - freed[h.market_ticker][0], 0),
                contracts=max(h.contracts - freed[h.market_ticker][1], 0))
        if h.market_ticker in freed else h
        for h in state.holdings)
    return replace(state, holdings=holdings)


@task(name="decide-markets", cache_policy=NO_CACHE)
def decide_markets(markets: Sequence[MarketInput], forecasts: Sequence[Forecast],
                   as_of: datetime, equity_cents: int, strategy: str,
                   resting: Sequence[RestingOrder] = ()) -> CycleOrders:
    """Price every market, plan its orders within the risk headroom and record the decisions."""
    settings = load_settings()
    engine = ledger(settings)
    params = EdgeParams.from_settings(settings)
    limits = RiskLimits.from_settings(settings)
    state = _without_resting(read_risk_state(engine, equity_cents=equity_cents, as_of=as_of),
                             resting)
    bankroll = int(Decimal(max(equity_cents, 0)) * settings.capital_allocation)
    held = _held(engine)
    probs = _probabilities(markets, forecasts, as_of)
    wants: list[Want] = []
    rows: list[DecisionRow] = []
    managed: list[str] = []
    decisions: list[Decision] = []
    planned: list[tuple[MarketInput, MarketPlan, Any]] = []
    skipped: list[tuple[str, str]] = []
    now_ms = ms_from_datetime(as_of)
    for m in markets:
        managed.append(m.market_ticker)
        prob, problem, inputs = probs[m.market_ticker]
        quote = Quote(m.market_ticker, m.yes_bid_cents, m.yes_ask_cents)
        if m.close_ts_ms <= now_ms:
            prob, problem = None, "market closed before the decision"
        if prob is None:
            skipped.append((m.market_ticker, problem))
            rows.append(DecisionRow(m.market_ticker, m.event_ticker, None, m.yes_bid_cents,
                                    m.yes_ask_cents, None, "skip", problem))
            continue

        def cap(side: str, price: int, market: MarketInput = m, now: RiskState = state) -> int:
            probe = OrderRequest(market.market_ticker, market.event_ticker, market.category,
                                 side, price, 1, market.volume_24h)
            return max_order_contracts(probe, now, limits)

        loose = max(cap("yes", 1), cap("no", 1))
        plan: MarketPlan = plan_market(prob, quote, params, as_of=as_of, bankroll_cents=bankroll,
                                       max_contracts=loose,
                                       held_contracts=held.get(m.market_ticker, 0))
        if plan.orders:
            chosen = plan.orders[0]
            tight = cap(chosen.side, chosen.price_cents)
            if tight < chosen.count:
                plan = plan_market(prob, quote, params, as_of=as_of, bankroll_cents=bankroll,
                                   max_contracts=tight,
                                   held_contracts=held.get(m.market_ticker, 0))
        chosen_order = plan.orders[0] if plan.orders else None
        if chosen_order is not None:  # the next market is sized against what this one leaves
            state = with_order(state, OrderRequest(
                m.market_ticker, m.event_ticker, m.category, chosen_order.side,
                chosen_order.price_cents, chosen_order.count, m.volume_24h))
        decisions.append(Decision(
            strategy=strategy, market_ticker=m.market_ticker, event_ticker=m.event_ticker,
            model_version=MODEL_VERSION, model_inputs_json=json.dumps(inputs, sort_keys=True),
            prob_yes=prob, yes_bid_cents=m.yes_bid_cents, yes_ask_cents=m.yes_ask_cents,
            edge_cents=plan.edge_cents, action=plan.action,
            intended_side=chosen_order.side if chosen_order else None,
            intended_price_cents=chosen_order.price_cents if chosen_order else None,
            intended_count=chosen_order.count if chosen_order else None,
            reason=plan.reason, decided_ts_ms=now_ms))
        planned.append((m, plan, chosen_order))
    record_skips(engine, skipped, as_of=as_of)  # one transaction for the cycle's skips
    ids = _record_decisions(engine, decisions)
    for (m, plan, chosen_order), decision_id, decision in zip(planned, ids, decisions,
                                                              strict=True):
        rows.append(DecisionRow(m.market_ticker, m.event_ticker, round(decision.prob_yes, 4),
                                m.yes_bid_cents, m.yes_ask_cents, plan.edge_cents, plan.action,
                                plan.reason, decision_id))
        if chosen_order is not None:
            wants.append(Want(chosen_order, m.event_ticker, m.category, m.volume_24h,
                              decision_id))
    return CycleOrders(tuple(wants), tuple(managed), tuple(rows))


def _record_decisions(engine: Engine, decisions: Sequence[Decision]) -> list[int]:
    # one transaction for the cycle's decisions (the ids link orders to them)
    with write_session(engine) as session:
        session.add_all(decisions)
        session.flush()
        ids = [d.id for d in decisions]
    assert all(i is not None for i in ids)
    return [int(i) for i in ids if i is not None]


@task(name="place-orders", cache_policy=NO_CACHE)
def place_orders(cycle: CycleOrders, sync: SyncResult, as_of: datetime, strategy: str,
                 interval_s: int) -> tuple[tuple[str, str, str | None, str, str], ...]:
    """Send the cycle's order changes through the gateway; return (ticker, action, key, status,
    detail) per change. Retrying is safe: keys are deterministic and the gateway resolves by key."""
    from tasks.gateway import ExchangeSnapshot

    settings = load_settings()
    engine = ledger(settings)
    with _client(settings) as client:
        # re-read what rests now: a retry or a slow cycle must not diff against a stale view
        snapshot: ExchangeSnapshot = sync_exchange(client, engine, as_of=as_of,
                                                   resolve_after_s=None,
                                                   webhook=settings.alert_webhook_url)
        report = apply_orders(
            client, engine, cycle.wants, managed_tickers=cycle.managed, snapshot=snapshot,
            strategy=strategy, slot=decision_slot(as_of, interval_s), as_of=as_of,
            equity_cents=sync.equity_cents, limits=RiskLimits.from_settings(settings),
            ttl_s=settings.order_ttl_s, order_group_limit=settings.order_group_contracts_limit)
    return tuple((o.market_ticker, o.action, o.client_order_id, o.status, o.detail)
                 for o in report.outcomes)


def slippage_rows(engine: Engine, *, since_ms: int = 0) -> tuple[list[dict[str, Any]],
                                                                  list[dict[str, Any]]]:
    """Return (per order, per day) slippage of fills vs the decision's expected price.

    Slippage is cents per contract paid above the price the decision expected (positive is
    worse); totals are integer cents, averages are shown as exact fractions in text.
    """
    with read_session(engine) as session:
        query = (select(Fill, OrderRecord, Decision)
                 .join(OrderRecord, col(Fill.order_id) == col(OrderRecord.id))
                 .join(Decision, col(OrderRecord.decision_id) == col(Decision.id))
                 .where(col(Fill.ts_ms) >= since_ms))
        rows = list(session.exec(query))
    per_order: dict[str, dict[str, Any]] = {}
    per_day: dict[str, dict[str, Any]] = {}
    for fill, order, decision in rows:
        if decision.intended_price_cents is None:
            continue
        slip = (fill.price_cents - decision.intended_price_cents) * fill.count
        entry = per_order.setdefault(order.client_order_id, {
            "client_order_id": order.client_order_id, "market": order.market_ticker,
            "expected_cents": decision.intended_price_cents, "contracts": 0,
            "slippage_cents": 0})
        entry["contracts"] += fill.count
        entry["slippage_cents"] += slip
        day = datetime.fromtimestamp(fill.ts_ms // 1000, tz=UTC).date().isoformat()
        bucket = per_day.setdefault(day, {"day": day, "contracts": 0, "slippage_cents": 0})
        bucket["contracts"] += fill.count
        bucket["slippage_cents"] += slip
    for entry in (*per_order.values(), *per_day.values()):
        entry["per_contract"] = f"{entry['slippage_cents']}/{entry['contracts']}"
    return list(per_order.values()), sorted(per_day.values(), key=lambda d: d["day"])


@task(name="publish-decisions", cache_policy=NO_CACHE)
def publish_decisions(rows: Sequence[DecisionRow],
                      outcomes: Sequence[tuple[str, str, str | None, str, str]],
                      as_of: datetime) -> list[dict[str, Any]]:
    """Leave the run's decision table (and slippage tables) as Prefect artifacts; return it."""
    engine = ledger()
    by_ticker: dict[str, list[tuple[str, str, str | None, str, str]]] = defaultdict(list)
    for outcome in outcomes:
        by_ticker[outcome[0]].append(outcome)
    table: list[dict[str, Any]] = []
    for row in rows:
        linked = [o for o in by_ticker.get(row.market_ticker, []) if o[1] != "cancel"]
        data = asdict(row)
        if linked:
            data["client_order_id"] = linked[-1][2]
            data["order_status"] = f"{linked[-1][1]}:{linked[-1][3]}"
        cancels = [o for o in by_ticker.get(row.market_ticker, []) if o[1] == "cancel"]
        if cancels:
            data["order_status"] = ((data["order_status"] or "") + " cancel:" +
                                    ",".join(o[3] for o in cancels)).strip()
        table.append(data)
    create_table_artifact(table=table, key="trade-weather-decisions",
                          description=f"Decisions of the weather cycle at {as_of.isoformat()}")
    day_start = datetime.combine(as_of.date(), datetime.min.time(), tzinfo=UTC)
    per_order, per_day = slippage_rows(engine, since_ms=ms_from_datetime(day_start))
    if per_order:
        create_table_artifact(table=per_order, key="trade-weather-slippage-orders",
                              description="Fill price vs the decision's expected price")
        create_table_artifact(table=per_day, key="trade-weather-slippage-days",
                              description="Slippage per UTC day")
    return table


@task(name="record-heartbeat", cache_policy=NO_CACHE)
def record_run_heartbeat(component: str, as_of: datetime, detail: str) -> None:
    """Record that the trading flow ran (the watchdog's input)."""
    record_heartbeat(ledger(), component, as_of=as_of, detail=detail[:500])


def order_trace(engine: Engine, client_order_id: str) -> dict[str, Any] | None:
    """Return decision -> intent -> order events -> fills -> settlement -> realized P&L of one
    order (None if the ledger does not know the key). P&L is in cents, after fees."""
    from models.ledger import OrderEvent, Settlement, datetime_from_ms

    with read_session(engine) as session:
        order = session.exec(
            select(OrderRecord).where(OrderRecord.client_order_id == client_order_id)).first()
        if order is None:
            return None
        decision = session.get(Decision, order.decision_id) if order.decision_id else None
        events = list(session.exec(select(OrderEvent).where(OrderEvent.order_id == order.id)
                                   .order_by(col(OrderEvent.id))))
        fills = list(session.exec(select(Fill).where(Fill.order_id == order.id)
                                  .order_by(col(Fill.ts_ms))))
        settlement = session.exec(select(Settlement).where(
            Settlement.market_ticker == order.market_ticker)).first()

    def when(ts_ms: int) -> str:
        return datetime_from_ms(ts_ms).isoformat()

    fees = sum(f.fee_cents for f in fills)
    realized: int | None = None
    if settlement is not None:
        realized = sum(((100 if f.side == settlement.result else 0) - f.price_cents) * f.count
                       for f in fills) - fees
    return {
        "decision": None if decision is None else {
            "id": decision.id, "at": when(decision.decided_ts_ms), "market": decision.market_ticker,
            "model": decision.model_version, "inputs": json.loads(decision.model_inputs_json),
            "prob_yes": decision.prob_yes, "yes_bid_cents": decision.yes_bid_cents,
            "yes_ask_cents": decision.yes_ask_cents, "edge_cents": decision.edge_cents,
            "action": decision.action, "reason": decision.reason},
        "order": {"client_order_id": order.client_order_id,
                  "exchange_order_id": order.exchange_order_id, "strategy": order.strategy,
                  "market": order.market_ticker, "side": order.side,
                  "price_cents": order.price_cents, "count": order.count,
                  "filled": order.filled_count, "status": order.status,
                  "time_in_force": order.time_in_force,
                  "expires": None if order.expiration_ts_ms is None
                  else when(order.expiration_ts_ms)},
        "events": [{"at": when(e.ts_ms), "status": e.status, "detail": e.detail}
                   for e in events],
        "fills": [{"id": f.exchange_fill_id, "at": when(f.ts_ms), "count": f.count,
                   "price_cents": f.price_cents, "fee_cents": f.fee_cents,
                   "taker": f.is_taker} for f in fills],
        "settlement": None if settlement is None else {
            "result": settlement.result, "at": when(settlement.settled_ts_ms)},
        "realized_pnl_cents": realized,
    }
