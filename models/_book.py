"""Private mutable records of the matching engine: orders, price levels, markets, accounts, groups.

Invariant: a market's ``qty[leg][price]`` equals the summed ``remaining`` of the resting orders in
``levels[leg][price]``, and ``best[leg]`` is the highest price with a non-empty level (0: none).
Leg 0 holds YES bids at the YES price; leg 1 holds NO bids at the NO price (an ask at p is a NO bid
at 100 - p). A level never used is the shared, always-empty ``EMPTY_LEVEL`` until its first order
arrives (``LevelBook.append`` is the only place that adds to a level), so listing a market costs
two short lists rather than 202 deques. Only ``models.matching`` uses these; snapshots leave it as
frozen dataclasses.
"""

from __future__ import annotations

from collections import deque
from fractions import Fraction
from functools import lru_cache
from typing import Any

from models.fees import MAKER_RATE, TAKER_RATE, FeeAccumulator, FeeSchedule
from models.money import Cents

__all__ = ["YES", "NO", "EMPTY_LEVEL", "LevelBook", "Ord", "OrderFees", "Pos", "Acct", "Group",
           "fee_terms"]

YES = 0
NO = 1
_LEVELS = 101
# The stand-in for every price level that never held an order: shared and never appended to.
EMPTY_LEVEL: deque[Ord] = deque()


@lru_cache(maxsize=256)
def fee_terms(schedule: FeeSchedule) -> tuple[int, int, int, int]:
    """Return (taker_num, taker_den, maker_num, maker_den): fee centicents = num*C*x*(100-x)/den.

    Cached per (frozen, hashable) schedule: every market of a series shares one computation.
    """
    mult = Fraction(str(schedule.fee_multiplier))
    taker = TAKER_RATE * mult
    maker = MAKER_RATE * mult if schedule.charges_makers else Fraction(0)
    return taker.numerator, taker.denominator, maker.numerator, maker.denominator


