"""Shared builders for the matching-engine tests: a two-market engine and a state fingerprint."""

from __future__ import annotations

from models.fees import FeeSchedule
from models.matching import Engine, MarketSpec, OrderRequest

T = "KXHIGHNY-25JAN01-B40"
T2 = "KXHIGHNY-25JAN01-B42"
OPEN_MS = 1_000
CLOSE_MS = 1_000_000


def engine(accounts: dict[str, int] | None = None, fee: FeeSchedule | None = None) -> Engine:
    e = Engine()
    for acct, cents in (accounts or {"a": 100_000, "b": 100_000, "c": 100_000}).items():
        e.add_account(acct, cents)
    for ticker in (T, T2):
        e.add_market(MarketSpec(ticker, "KXHIGHNY-25JAN01", "KXHIGHNY", OPEN_MS, CLOSE_MS,
                                fee=fee or FeeSchedule()), OPEN_MS)
    return e


def req(account: str, side: str, price: int, count: int, tif: str = "good_till_canceled",
        ticker: str = T, **kw: object) -> OrderRequest:
    return OrderRequest(account, ticker, side, price, count, tif, **kw)  # type: ignore[arg-type]


def fingerprint(e: Engine, accounts: tuple[str, ...] = ("a", "b", "c")) -> tuple[object, ...]:
    """Everything observable through the public queries."""
    per_account = tuple(
        (e.balance_cents(a), e.reserved_cents(a), tuple(e.orders(a)), tuple(e.fills(a)),
         tuple(e.positions(a)), tuple(e.settlements(a)), tuple(map(str, e.order_groups(a))))
        for a in accounts)
    return (per_account, tuple(e.trades()), tuple(e.markets()), e.book(T), e.book(T2))
