"""Decisions: fee-aware edge, fractional-Kelly size and the desired orders of one market. Pure.

Invariants: edge is integer cents per contract at the price we would actually pay, after the fee
we would actually pay (``models.fees``), with the fair price from ``cents_from_probability``;
sizes are whole contracts computed with exact rationals (no float touches money); an order is
wanted only if its edge is at least the minimum edge, and its size never exceeds the cap the caller
passes (the risk gate's headroom). An empty plan means "nothing should rest here": the gateway
cancels whatever does.

Prices on Kalshi's book are YES prices; a NO contract costs 100 - the YES price. Buying YES takes
the best ask; buying NO takes the best bid (costing 100 - bid); resting improves the best bid (YES)
or the best ask (NO) by one cent when that stays inside the spread.

Policy: take when a taker order clears the minimum edge (certain fill), else rest inside the
spread when that clears it, else no order. Kelly for a binary contract bought at cost ``c`` cents
(price plus per-contract fee) with fair value ``f`` cents: the bankroll fraction is
``(f - c) / (100 - c)``; we stake ``kelly_fraction`` of that, in whole contracts of cost ``c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal, Protocol

from models.fees import FeeSchedule, fee_cents
from models.money import cents_from_probability

__all__ = [
    "DesiredOrder",
    "EdgeParams",
    "MarketPlan",
    "Quote",
    "edge_cents",
    "fair_cents",
    "kelly_contracts",
    "plan_market",
]

Side = Literal["yes", "no"]
_SIDES: Final = ("yes", "no")


class _EdgeSettings(Protocol):
    @property
    def min_edge_cents(self) -> int: ...
    @property
    def kelly_fraction(self) -> Decimal: ...
    @property
    def order_ttl_s(self) -> int: ...


@dataclass(frozen=True)
class Quote:
    """Top of one market's book in YES cents; None where that side of the book is empty."""

    market_ticker: str
    yes_bid_cents: int | None
    yes_ask_cents: int | None  # 100 - best NO bid


@dataclass(frozen=True)
class EdgeParams:
    """How the desk turns probabilities into orders (build with ``from_settings``)."""

    min_edge_cents: int = 5
    kelly_fraction: Decimal = Decimal("0.25")
    order_ttl_s: int = 900
    fee_schedule: FeeSchedule = field(default_factory=FeeSchedule)
    allow_take: bool = True
    allow_rest: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.min_edge_cents, bool) or not isinstance(self.min_edge_cents, int):
            raise ValueError(f"min_edge_cents: expected int cents, got {self.min_edge_cents!r}")
        if self.min_edge_cents < 1:
            # a zero minimum would trade on rounding noise
            raise ValueError(f"min_edge_cents: expected >= 1, got {self.min_edge_cents!r}")
        kelly = self.kelly_fraction
        if not isinstance(kelly, Decimal) or not Decimal(0) < kelly <= Decimal(1):
            raise ValueError(f"kelly_fraction: expected a Decimal in (0, 1], got {kelly!r}")
        if isinstance(self.order_ttl_s, bool) or not isinstance(self.order_ttl_s, int):
            raise ValueError(f"order_ttl_s: expected int seconds, got {self.order_ttl_s!r}")
        if self.order_ttl_s <= 0:
            raise ValueError(f"order_ttl_s: expected > 0, got {self.order_ttl_s!r}")

    @classmethod
    def from_settings(
        cls, settings: _EdgeSettings, fee_schedule: FeeSchedule | None = None
    ) -> EdgeParams:
        """Build from ``Settings`` (min_edge_cents, kelly_fraction, order_ttl_s)."""
        return cls(
            min_edge_cents=settings.min_edge_cents,
            kelly_fraction=Decimal(settings.kelly_fraction),
            order_ttl_s=settings.order_ttl_s,
            fee_schedule=fee_schedule if fee_schedule is not None else FeeSchedule(),
        )