class OrderFees(FeeAccumulator):
    """FeeAccumulator with the per-fill fee in integers (no Fraction): same results, faster.

    With num/den = rate * fee_multiplier, one fill's fee in hundredths of a cent is
    ceil(num * C * x * (100 - x) / den), which is exactly ``ceil(exact_fee_cents * 100)`` of the
    parent class; tests/unit/test_matching_fees.py checks the two agree.
    """

    def __init__(self, schedule: FeeSchedule, terms: tuple[int, int, int, int]) -> None:
        self.schedule = schedule
        self.exact_centicents = 0
        self.charged_cents = 0
        self._terms = terms

    def charge(self, contracts: int, price_cents: int, *, is_taker: bool) -> Cents:
        """Record one fill and return the cents to charge for it now (never negative)."""
        tn, td, mn, md = self._terms
        num, den = (tn, td) if is_taker else (mn, md)
        if num:
            self.exact_centicents += -(-(num * contracts * price_cents * (100 - price_cents))
                                       // den)
        target = -(-self.exact_centicents // 100)
        due = target - self.charged_cents
        self.charged_cents = target
        return Cents(due)


class Ord:
    # One order's mutable state; `reserved` is what its account holds back for it right now.
    __slots__ = (
        "order_id", "account_id", "client_order_id", "ticker", "side", "leg", "price_cents",
        "leg_price", "initial_count", "fill_count", "remaining", "status", "tif", "stp",
        "post_only", "reduce_only", "created_ts_ms", "last_update_ts_ms", "expiration_ts_ms",
        "taker_cost", "maker_cost", "taker_fees", "maker_fees", "group_id", "reason", "acc",
        "reserved", "seq",
    )

    def __init__(self, order_id: str, account_id: str, client_order_id: str, ticker: str,
                 side: str, price_cents: int, count: int, tif: str, stp: str, post_only: bool,
                 reduce_only: bool, now_ms: int, expiration_ts_ms: int | None,
                 group_id: str | None, fees: OrderFees, seq: int) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.client_order_id = client_order_id
        self.ticker = ticker
        self.side = side
        self.leg = YES if side == "bid" else NO
        self.price_cents = price_cents
        self.leg_price = price_cents if side == "bid" else 100 - price_cents
        self.initial_count = count
        self.fill_count = 0
        self.remaining = count
        self.status = "resting"
        self.tif = tif
        self.stp = stp
        self.post_only = post_only
        self.reduce_only = reduce_only
        self.created_ts_ms = now_ms
        self.last_update_ts_ms = now_ms
        self.expiration_ts_ms = expiration_ts_ms
        self.taker_cost = 0
        self.maker_cost = 0
        self.taker_fees = 0
        self.maker_fees = 0
        self.group_id = group_id
        self.reason: str | None = None
        self.acc = fees
        self.reserved = 0
        self.seq = seq

    def set_price(self, price_cents: int) -> None:
        self.price_cents = price_cents
        self.leg_price = price_cents if self.side == "bid" else 100 - price_cents


class LevelBook:
    # Both legs of one market: a FIFO deque per price level plus the level's total quantity.
    __slots__ = ("levels", "qty", "best")

    def __init__(self) -> None:
        self.levels: tuple[list[deque[Ord]], list[deque[Ord]]] = (
            [EMPTY_LEVEL] * _LEVELS, [EMPTY_LEVEL] * _LEVELS)
        self.qty: tuple[list[int], list[int]] = ([0] * _LEVELS, [0] * _LEVELS)
        self.best = [0, 0]

    def append(self, o: Ord) -> None:
        leg, price = o.leg, o.leg_price
        levels = self.levels[leg]
        level = levels[price]
        if level is EMPTY_LEVEL:
            levels[price] = deque((o,))
        else:
            level.append(o)
        self.qty[leg][price] += o.remaining
        if price > self.best[leg]:
            self.best[leg] = price

    def remove(self, o: Ord) -> None:
        leg, price = o.leg, o.leg_price
        level = self.levels[leg][price]
        if level and level[0] is o:
            level.popleft()
        else:
            level.remove(o)
        self.qty[leg][price] -= o.remaining
        if not level and price == self.best[leg]:
            self.fix_best(leg)

    def fix_best(self, leg: int) -> None:
        levels = self.levels[leg]
        price = self.best[leg]
        while price > 0 and not levels[price]:
            price -= 1
        self.best[leg] = price

    def depth(self, leg: int, depth: int) -> tuple[tuple[int, int], ...]:
        qty = self.qty[leg]
        out: list[tuple[int, int]] = []
        for price in range(self.best[leg], 0, -1):
            if qty[price] > 0:
                out.append((price, qty[price]))
                if depth and len(out) >= depth:
                    break
        return tuple(out)


class Pos:
    # One account's netted position in one market: +YES / -NO, with its cost basis.
    __slots__ = ("position", "exposure", "realized", "fees_paid", "total_traded")

    def __init__(self) -> None:
        self.position = 0
        self.exposure = 0
        self.realized = 0
        self.fees_paid = 0
        self.total_traded = 0


class Acct:
    # Cash available (balance) and held back for resting orders (reserved); both never negative.
    __slots__ = ("account_id", "balance", "reserved", "resting", "client_ids", "client_hist",
                 "order_ids", "fills", "positions", "settlements", "groups")

    def __init__(self, account_id: str, balance: int) -> None:
        self.account_id = account_id
        self.balance = balance
        self.reserved = 0
        self.resting: dict[str, Ord] = {}
        self.client_ids: dict[str, Ord] = {}  # client_order_id -> resting order
        self.client_hist: dict[str, Ord] = {}  # client_order_id -> newest order, any status
        self.order_ids: list[str] = []
        self.fills: list[Any] = []
        self.positions: dict[str, Pos] = {}
        self.settlements: list[Any] = []
        self.groups: dict[str, Group] = {}


class Group:
    # An order group: contracts filled in a rolling window, and the resting orders attached.
    __slots__ = ("group_id", "account_id", "limit", "triggered", "window", "window_sum",
                 "orders")

    def __init__(self, group_id: str, account_id: str, limit: int) -> None:
        self.group_id = group_id
        self.account_id = account_id
        self.limit = limit
        self.triggered = False
        self.window: deque[tuple[int, int]] = deque()
        self.window_sum = 0
        self.orders: dict[str, Ord] = {}

    def filled_in_window(self, now_ms: int, window_ms: int) -> int:
        window = self.window
        cutoff = now_ms - window_ms
        while window and window[0][0] <= cutoff:
            self.window_sum -= window.popleft()[1]
        return self.window_sum

    def add(self, now_ms: int, count: int) -> None:
        self.window.append((now_ms, count))
        self.window_sum += count
