"""Engine objects to the exact JSON of Kalshi's current REST contract (SDK 3.34.0).

Invariant: every response object carries the fields the published contract marks required, with
its JSON types: prices and money as dollar strings ("0.5600"), counts as fixed-point strings
("10.00"), a few documented integer-cent fields (``balance``, ``portfolio_value``, ``revenue``), and
RFC3339 UTC datetimes. No float ever carries money here; conversion goes through ``models.money``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models.matching import BookView, Fill, MarketState, Order, Position, Settlement, Trade
from models.money import dollars_from_cents, fp_from_contracts, price_dollars

__all__ = [
    "rfc3339",
    "order_json",
    "fill_json",
    "trade_json",
    "position_json",
    "event_position_json",
    "settlement_json",
    "orderbook_json",
    "market_json",
    "event_json",
    "series_json",
    "money",
    "average_fill",
    "MARKET_DESCRIPTIVE_FIELDS",
    "EVENT_DESCRIPTIVE_FIELDS",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Fields copied verbatim from a stored Kalshi market object (legacy or current shape); everything
# that reflects live trading (prices, volume, status, result) comes from the engine instead.
MARKET_DESCRIPTIVE_FIELDS = (
    "market_type",
    "title",
    "subtitle",
    "yes_sub_title",
    "no_sub_title",
    "expected_expiration_time",
    "latest_expiration_time",
    "settlement_timer_seconds",
    "can_close_early",
    "early_close_condition",
    "strike_type",
    "floor_strike",
    "cap_strike",
    "functional_strike",
    "custom_strike",
    "rules_primary",
    "rules_secondary",
    "settlement_bounds_type",
    "occurrence_datetime",
    "primary_participant_key",
)
EVENT_DESCRIPTIVE_FIELDS = (
    "event_ticker",
    "series_ticker",
    "sub_title",
    "title",
    "collateral_return_type",
    "mutually_exclusive",
    "category",
    "strike_date",
    "strike_period",
    "settlement_sources",
    "product_metadata",
)


def rfc3339(ts_ms: int) -> str:
    """Format Unix milliseconds as an RFC3339 UTC string ("2026-01-01T00:00:00Z")."""
    moment = _EPOCH + timedelta(milliseconds=ts_ms)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ts_ms % 1000:03d}Z" if ts_ms % 1000 else f"{text}Z"


def money(cents: int) -> str:
    """Format cents as a 4-place dollar string: 1050 -> "10.5000"."""
    return dollars_from_cents(cents, places=4)


def _outcome_side(book_side: str) -> str:
    return "yes" if book_side == "bid" else "no"


def order_json(order: Order) -> dict[str, Any]:
    """Return the ``Order`` object of GET /portfolio/orders."""
    side = _outcome_side(order.side)
    body: dict[str, Any] = {
        "order_id": order.order_id,
        "user_id": order.account_id,
        "client_order_id": order.client_order_id or "",
        "ticker": order.ticker,
        "outcome_side": side,
        "book_side": order.side,
        "side": side,
        "action": "buy",
        "type": "limit",
        "status": order.status,
        "yes_price_dollars": price_dollars(order.price_cents),
        "no_price_dollars": price_dollars(100 - order.price_cents),
        "fill_count_fp": fp_from_contracts(order.fill_count),
        "remaining_count_fp": fp_from_contracts(order.remaining_count),
        "initial_count_fp": fp_from_contracts(order.initial_count),
        "taker_fill_cost_dollars": money(order.taker_fill_cost_cents),
        "maker_fill_cost_dollars": money(order.maker_fill_cost_cents),
        "taker_fees_dollars": money(order.taker_fees_cents),
        "maker_fees_dollars": money(order.maker_fees_cents),
        "created_time": rfc3339(order.created_ts_ms),
        "last_update_time": rfc3339(order.last_update_ts_ms),
        "expiration_time": (
            rfc3339(order.expiration_ts_ms) if order.expiration_ts_ms is not None else None
        ),
        "self_trade_prevention_type": order.stp,
        "order_group_id": order.order_group_id,
        "cancel_order_on_pause": False,
        "subaccount_number": 0,
        "exchange_index": 0,
    }
    return body


def average_fill(order: Order) -> tuple[str | None, str | None]:
    """Return (average_fill_price, average_fee_paid) as dollar strings, None when nothing filled.

    The price is in YES terms like the V2 ``price`` field: an ask's fill costs are NO prices, so
    its YES average is 1 - cost/count. Shown to $0.0001, rounded half up (display only).
    """
    if order.fill_count <= 0:
        return None, None
    cost = order.taker_fill_cost_cents + order.maker_fill_cost_cents
    if order.side == "ask":
        cost = 100 * order.fill_count - cost
    fees = order.taker_fees_cents + order.maker_fees_cents
    return _ratio_dollars(cost, order.fill_count), _ratio_dollars(fees, order.fill_count)


def _ratio_dollars(cents: int, count: int) -> str:
    centi_cents = (cents * 100 + count // 2) // count  # half-up to $0.0001, display only
    return f"{centi_cents // 10000}.{centi_cents % 10000:04d}"


def fill_json(fill: Fill) -> dict[str, Any]:
    """Return the ``Fill`` object of GET /portfolio/fills."""
    side = _outcome_side(fill.side)
    return {
        "fill_id": fill.fill_id,
        "trade_id": fill.trade_id,
        "order_id": fill.order_id,
        "ticker": fill.ticker,
        "market_ticker": fill.ticker,
        "exchange_index": 0,
        "outcome_side": side,
        "book_side": fill.side,
        "side": side,
        "action": "buy",
        "count_fp": fp_from_contracts(fill.count),
        "yes_price_dollars": price_dollars(fill.yes_price_cents),
        "no_price_dollars": price_dollars(100 - fill.yes_price_cents),
        "is_taker": fill.is_taker,
        "fee_cost": money(fill.fee_cents),
        "created_time": rfc3339(fill.ts_ms),
        "ts": fill.ts_ms // 1000,
        "subaccount_number": 0,
    }


def trade_json(trade: Trade) -> dict[str, Any]:
    """Return the public ``Trade`` object of GET /markets/trades."""
    return {
        "trade_id": trade.trade_id,
        "ticker": trade.ticker,
        "count_fp": fp_from_contracts(trade.count),
        "yes_price_dollars": price_dollars(trade.yes_price_cents),
        "no_price_dollars": price_dollars(100 - trade.yes_price_cents),
        "taker_outcome_side": trade.taker_side,
        "taker_book_side": "bid" if trade.taker_side == "yes" else "ask",
        "taker_side": trade.taker_side,
        "created_time": rfc3339(trade.ts_ms),
        "is_block_trade": False,
    }


def position_json(position: Position, last_updated_ms: int) -> dict[str, Any]:
    """Return the ``MarketPosition`` object (position_fp signed: + YES, - NO)."""
    return {
        "ticker": position.ticker,
        "exchange_index": 0,
        "total_traded_dollars": money(position.total_traded_cents),
        "position_fp": fp_from_contracts(position.position),
        "market_exposure_dollars": money(position.market_exposure_cents),
        "realized_pnl_dollars": money(position.realized_pnl_cents),
        "fees_paid_dollars": money(position.fees_paid_cents),
        "last_updated_ts": rfc3339(last_updated_ms),
    }


def event_position_json(event_ticker: str, positions: list[Position]) -> dict[str, Any]:
    """Return the ``EventPosition`` aggregate of one event's market positions."""
    exposure = sum(p.market_exposure_cents for p in positions)
    return {
        "event_ticker": event_ticker,
        "total_cost_dollars": money(sum(p.total_traded_cents for p in positions)),
        "total_cost_shares_fp": fp_from_contracts(sum(abs(p.position) for p in positions)),
        "event_exposure_dollars": money(exposure),
        "realized_pnl_dollars": money(sum(p.realized_pnl_cents for p in positions)),
        "fees_paid_dollars": money(sum(p.fees_paid_cents for p in positions)),
    }