@dataclass(frozen=True)
class DesiredOrder:
    """An order the desk wants on the book: buy `count` of outcome `side` at `price_cents`."""

    market_ticker: str
    side: Side
    price_cents: int  # per contract of `side`
    count: int
    time_in_force: Literal["immediate_or_cancel", "good_till_canceled"]
    expiration_ts_ms: int | None  # set on every order that may rest
    edge_cents: int  # per contract, after fees
    is_taker: bool

    @property
    def yes_price_cents(self) -> int:
        """Return the price on Kalshi's YES book (a NO order at 40c is a YES ask at 60c)."""
        return self.price_cents if self.side == "yes" else 100 - self.price_cents

    @property
    def book_side(self) -> Literal["bid", "ask"]:
        """Return the V2 book side: buying YES bids, buying NO asks."""
        return "bid" if self.side == "yes" else "ask"


@dataclass(frozen=True)
class MarketPlan:
    """The desired orders of one market; empty means cancel what rests. Reason always set."""

    market_ticker: str
    action: Literal["take", "rest", "none"]
    orders: tuple[DesiredOrder, ...]
    edge_cents: int | None  # best per-contract edge seen (None when nothing was priceable)
    reason: str


def fair_cents(prob_yes: float, side: str) -> int:
    """Return the fair price in cents of one contract of `side` given P(YES)."""
    if side not in _SIDES:
        raise ValueError(f"side: expected 'yes' or 'no', got {side!r}")
    yes = int(cents_from_probability(prob_yes))
    return yes if side == "yes" else 100 - yes


