"""Markets, events, series, order books, trades and candlesticks, from both API shapes.

Invariant: legacy integer-cent fields and current dollar/fp strings map to the same exact values,
and must agree when both are present.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from kalshi.wire._base import (
    _FEE_TYPES,
    _MARKET_STATUSES,
    _RESULTS,
    _STRIKE_TYPES,
    CENT_GRID,
    BookSide,
    PriceGrid,
    _bool,
    _cents,
    _count,
    _dt,
    _enum,
    _fail,
    _Frozen,
    _grid,
    _int,
    _money,
    _number,
    _price,
    _rbool,
    _rcount,
    _rdt,
    _renum,
    _rint,
    _rmoney,
    _rprice,
    _rstr,
    _str,
    require_object,
)
from models.money import (
    Cents,
)

__all__ = [
    "Market",
    "Event",
    "Series",
    "SettlementSource",
    "BookLevel",
    "Orderbook",
    "Trade",
    "Ohlc",
    "Candlestick",
    "parse_market",
    "parse_event",
    "parse_series",
    "parse_orderbook",
    "parse_trade",
    "parse_candlestick",
]

# --------------------------------------------------------------------------------------------
# markets, events, series


class Market(_Frozen):
    """A market, from either shape. Prices in dollars (exact), counts in contracts (exact)."""

    ticker: str
    event_ticker: str
    market_type: Literal["binary", "scalar"]
    title: str | None
    subtitle: str | None
    yes_sub_title: str
    no_sub_title: str
    status: str
    open_time: datetime
    close_time: datetime
    created_time: datetime | None
    updated_time: datetime | None
    expected_expiration_time: datetime | None
    expiration_time: datetime | None
    latest_expiration_time: datetime
    settlement_timer_seconds: int
    yes_bid: Decimal
    yes_ask: Decimal
    no_bid: Decimal
    no_ask: Decimal
    last_price: Decimal
    previous_yes_bid: Decimal
    previous_yes_ask: Decimal
    previous_price: Decimal
    yes_bid_size: Decimal | None
    yes_ask_size: Decimal | None
    volume: Decimal
    volume_24h: Decimal
    open_interest: Decimal
    notional_value: Decimal
    liquidity: Decimal | None
    result: str
    can_close_early: bool
    expiration_value: str
    settlement_value: Decimal | None
    strike_type: str | None
    floor_strike: Decimal | None
    cap_strike: Decimal | None
    rules_primary: str
    rules_secondary: str
    price_level_structure: str | None
    price_grid: PriceGrid

    @property
    def yes_bid_cents(self) -> Cents:
        """Best YES bid in cents (raises SubpennyError on a sub-penny market's odd price)."""
        return _cents(self.yes_bid, "yes_bid")

    @property
    def yes_ask_cents(self) -> Cents:
        """Best YES ask in cents."""
        return _cents(self.yes_ask, "yes_ask")

    @property
    def no_bid_cents(self) -> Cents:
        """Best NO bid in cents."""
        return _cents(self.no_bid, "no_bid")

    @property
    def no_ask_cents(self) -> Cents:
        """Best NO ask in cents."""
        return _cents(self.no_ask, "no_ask")

    @property
    def last_price_cents(self) -> Cents:
        """Last traded YES price in cents."""
        return _cents(self.last_price, "last_price")


def parse_market(raw: Any) -> Market:
    """Map one wire market (current or legacy shape) to ``Market``."""
    obj = require_object(raw, "market")
    ticker = _str(obj, "ticker", "market")
    ctx = f"market[{ticker}]"
    grid = _grid(obj, ctx)
    status = _renum(obj, "status", ctx, _MARKET_STATUSES)
    market_type = _renum(obj, "market_type", ctx, frozenset({"binary", "scalar"}))
    return Market(
        ticker=_rstr(obj, "ticker", ctx),
        event_ticker=_rstr(obj, "event_ticker", ctx),
        market_type=market_type,  # type: ignore[arg-type]
        title=_str(obj, "title", ctx, required=False),
        subtitle=_str(obj, "subtitle", ctx, required=False),
        yes_sub_title=_rstr(obj, "yes_sub_title", ctx),
        no_sub_title=_rstr(obj, "no_sub_title", ctx),
        status=status,
        open_time=_rdt(obj, "open_time", ctx),
        close_time=_rdt(obj, "close_time", ctx),
        created_time=_dt(obj, "created_time", ctx, required=False),
        updated_time=_dt(obj, "updated_time", ctx, required=False),
        expected_expiration_time=_dt(obj, "expected_expiration_time", ctx, required=False),
        expiration_time=_dt(obj, "expiration_time", ctx, required=False),
        latest_expiration_time=_rdt(obj, "latest_expiration_time", ctx),
        settlement_timer_seconds=_rint(obj, "settlement_timer_seconds", ctx),
        yes_bid=_rprice(obj, "yes_bid_dollars", ctx, "yes_bid", grid),
        yes_ask=_rprice(obj, "yes_ask_dollars", ctx, "yes_ask", grid),
        no_bid=_rprice(obj, "no_bid_dollars", ctx, "no_bid", grid),
        no_ask=_rprice(obj, "no_ask_dollars", ctx, "no_ask", grid),
        last_price=_rprice(obj, "last_price_dollars", ctx, "last_price", grid),
        previous_yes_bid=_rprice(obj, "previous_yes_bid_dollars", ctx, "previous_yes_bid", grid),
        previous_yes_ask=_rprice(obj, "previous_yes_ask_dollars", ctx, "previous_yes_ask", grid),
        previous_price=_rprice(obj, "previous_price_dollars", ctx, "previous_price", grid),
        yes_bid_size=_count(obj, "yes_bid_size_fp", ctx, required=False),
        yes_ask_size=_count(obj, "yes_ask_size_fp", ctx, required=False),
        volume=_rcount(obj, "volume_fp", ctx, "volume"),
        volume_24h=_rcount(obj, "volume_24h_fp", ctx, "volume_24h"),
        open_interest=_rcount(obj, "open_interest_fp", ctx, "open_interest"),
        notional_value=_rmoney(obj, "notional_value_dollars", ctx, "notional_value"),
        liquidity=_money(obj, "liquidity_dollars", ctx, "liquidity", required=False),
        result=_renum(obj, "result", ctx, _RESULTS),
        can_close_early=_rbool(obj, "can_close_early", ctx),
        expiration_value=_rstr(obj, "expiration_value", ctx),
        settlement_value=_money(
            obj, "settlement_value_dollars", ctx, "settlement_value", required=False
        ),
        strike_type=_enum(obj, "strike_type", ctx, _STRIKE_TYPES, required=False),
        floor_strike=_number(obj, "floor_strike", ctx),
        cap_strike=_number(obj, "cap_strike", ctx),
        rules_primary=_rstr(obj, "rules_primary", ctx),
        rules_secondary=_rstr(obj, "rules_secondary", ctx),
        price_level_structure=_str(obj, "price_level_structure", ctx, required=False),
        price_grid=grid,
    )


class SettlementSource(_Frozen):
    """Where a series settles (name and URL)."""

    name: str
    url: str | None


def _sources(raw: Mapping[str, Any], ctx: str) -> tuple[SettlementSource, ...] | None:
    value = raw.get("settlement_sources")
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(f"{ctx}.settlement_sources", "expected a list", value)
    out = []
    for i, item in enumerate(value):
        where = f"{ctx}.settlement_sources[{i}]"
        item = require_object(item, where)
        out.append(SettlementSource(name=_rstr(item, "name", where),
                                    url=_str(item, "url", where, required=False)))
    return tuple(out)


class Event(_Frozen):
    """An event (one climate day, say) and, when requested, its markets."""

    event_ticker: str
    series_ticker: str
    title: str
    sub_title: str
    collateral_return_type: str
    mutually_exclusive: bool
    category: str | None
    strike_date: datetime | None
    settlement_sources: tuple[SettlementSource, ...] | None
    markets: tuple[Market, ...]


def parse_event(raw: Any, markets: Any = None) -> Event:
    """Map a wire event (``EventData``) and its markets (nested or given separately)."""
    obj = require_object(raw, "event")
    ticker = _str(obj, "event_ticker", "event")
    ctx = f"event[{ticker}]"
    nested = obj.get("markets") if markets is None else markets
    if nested is not None and not isinstance(nested, list):
        raise _fail(f"{ctx}.markets", "expected a list", nested)
    return Event(
        event_ticker=_rstr(obj, "event_ticker", ctx),
        series_ticker=_rstr(obj, "series_ticker", ctx),
        title=_rstr(obj, "title", ctx),
        sub_title=_rstr(obj, "sub_title", ctx),
        collateral_return_type=_renum(
            obj, "collateral_return_type", ctx, frozenset({"MECNET", "DIRECNET", ""})
        ),
        mutually_exclusive=_rbool(obj, "mutually_exclusive", ctx),
        category=_str(obj, "category", ctx, required=False),
        strike_date=_dt(obj, "strike_date", ctx, required=False),
        settlement_sources=_sources(obj, ctx),
        markets=tuple(parse_market(m) for m in (nested or [])),
    )


class Series(_Frozen):
    """A series (KXHIGHNY...): fee schedule and settlement sources."""

    ticker: str
    frequency: str
    title: str
    category: str
    tags: tuple[str, ...] | None
    settlement_sources: tuple[SettlementSource, ...] | None
    contract_url: str
    contract_terms_url: str | None
    fee_type: str
    fee_multiplier: Decimal


def parse_series(raw: Any) -> Series:
    """Map a wire series to ``Series``."""
    obj = require_object(raw, "series")
    ctx = f"series[{obj.get('ticker')}]"
    tags = obj.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise _fail(f"{ctx}.tags", "expected a list of strings", tags)
    multiplier = _number(obj, "fee_multiplier", ctx)
    if multiplier is None:
        raise _fail(f"{ctx}.fee_multiplier", "missing required field", None)
    return Series(
        ticker=_rstr(obj, "ticker", ctx),
        frequency=_rstr(obj, "frequency", ctx),
        title=_rstr(obj, "title", ctx),
        category=_rstr(obj, "category", ctx),
        tags=tuple(tags) if tags is not None else None,
        settlement_sources=_sources(obj, ctx),
        contract_url=_rstr(obj, "contract_url", ctx),
        contract_terms_url=_str(obj, "contract_terms_url", ctx, required=False),
        fee_type=_renum(obj, "fee_type", ctx, _FEE_TYPES),
        fee_multiplier=multiplier,
    )


# --------------------------------------------------------------------------------------------
# order book, trades, candlesticks


class BookLevel(_Frozen):
    """One price level of bids: price in dollars, size in contracts."""

    price: Decimal
    count: Decimal


class Orderbook(_Frozen):
    """Bids on both outcomes, ascending by price (best bid last); NO prices are NO-leg prices."""

    yes: tuple[BookLevel, ...]
    no: tuple[BookLevel, ...]

    @property
    def best_yes_bid(self) -> Decimal | None:
        """Highest YES bid in dollars, or None if the side is empty."""
        return self.yes[-1].price if self.yes else None

    @property
    def best_yes_ask(self) -> Decimal | None:
        """Implied lowest YES ask: 1 - best NO bid."""
        return Decimal(1) - self.no[-1].price if self.no else None


def _levels(value: Any, field: str, grid: PriceGrid, *, legacy: bool) -> tuple[BookLevel, ...]:
    if value is None and legacy:  # the legacy book sent null for an empty side
        return ()
    if not isinstance(value, list):
        raise _fail(field, "expected a list of [price, count] levels", value)
    out: list[BookLevel] = []
    for i, level in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(level, list) or len(level) != 2:
            raise _fail(where, "expected a [price, count] pair", level)
        pair = {"price": level[0], "count": level[1]}
        if legacy:
            price = _rprice(pair, "", where, "price", grid)
            count = _rcount(pair, "", where, "count")
        else:
            price = _rprice(pair, "price", where, None, grid)
            count = _rcount(pair, "count", where)
        if count <= 0:
            raise _fail(f"{where}.count", "a book level must hold a positive count", level[1])
        if out and price <= out[-1].price:
            raise _fail(where, "levels must be strictly ascending by price", level)
        out.append(BookLevel(price=price, count=count))
    return tuple(out)


def parse_orderbook(raw: Any, grid: PriceGrid = CENT_GRID) -> Orderbook:
    """Map ``{orderbook_fp:{yes_dollars,no_dollars}}`` or legacy ``{orderbook:{yes,no}}``."""
    obj = require_object(raw, "orderbook response")
    if obj.get("orderbook_fp") is not None:
        book = require_object(obj["orderbook_fp"], "orderbook_fp")
        return Orderbook(
            yes=_levels(book.get("yes_dollars"), "orderbook_fp.yes_dollars", grid, legacy=False),
            no=_levels(book.get("no_dollars"), "orderbook_fp.no_dollars", grid, legacy=False),
        )
    if obj.get("orderbook") is not None:
        book = require_object(obj["orderbook"], "orderbook")
        return Orderbook(
            yes=_levels(book.get("yes"), "orderbook.yes", grid, legacy=True),
            no=_levels(book.get("no"), "orderbook.no", grid, legacy=True),
        )
    raise _fail("orderbook_fp", "missing required field", None)


def _book_side_from_legacy(side: str | None, action: str | None) -> BookSide | None:
    # buy yes / sell no -> YES bid; buy no / sell yes -> YES ask (docs order_direction.md)
    if side is None:
        return None
    if action in (None, "buy"):
        return "bid" if side == "yes" else "ask"
    return "ask" if side == "yes" else "bid"


def _book_side(obj: Mapping[str, Any], ctx: str, *, side_key: str = "book_side",
               outcome_key: str = "outcome_side", legacy_side: str = "side",
               legacy_action: str | None = "action") -> BookSide:
    current = _enum(obj, side_key, ctx, frozenset({"bid", "ask"}), required=False)
    outcome = _enum(obj, outcome_key, ctx, frozenset({"yes", "no"}), required=False)
    if outcome is not None:  # the V2 direction model: bid == yes, ask == no, always
        implied = "bid" if outcome == "yes" else "ask"
        if current is not None and current != implied:
            raise _fail(f"{ctx}.{outcome_key}", f"contradicts {side_key}={current}", outcome)
        current = implied
    old_side = _enum(obj, legacy_side, ctx, frozenset({"yes", "no"}), required=False)
    old_action = (
        _enum(obj, legacy_action, ctx, frozenset({"buy", "sell"}), required=False)
        if legacy_action else None
    )
    old = _book_side_from_legacy(old_side, old_action)
    if current is not None and old is not None and current != old:
        raise _fail(f"{ctx}.{side_key}", f"disagrees with legacy {legacy_side}/{legacy_action}",
                    current)
    result = current or old
    if result is None:
        raise _fail(f"{ctx}.{side_key}", "missing required field", None)
    return result  # type: ignore[return-value]


class Trade(_Frozen):
    """One public trade."""

    trade_id: str
    ticker: str
    count: Decimal
    yes_price: Decimal
    no_price: Decimal
    taker_book_side: BookSide
    created_time: datetime
    is_block_trade: bool | None


def parse_trade(raw: Any, grid: PriceGrid = CENT_GRID) -> Trade:
    """Map a wire trade (``count_fp``/``*_dollars`` or legacy ``count``/cents)."""
    obj = require_object(raw, "trade")
    ctx = f"trade[{obj.get('trade_id')}]"
    return Trade(
        trade_id=_rstr(obj, "trade_id", ctx),
        ticker=_rstr(obj, "ticker", ctx),
        count=_rcount(obj, "count_fp", ctx, "count"),
        yes_price=_rprice(obj, "yes_price_dollars", ctx, "yes_price", grid),
        no_price=_rprice(obj, "no_price_dollars", ctx, "no_price", grid),
        taker_book_side=_book_side(obj, ctx, side_key="taker_book_side",
                                   outcome_key="taker_outcome_side", legacy_side="taker_side",
                                   legacy_action=None),
        created_time=_rdt(obj, "created_time", ctx),
        is_block_trade=_bool(obj, "is_block_trade", ctx, required=False),
    )


class Ohlc(_Frozen):
    """Open/high/low/close in dollars (None where the period had no data)."""

    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None


def _ohlc(raw: Any, field: str, grid: PriceGrid, *, required: bool) -> Ohlc | None:
    if raw is None and not required:
        return None
    obj = require_object(raw, field)
    parts = {}
    for name in ("open", "high", "low", "close"):
        parts[name] = _price(obj, f"{name}_dollars", field, name, grid, required=required)
    return Ohlc(**parts)


class Candlestick(_Frozen):
    """One candlestick period of a market."""

    end_period_ts: int
    yes_bid: Ohlc
    yes_ask: Ohlc
    price: Ohlc | None
    volume: Decimal
    open_interest: Decimal


def parse_candlestick(raw: Any, grid: PriceGrid = CENT_GRID) -> Candlestick:
    """Map a wire candlestick (current, historical or legacy shape)."""
    obj = require_object(raw, "candlestick")
    ctx = f"candlestick[{obj.get('end_period_ts')}]"
    end = _int(obj, "end_period_ts", ctx)
    assert end is not None
    yes_bid = _ohlc(obj.get("yes_bid"), f"{ctx}.yes_bid", grid, required=True)
    yes_ask = _ohlc(obj.get("yes_ask"), f"{ctx}.yes_ask", grid, required=True)
    assert yes_bid is not None
    assert yes_ask is not None
    return Candlestick(
        end_period_ts=end,
        yes_bid=yes_bid,
        yes_ask=yes_ask,
        price=_ohlc(obj.get("price"), f"{ctx}.price", grid, required=False),
        volume=_rcount(obj, "volume_fp", ctx, "volume"),
        open_interest=_rcount(obj, "open_interest_fp", ctx, "open_interest"),
    )