def settlement_json(settlement: Settlement) -> dict[str, Any]:
    """Return the ``Settlement`` object of GET /portfolio/settlements (revenue in int cents)."""
    return {
        "ticker": settlement.ticker,
        "exchange_index": 0,
        "event_ticker": settlement.event_ticker,
        "market_result": settlement.result,
        "yes_count_fp": fp_from_contracts(settlement.yes_count),
        "yes_total_cost_dollars": money(settlement.yes_total_cost_cents),
        "no_count_fp": fp_from_contracts(settlement.no_count),
        "no_total_cost_dollars": money(settlement.no_total_cost_cents),
        "revenue": settlement.revenue_cents,
        "value": 100 if settlement.result == "yes" else 0,
        "settled_time": rfc3339(settlement.ts_ms),
        "fee_cost": money(settlement.fee_cents),
    }


def orderbook_json(book: BookView) -> dict[str, Any]:
    """Return ``orderbook_fp``: bids of both legs, ascending by price (best bid last)."""
    return {
        "yes_dollars": [
            [price_dollars(p), fp_from_contracts(q)] for p, q in sorted(book.yes)
        ],
        "no_dollars": [[price_dollars(p), fp_from_contracts(q)] for p, q in sorted(book.no)],
    }


def _price_ranges(tick_cents: int) -> list[dict[str, str]]:
    return [{"start": "0.0000", "end": "1.0000", "step": price_dollars(tick_cents)}]


