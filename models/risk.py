"""Pre-trade risk gate, pure.

Invariant: an approved order never takes exposure past a limit, counting what is already held AND
what is in flight (intents not yet acknowledged, resting orders). The gate never raises: bad input
and breached limits alike come back as a ``Rejection`` naming the limit, the field and the values.

Exposure is money at risk in integer cents: the cost basis of held contracts plus price x unfilled
count of active orders (a bought contract can lose at most its price). All fractions apply to the
*desk capital* = ``floor(equity x capital_allocation)``, so a user who allocates 20 % of the
account gets 5 % of that 20 % per event. Limits, in the order they are checked:

1. ``halt``: any active halt flag rejects everything;
2. ``daily_loss``: start-of-day equity minus current marked-to-market equity must stay below
   ``daily_loss_fraction`` of start-of-day equity;
3. ``capital``: total exposure <= desk capital;
4. ``category``: exposure per category <= ``max_category_fraction`` of desk capital;
5. ``contract``: exposure per *event* <= ``max_contract_fraction`` of desk capital (the brackets of
   one event are mutually exclusive outcomes of one number, so they form one bucket);
6. ``volume``: contracts held and in flight in the market <= ``max_volume_multiple`` x the market's
   average daily volume (unknown volume rejects: nothing guessed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Final, Protocol

__all__ = [
    "LIMIT_NAMES",
    "Approved",
    "Holding",
    "OrderRequest",
    "Rejection",
    "RiskLimits",
    "RiskState",
    "check_order",
    "max_order_contracts",
    "with_order",
]

LIMIT_NAMES: Final = ("invalid", "halt", "daily_loss", "capital", "category", "contract", "volume")


class _LimitSettings(Protocol):
    @property
    def max_contract_fraction(self) -> Decimal: ...
    @property
    def max_category_fraction(self) -> Decimal: ...
    @property
    def max_volume_multiple(self) -> Decimal: ...
    @property
    def daily_loss_fraction(self) -> Decimal: ...
    @property
    def capital_allocation(self) -> Decimal: ...


@dataclass(frozen=True)
class RiskLimits:
    """The desk's limits; fractions are exact Decimals in (0, 1], the volume multiple > 0."""

    max_contract_fraction: Decimal = Decimal("0.05")
    max_category_fraction: Decimal = Decimal("0.40")
    max_volume_multiple: Decimal = Decimal("2")
    daily_loss_fraction: Decimal = Decimal("0.03")
    capital_allocation: Decimal = Decimal("1.0")

    def __post_init__(self) -> None:
        for name in ("max_contract_fraction", "max_category_fraction", "daily_loss_fraction",
                     "capital_allocation"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not Decimal(0) < value <= Decimal(1):
                raise ValueError(f"{name}: expected a Decimal in (0, 1], got {value!r}")
        multiple = self.max_volume_multiple
        if not isinstance(multiple, Decimal) or multiple <= 0:
            raise ValueError(f"max_volume_multiple: expected a positive Decimal, got {multiple!r}")

    @classmethod
    def from_settings(cls, settings: _LimitSettings) -> RiskLimits:
        """Build the limits from anything carrying the five settings fields (``Settings``)."""
        return cls(
            max_contract_fraction=Decimal(settings.max_contract_fraction),
            max_category_fraction=Decimal(settings.max_category_fraction),
            max_volume_multiple=Decimal(settings.max_volume_multiple),
            daily_loss_fraction=Decimal(settings.daily_loss_fraction),
            capital_allocation=Decimal(settings.capital_allocation),
        )


@dataclass(frozen=True)
class Holding:
    """Exposure in one market: filled position plus active orders' unfilled remainder."""

    market_ticker: str
    event_ticker: str
    category: str
    exposure_cents: int
    contracts: int  # absolute contracts held plus unfilled contracts in flight


@dataclass(frozen=True)
class RiskState:
    """What the gate needs to know, read in the same transaction as the intent write."""

    equity_cents: int  # current account equity, marked to market
    start_of_day_equity_cents: int
    holdings: tuple[Holding, ...] = ()
    halts: tuple[str, ...] = ()  # reasons of active halts


@dataclass(frozen=True)
class OrderRequest:
    """An order the desk wants to send: buy `count` contracts of outcome `side` at `price_cents`."""

    market_ticker: str
    event_ticker: str
    category: str
    side: str  # yes | no
    price_cents: int
    count: int
    avg_daily_volume: int | None  # contracts per day over the lookback; None = unknown

    @property
    def cost_cents(self) -> int:
        """Return the money at risk if the whole order fills."""
        return self.price_cents * self.count


@dataclass(frozen=True)
class Approved:
    """The order is within every limit."""

    order: OrderRequest


@dataclass(frozen=True)
class Rejection:
    """Why an order must not be sent: the limit (one of ``LIMIT_NAMES``) and a readable reason."""

    market_ticker: str
    limit: str
    reason: str


def _fraction_of(cents: int, fraction: Decimal) -> int:
    return int((Decimal(cents) * fraction).to_integral_value(rounding=ROUND_FLOOR))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _invalid(order: OrderRequest) -> str | None:
    for name in ("market_ticker", "event_ticker", "category"):
        value = getattr(order, name)
        if not isinstance(value, str) or not value:
            return f"{name}: expected a non-empty string, got {value!r}"
    if order.side not in ("yes", "no"):
        return f"side: expected 'yes' or 'no', got {order.side!r}"
    if not _is_int(order.price_cents) or not 1 <= order.price_cents <= 99:
        return f"price_cents: expected an int in 1..99, got {order.price_cents!r}"
    if not _is_int(order.count) or order.count <= 0:
        return f"count: expected a positive int, got {order.count!r}"
    adv = order.avg_daily_volume
    if adv is not None and (not _is_int(adv) or adv < 0):
        return f"avg_daily_volume: expected an int >= 0 or None, got {adv!r}"
    return None


def _invalid_state(state: RiskState) -> str | None:
    for name in ("equity_cents", "start_of_day_equity_cents"):
        if not _is_int(getattr(state, name)):
            return f"{name}: expected int cents, got {getattr(state, name)!r}"
    for holding in state.holdings:
        if not _is_int(holding.exposure_cents) or holding.exposure_cents < 0:
            return f"exposure_cents of {holding.market_ticker}: got {holding.exposure_cents!r}"
        if not _is_int(holding.contracts) or holding.contracts < 0:
            return f"contracts of {holding.market_ticker}: got {holding.contracts!r}"
    return None


@dataclass(frozen=True)
class _Headroom:
    # remaining room per limit for this order's market, in cents (or contracts for volume)
    rejection: Rejection | None
    cents: int
    cents_limit: str
    contracts: int


def _headroom(order: OrderRequest, state: RiskState, limits: RiskLimits) -> _Headroom:
    raw_ticker: object = order.market_ticker
    ticker = raw_ticker if isinstance(raw_ticker, str) else repr(raw_ticker)

    def reject(limit: str, reason: str) -> _Headroom:
        return _Headroom(Rejection(ticker, limit, reason), 0, limit, 0)

    problem = _invalid(order) or _invalid_state(state)
    if problem is not None:
        return reject("invalid", f"invalid order: {problem}")
    if state.halts:
        return reject("halt", f"trading halted: {'; '.join(state.halts)}")
    start = state.start_of_day_equity_cents
    if start <= 0:
        return reject("daily_loss", f"start-of-day equity is {start}c; nothing to risk")
    loss = start - state.equity_cents
    loss_limit = _fraction_of(start, limits.daily_loss_fraction)
    if loss >= loss_limit:
        return reject(
            "daily_loss",
            f"daily loss {loss}c >= {limits.daily_loss_fraction} x start-of-day equity {start}c "
            f"= {loss_limit}c",
        )
    capital = _fraction_of(max(state.equity_cents, 0), limits.capital_allocation)
    total = sum(h.exposure_cents for h in state.holdings)
    category = sum(h.exposure_cents for h in state.holdings if h.category == order.category)
    event = sum(h.exposure_cents for h in state.holdings if h.event_ticker == order.event_ticker)
    held = sum(h.contracts for h in state.holdings if h.market_ticker == order.market_ticker)
    rooms = [
        ("capital", capital - total, capital, total,
         f"{limits.capital_allocation} x equity {state.equity_cents}c"),
        ("category", _fraction_of(capital, limits.max_category_fraction) - category,
         _fraction_of(capital, limits.max_category_fraction), category,
         f"{limits.max_category_fraction} x desk capital {capital}c for {order.category!r}"),
        ("contract", _fraction_of(capital, limits.max_contract_fraction) - event,
         _fraction_of(capital, limits.max_contract_fraction), event,
         f"{limits.max_contract_fraction} x desk capital {capital}c for event "
         f"{order.event_ticker!r}"),
    ]
    name, room, limit_cents, used, what = min(rooms, key=lambda r: r[1])
    if order.avg_daily_volume is None:
        return reject("volume", "average daily volume unknown; refusing to size against it")
    volume_cap = _fraction_of(order.avg_daily_volume, limits.max_volume_multiple)
    if order.cost_cents > room:
        return reject(
            name, f"exposure {used}c + order {order.cost_cents}c > {limit_cents}c ({what})"
        )
    if held + order.count > volume_cap:
        return reject(
            "volume",
            f"contracts {held} + order {order.count} > {limits.max_volume_multiple} x average "
            f"daily volume {order.avg_daily_volume} = {volume_cap}",
        )
    return _Headroom(None, room, name, volume_cap - held)


def check_order(order: OrderRequest, state: RiskState, limits: RiskLimits) -> Approved | Rejection:
    """Return Approved if `order` keeps every limit given `state`, else the first breach."""
    headroom = _headroom(order, state, limits)
    return headroom.rejection if headroom.rejection is not None else Approved(order)


def with_order(state: RiskState, order: OrderRequest) -> RiskState:
    """Return `state` with `order` counted in flight (its whole cost and count), the way the gate
    counts an intent: so the next market of a cycle is sized against what is left."""
    holdings = list(state.holdings)
    for n, held in enumerate(holdings):
        if held.market_ticker == order.market_ticker:
            holdings[n] = replace(held, exposure_cents=held.exposure_cents + order.cost_cents,
                                  contracts=held.contracts + order.count)
            break
    else:
        holdings.append(Holding(order.market_ticker, order.event_ticker, order.category,
                                order.cost_cents, order.count))
    return replace(state, holdings=tuple(holdings))


def max_order_contracts(order: OrderRequest, state: RiskState, limits: RiskLimits) -> int:
    """Return the largest count of `order` (its own count ignored) the gate would approve, or 0."""
    probe = OrderRequest(
        order.market_ticker, order.event_ticker, order.category, order.side, order.price_cents,
        1, order.avg_daily_volume,
    )
    headroom = _headroom(probe, state, limits)
    if headroom.rejection is not None:
        return 0
    return max(0, min(headroom.cents // order.price_cents, headroom.contracts))
