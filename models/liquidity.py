"""Liquidity agents for the paper exchange: market maker, noise taker, replay and mirror.

Invariant: agents only *propose* ``OrderRequest`` values that obey the engine's rules (price within
the market's range, whole positive counts, a time in force, GTC quotes carrying an
``expiration_ts_ms`` so a dead driver's quotes expire); the engine matches, funds and charges them
like anyone else's. Nothing here mutates a book or a balance. Pure: time and randomness are
passed in.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from models.matching import BookView, Order, OrderRequest

__all__ = [
    "MakerConfig",
    "TakerConfig",
    "OrderDiff",
    "RecordedTrade",
    "ReplayIssue",
    "ReplayClock",
    "MirrorBook",
    "MirrorError",
    "maker_orders",
    "taker_orders",
    "diff_orders",
    "order_trades",
    "due_trades",
    "replay_order",
    "mirror_book",
    "mirror_orders",
]

GTC = "good_till_canceled"
IOC = "immediate_or_cancel"


@dataclass(frozen=True)
class MakerConfig:
    """How a market maker quotes: spread, depth, size, noise, inventory skew and quote lifetime."""

    half_spread_cents: int = 2
    levels: int = 2
    level_step_cents: int = 2
    size: int = 10
    noise_sd_cents: float = 1.5
    skew_cents_per_10: int = 1  # quotes move 1 cent against each 10 contracts of inventory
    max_inventory: int = 200  # stop adding to a position beyond this many contracts
    ttl_ms: int = 120_000  # every quote expires at the exchange after this long
    min_price_cents: int = 1
    max_price_cents: int = 99

    def __post_init__(self) -> None:
        for name in ("half_spread_cents", "levels", "level_step_cents", "size", "ttl_ms",
                     "max_inventory"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive int (got {value!r})")
        if not 1 <= self.min_price_cents < self.max_price_cents <= 99:
            raise ValueError(f"min_price_cents/max_price_cents: invalid range "
                             f"{self.min_price_cents}..{self.max_price_cents}")
        if self.noise_sd_cents < 0:
            raise ValueError(f"noise_sd_cents: must be >= 0 (got {self.noise_sd_cents!r})")


@dataclass(frozen=True)
class TakerConfig:
    """How the noise taker trades: chance per market per step and the largest order."""

    prob_per_step: float = 0.2
    max_size: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob_per_step <= 1.0:
            raise ValueError(f"prob_per_step: must be in [0, 1] (got {self.prob_per_step!r})")
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int) or \
                self.max_size < 1:
            raise ValueError(f"max_size: must be a positive int (got {self.max_size!r})")


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def maker_orders(account_id: str, ticker: str, *, fair_cents: int, inventory: int,
                 now_ms: int, rng: random.Random,
                 config: MakerConfig = MakerConfig()) -> list[OrderRequest]:
    """Return the maker's desired two-sided ladder around a noisy, inventory-skewed fair value.

    ``fair_cents`` is the fair YES price (0..100); ``inventory`` the maker's net position (+YES).
    The best bid is always below the best ask, so the maker never crosses itself.
    """
    if not 0 <= fair_cents <= 100:
        raise ValueError(f"fair_cents: must be within 0..100 (got {fair_cents!r})")
    noise = round(rng.gauss(0.0, config.noise_sd_cents)) if config.noise_sd_cents else 0
    skew = -round(inventory * config.skew_cents_per_10 / 10)
    centre = fair_cents + noise + skew
    lo, hi = config.min_price_cents, config.max_price_cents
    best_bid = _clamp(centre - config.half_spread_cents, lo, hi - 1)
    best_ask = _clamp(centre + config.half_spread_cents, best_bid + 1, hi)
    expires = now_ms + config.ttl_ms
    out: list[OrderRequest] = []
    for level in range(config.levels):
        step = level * config.level_step_cents
        if inventory < config.max_inventory and best_bid - step >= lo:
            out.append(OrderRequest(account_id, ticker, "bid", best_bid - step, config.size, GTC,
                                    expiration_ts_ms=expires))
        if inventory > -config.max_inventory and best_ask + step <= hi:
            out.append(OrderRequest(account_id, ticker, "ask", best_ask + step, config.size, GTC,
                                    expiration_ts_ms=expires))
    return out


def taker_orders(account_id: str, book: BookView, *, rng: random.Random,
                 config: TakerConfig = TakerConfig()) -> list[OrderRequest]:
    """Return at most one immediate-or-cancel order lifting the best ask or hitting the best bid."""
    if rng.random() >= config.prob_per_step:
        return []
    count = rng.randint(1, config.max_size)
    buy_yes = rng.random() < 0.5
    if buy_yes and book.no:  # best YES ask = 100 - best NO bid
        return [OrderRequest(account_id, book.ticker, "bid", 100 - book.no[0][0], count, IOC)]
    if not buy_yes and book.yes:
        return [OrderRequest(account_id, book.ticker, "ask", book.yes[0][0], count, IOC)]
    return []


@dataclass(frozen=True)
class OrderDiff:
    """What to do to move resting orders to the desired set: cancel first, then place."""

    cancel: tuple[str, ...]
    place: tuple[OrderRequest, ...]


def diff_orders(desired: Iterable[OrderRequest], resting: Iterable[Order], *, now_ms: int,
                refresh_before_ms: int = 0) -> OrderDiff:
    """Keep resting orders that match a desired (ticker, side, price, count); cancel the rest.

    A resting order expiring within ``refresh_before_ms`` is replaced rather than kept.
    """
    wanted: dict[tuple[str, str, int], OrderRequest] = {}
    for req in desired:
        key = (req.ticker, req.side, req.price_cents)
        if key in wanted:
            raise ValueError(f"desired: two orders at {key}")
        wanted[key] = req
    cancel: list[str] = []
    for order in resting:
        if order.status != "resting":
            continue
        key = (order.ticker, order.side, order.price_cents)
        match = wanted.get(key)
        expiry = order.expiration_ts_ms
        fresh = expiry is None or expiry > now_ms + refresh_before_ms
        if match is not None and order.remaining_count == match.count and fresh:
            del wanted[key]
        else:
            cancel.append(order.order_id)
    return OrderDiff(tuple(cancel), tuple(wanted.values()))


# --- replay -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordedTrade:
    """One public trade as recorded (legacy integer cents): who took, at what YES price, when."""

    trade_id: str
    ticker: str
    count: int
    ts_ms: int
    yes_price_cents: int
    taker_side: Literal["yes", "no"]

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"trade {self.trade_id}: count must be a positive int "
                             f"(got {self.count!r})")
        if not 1 <= self.yes_price_cents <= 99:
            raise ValueError(f"trade {self.trade_id}: yes_price out of 1..99 "
                             f"(got {self.yes_price_cents!r})")
        if self.taker_side not in ("yes", "no"):
            raise ValueError(f"trade {self.trade_id}: taker_side must be yes|no "
                             f"(got {self.taker_side!r})")


@dataclass(frozen=True)
class ReplayIssue:
    """Something off in a recorded trade stream, reported instead of silently fixed."""

    kind: Literal["unsorted", "duplicate", "conflicting_duplicate", "gap", "invalid"]
    trade_id: str
    detail: str


def order_trades(trades: Sequence[RecordedTrade], *,
                 gap_ms: int = 6 * 3_600_000) -> tuple[list[RecordedTrade], list[ReplayIssue]]:
    """Return the trades in time order (stable) without repeated ids, and every issue found.

    Reports each trade that arrived earlier in time than its predecessor (``unsorted``), each
    repeated ``trade_id`` (``duplicate`` if identical, ``conflicting_duplicate`` if not; the first
    copy is kept), and each silence longer than ``gap_ms`` between consecutive trades (``gap``).
    """
    issues: list[ReplayIssue] = []
    seen: dict[str, RecordedTrade] = {}
    unique: list[RecordedTrade] = []
    previous: RecordedTrade | None = None
    for trade in trades:
        if previous is not None and trade.ts_ms < previous.ts_ms:
            issues.append(ReplayIssue("unsorted", trade.trade_id,
                                      f"ts_ms {trade.ts_ms} < previous {previous.ts_ms} "
                                      f"({previous.trade_id})"))
        previous = trade
        first = seen.get(trade.trade_id)
        if first is not None:
            kind: Literal["duplicate", "conflicting_duplicate"] = (
                "duplicate" if first == trade else "conflicting_duplicate")
            issues.append(ReplayIssue(kind, trade.trade_id,
                                      "repeated trade_id; first copy kept" if first == trade else
                                      f"repeated trade_id differs: kept {first}, got {trade}"))
            continue
        seen[trade.trade_id] = trade
        unique.append(trade)
    ordered = sorted(unique, key=lambda t: t.ts_ms)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.ts_ms - before.ts_ms > gap_ms:
            issues.append(ReplayIssue("gap", after.trade_id,
                                      f"{(after.ts_ms - before.ts_ms) // 1000} s without trades "
                                      f"after {before.trade_id}"))
    return ordered, issues


@dataclass(frozen=True)
class ReplayClock:
    """Maps exchange time to recorded time: recorded = rec_start + (now - sim_start) * speed."""

    recorded_start_ms: int
    sim_start_ms: int
    speed: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.speed, bool) or not isinstance(self.speed, int) or self.speed < 1:
            raise ValueError(f"speed: must be a positive int (got {self.speed!r})")

    def recorded_ms(self, sim_now_ms: int) -> int:
        """Return the recorded instant that the exchange instant ``sim_now_ms`` replays."""
        return self.recorded_start_ms + (sim_now_ms - self.sim_start_ms) * self.speed

    def sim_ms(self, recorded_ms: int) -> int:
        """Return the exchange instant at which recorded instant ``recorded_ms`` is replayed."""
        return self.sim_start_ms + -(-(recorded_ms - self.recorded_start_ms) // self.speed)


def due_trades(ordered: Sequence[RecordedTrade], start: int,
               recorded_until_ms: int) -> tuple[list[RecordedTrade], int]:
    """Return the trades from index ``start`` up to ``recorded_until_ms`` and the next index."""
    end = start
    while end < len(ordered) and ordered[end].ts_ms <= recorded_until_ms:
        end += 1
    return list(ordered[start:end]), end


def replay_order(account_id: str, trade: RecordedTrade, ticker: str | None = None) -> OrderRequest:
    """Return the counter-order replaying ``trade``: the recorded taker, limit at its price, IOC.

    A YES taker bought YES at ``yes_price`` (bid); a NO taker sold YES there (ask). Against the
    paper book it fills only resting orders at that price or better, like the real taker would.
    """
    side = "bid" if trade.taker_side == "yes" else "ask"
    return OrderRequest(account_id, ticker or trade.ticker, side, trade.yes_price_cents,
                        trade.count, IOC)


# --- mirror -----------------------------------------------------------------------------------

class MirrorError(ValueError):
    """A mirrored order book that cannot be copied as is; names the ticker and the field."""


@dataclass(frozen=True)
class MirrorBook:
    """A public order book in whole cents and whole contracts, best bid first on each leg."""

    ticker: str
    yes: tuple[tuple[int, int], ...]
    no: tuple[tuple[int, int], ...]
    fractional_dropped: tuple[str, ...] = field(default=())  # "yes@42:0.50" per truncated level


def _whole_levels(ticker: str, levels: Iterable[tuple[Decimal, Decimal]], leg: str,
                  dropped: list[str]) -> tuple[tuple[int, int], ...]:
    out: dict[int, int] = {}
    for price_dollars, count in levels:
        cents = price_dollars * 100
        if cents != cents.to_integral_value() or not 1 <= cents <= 99:
            raise MirrorError(f"{ticker}: {leg} price {price_dollars} is not a whole cent "
                              f"in 0.01..0.99")
        if count <= 0:
            raise MirrorError(f"{ticker}: {leg} count must be positive (got {count})")
        whole = int(count)  # Decimal -> int truncates toward zero
        if whole != count:
            dropped.append(f"{leg}@{int(cents)}:{count}->{whole}")
        if whole:
            out[int(cents)] = out.get(int(cents), 0) + whole
    return tuple(sorted(out.items(), reverse=True))


def mirror_book(ticker: str, yes: Iterable[tuple[Decimal, Decimal]],
                no: Iterable[tuple[Decimal, Decimal]]) -> MirrorBook:
    """Turn a public book's bids (dollar prices, contract counts) into whole cents and contracts.

    Fractional counts are truncated to whole contracts (the engine trades whole contracts) and
    listed in ``fractional_dropped``; sub-penny prices and a crossed or locked book (best YES bid
    + best NO bid >= 100) are refused with ``MirrorError``.
    """
    dropped: list[str] = []
    yes_levels = _whole_levels(ticker, yes, "yes", dropped)
    no_levels = _whole_levels(ticker, no, "no", dropped)
    if yes_levels and no_levels and yes_levels[0][0] + no_levels[0][0] >= 100:
        raise MirrorError(f"{ticker}: crossed book, best yes bid {yes_levels[0][0]} + best no "
                          f"bid {no_levels[0][0]} >= 100")
    return MirrorBook(ticker, yes_levels, no_levels, tuple(dropped))


def mirror_orders(account_id: str, book: MirrorBook, *, now_ms: int, ttl_ms: int,
                  max_level_count: int | None = None,
                  ticker: str | None = None) -> list[OrderRequest]:
    """Return resting orders copying ``book``: YES bids as bids, NO bids at q as asks at 100-q."""
    target = ticker or book.ticker
    expires = now_ms + ttl_ms
    out: list[OrderRequest] = []
    for price, count in book.yes:
        size = count if max_level_count is None else min(count, max_level_count)
        out.append(OrderRequest(account_id, target, "bid", price, size, GTC,
                                expiration_ts_ms=expires))
    for price, count in book.no:
        size = count if max_level_count is None else min(count, max_level_count)
        out.append(OrderRequest(account_id, target, "ask", 100 - price, size, GTC,
                                expiration_ts_ms=expires))
    return out