def market_json(
    state: MarketState,
    raw: dict[str, Any],
    book: BookView,
    *,
    volume_24h: int,
    created_ms: int,
    updated_ms: int,
) -> dict[str, Any]:
    """Return the current-shape ``Market`` from its stored Kalshi fields and the live engine."""
    spec = state.spec
    best_yes = max((p for p, _q in book.yes), default=None)
    best_no = max((p for p, _q in book.no), default=None)
    yes_bid_size = sum(q for p, q in book.yes if p == best_yes)
    yes_ask_size = sum(q for p, q in book.no if p == best_no)
    last = state.last_price_cents
    body: dict[str, Any] = {
        "ticker": spec.ticker,
        "event_ticker": spec.event_ticker,
        "market_type": "binary",
        "title": "",
        "subtitle": "",
        "yes_sub_title": "",
        "no_sub_title": "",
        "settlement_timer_seconds": 0,
        "can_close_early": False,
        "rules_primary": "",
        "rules_secondary": "",
        "settlement_bounds_type": "default",
    }
    for field in MARKET_DESCRIPTIVE_FIELDS:
        if raw.get(field) is not None:
            body[field] = raw[field]
    close_time = rfc3339(spec.close_ts_ms)
    body.update(
        {
            "created_time": rfc3339(created_ms),
            "updated_time": rfc3339(updated_ms),
            "open_time": rfc3339(spec.open_ts_ms),
            "close_time": close_time,
            "latest_expiration_time": body.get("latest_expiration_time") or close_time,
            "status": state.status,
            "yes_bid_dollars": price_dollars(best_yes if best_yes is not None else 0),
            "yes_bid_size_fp": fp_from_contracts(yes_bid_size),
            "yes_ask_dollars": price_dollars(100 - best_no if best_no is not None else 100),
            "yes_ask_size_fp": fp_from_contracts(yes_ask_size),
            "no_bid_dollars": price_dollars(best_no if best_no is not None else 0),
            "no_ask_dollars": price_dollars(100 - best_yes if best_yes is not None else 100),
            "last_price_dollars": price_dollars(last if last is not None else 0),
            "volume_fp": fp_from_contracts(state.volume),
            "volume_24h_fp": fp_from_contracts(volume_24h),
            "open_interest_fp": fp_from_contracts(state.open_interest),
            "notional_value_dollars": "1.0000",
            "previous_yes_bid_dollars": "0.0000",
            "previous_yes_ask_dollars": "0.0000",
            "previous_price_dollars": "0.0000",
            "result": state.result or "",
            "expiration_value": str(raw.get("expiration_value") or "") if state.result else "",
            "price_level_structure": "linear_cent" if spec.tick_cents == 1 else "custom",
            "price_ranges": _price_ranges(spec.tick_cents),
            "exchange_index": 0,
        }
    )
    if state.result in ("yes", "no"):
        body["settlement_value_dollars"] = "1.0000" if state.result == "yes" else "0.0000"
    return body


def event_json(raw: dict[str, Any], event_ticker: str, series_ticker: str) -> dict[str, Any]:
    """Return ``EventData`` from the stored Kalshi event object."""
    body: dict[str, Any] = {
        "event_ticker": event_ticker,
        "series_ticker": series_ticker,
        "sub_title": "",
        "title": "",
        "collateral_return_type": "",
        "mutually_exclusive": False,
        "settlement_sources": None,
    }
    for field in EVENT_DESCRIPTIVE_FIELDS:
        if field in raw:
            body[field] = raw[field]
    body["event_ticker"] = event_ticker
    body["series_ticker"] = series_ticker
    body["exchange_index"] = 0
    return body


def series_json(raw: dict[str, Any], ticker: str) -> dict[str, Any]:
    """Return ``Series`` from the stored Kalshi series object (defaults for missing fields)."""
    body: dict[str, Any] = {
        "ticker": ticker,
        "frequency": "daily",
        "title": "",
        "category": "",
        "categories": [],
        "tags": None,
        "settlement_sources": None,
        "contract_url": "",
        "contract_terms_url": "",
        "fee_type": "quadratic",
        "fee_multiplier": 1,
        "additional_prohibitions": None,
    }
    for field, value in raw.items():
        if field in body or field in ("product_metadata", "volume_fp", "last_updated_ts"):
            body[field] = value
    body["ticker"] = ticker
    body["exchange_index"] = 0
    return body