def _fee_per_contract(count: int, price_cents: int, schedule: FeeSchedule, is_taker: bool) -> int:
    total = fee_cents(count, price_cents, schedule, is_taker=is_taker)
    return -(-int(total) // count)


def edge_cents(
    prob_yes: float,
    side: str,
    price_cents: int,
    count: int,
    schedule: FeeSchedule,
    *,
    is_taker: bool,
) -> int:
    """Return expected profit per contract in cents: fair - price - fee per contract (ceil)."""
    if not 1 <= price_cents <= 99:
        raise ValueError(f"price_cents: expected 1..99, got {price_cents!r}")
    if count <= 0:
        raise ValueError(f"count: expected > 0, got {count!r}")
    fee = _fee_per_contract(count, price_cents, schedule, is_taker)
    return fair_cents(prob_yes, side) - price_cents - fee


def kelly_contracts(
    fair: int, cost_cents: int, bankroll_cents: int, kelly_fraction: Decimal
) -> int:
    """Return floor(kelly_fraction x (fair - cost)/(100 - cost) x bankroll / cost), 0 if no edge."""
    if not 0 < cost_cents < 100:
        # a contract costing 100c or more (price plus fee) can never pay
        return 0
    if fair <= cost_cents or bankroll_cents <= 0:
        return 0
    growth = Fraction(fair - cost_cents, 100 - cost_cents)
    stake = Fraction(kelly_fraction) * growth * bankroll_cents
    return math.floor(stake / cost_cents)


def _candidates(quote: Quote) -> list[tuple[Side, int, bool]]:
    # (side, price paid for that side, is_taker) for every way this book lets us buy
    bid, ask = quote.yes_bid_cents, quote.yes_ask_cents
    found: list[tuple[Side, int, bool]] = []
    if ask is not None and 1 <= ask <= 99:
        found.append(("yes", ask, True))
    if bid is not None and 1 <= bid <= 99:
        found.append(("no", 100 - bid, True))
    if bid is not None and ask is not None:
        if bid + 1 < ask:
            found.append(("yes", bid + 1, False))
        if ask - 1 > bid:
            found.append(("no", 100 - (ask - 1), False))
    return found


def _bad_quote(quote: Quote) -> str | None:
    for name in ("yes_bid_cents", "yes_ask_cents"):
        value = getattr(quote, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100
        ):
            return f"{name}: expected int cents in 0..100 or None, got {value!r}"
    if quote.yes_bid_cents is None and quote.yes_ask_cents is None:
        return "empty book"
    if (
        quote.yes_bid_cents is not None
        and quote.yes_ask_cents is not None
        and quote.yes_bid_cents >= quote.yes_ask_cents
    ):
        return f"crossed book: bid {quote.yes_bid_cents}c >= ask {quote.yes_ask_cents}c"
    return None


def plan_market(
    prob_yes: float | None,
    quote: Quote,
    params: EdgeParams,
    *,
    as_of: datetime,
    bankroll_cents: int,
    max_contracts: int,
    held_contracts: int = 0,
) -> MarketPlan:
    """Return the orders this market should have: one take, one rest, or none (with the reason).

    `bankroll_cents` is the desk capital Kelly stakes from; `max_contracts` caps the size (pass the
    risk gate's headroom); `held_contracts` is the signed position (YES > 0) the size tops up.
    """
    ticker = quote.market_ticker

    def none(reason: str, edge: int | None = None) -> MarketPlan:
        return MarketPlan(ticker, "none", (), edge, reason)

    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError(f"as_of: naive datetime {as_of.isoformat()!r}; pass an aware datetime")
    if prob_yes is None:
        return none("no probability for this market")
    if isinstance(prob_yes, bool) or not isinstance(prob_yes, float | int) or not (
        0.0 <= prob_yes <= 1.0
    ):
        return none(f"invalid probability prob_yes={prob_yes!r}")
    problem = _bad_quote(quote)
    if problem is not None:
        return none(problem)
    seen_edges: list[int] = []
    for taker_pass in (True, False):
        if not (params.allow_take if taker_pass else params.allow_rest):
            continue
        orders: list[DesiredOrder] = []
        for side, price, is_taker in _candidates(quote):
            if is_taker != taker_pass:
                continue
            order = _size(prob_yes, side, price, is_taker, quote, params, as_of=as_of,
                          bankroll_cents=bankroll_cents, max_contracts=max_contracts,
                          held_contracts=held_contracts)
            if order is None:
                seen_edges.append(
                    edge_cents(prob_yes, side, price, 1, params.fee_schedule, is_taker=is_taker)
                )
            else:
                seen_edges.append(order.edge_cents)
                orders.append(order)
        if orders:
            chosen = max(orders, key=lambda o: (o.edge_cents, o.count))
            action: Literal["take", "rest"] = "take" if chosen.is_taker else "rest"
            return MarketPlan(ticker, action, (chosen,), chosen.edge_cents,
                              f"{action} {chosen.count} {chosen.side} at {chosen.price_cents}c: "
                              f"edge {chosen.edge_cents}c >= {params.min_edge_cents}c")
    if not seen_edges:
        return none("no side of the book can be bought")
    top = max(seen_edges)
    if top < params.min_edge_cents:
        return none(f"best edge {top}c below minimum {params.min_edge_cents}c", top)
    return none(f"edge {top}c clears the minimum but the size is 0 (cap {max_contracts} "
                f"contracts, bankroll {bankroll_cents}c, held {held_contracts})", top)


def _size(
    prob_yes: float,
    side: Side,
    price: int,
    is_taker: bool,
    quote: Quote,
    params: EdgeParams,
    *,
    as_of: datetime,
    bankroll_cents: int,
    max_contracts: int,
    held_contracts: int,
) -> DesiredOrder | None:
    # size with the one-contract fee (the largest per-contract fee), then check edge at that size
    schedule = params.fee_schedule
    fair = fair_cents(prob_yes, side)
    cost = price + _fee_per_contract(1, price, schedule, is_taker)
    target = kelly_contracts(fair, cost, bankroll_cents, params.kelly_fraction)
    held_same_side = max(held_contracts, 0) if side == "yes" else max(-held_contracts, 0)
    count = min(target - held_same_side, max_contracts)
    if count <= 0:
        return None
    edge = edge_cents(prob_yes, side, price, count, schedule, is_taker=is_taker)
    if edge < params.min_edge_cents:
        return None
    expiration = None if is_taker else _ms(as_of + timedelta(seconds=params.order_ttl_s))
    return DesiredOrder(
        market_ticker=quote.market_ticker,
        side=side,
        price_cents=price,
        count=count,
        time_in_force="immediate_or_cancel" if is_taker else "good_till_canceled",
        expiration_ts_ms=expiration,
        edge_cents=edge,
        is_taker=is_taker,
    )


def _ms(value: datetime) -> int:
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
