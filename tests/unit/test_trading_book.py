"""The trading cycle's top of book: whole-cent prices only, our own orders taken out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kalshi.wire import BookLevel, Orderbook
from models.money import SubpennyError
from models.orders import RestingOrder
from tasks.trading import _top_without_own


def _book(yes: list[tuple[str, int]], no: list[tuple[str, int]]) -> Orderbook:
    return Orderbook(yes=tuple(BookLevel(price=Decimal(p), count=Decimal(c)) for p, c in yes),
                     no=tuple(BookLevel(price=Decimal(p), count=Decimal(c)) for p, c in no))


def test_top_without_own_removes_our_resting_size_from_the_best_level():
    book = _book([("0.40", 5), ("0.42", 3)], [("0.55", 4)])
    own = [RestingOrder("o1", "c1", "T", "bid", 42, 3, 0)]

    assert _top_without_own(book, []) == (42, 45)
    assert _top_without_own(book, own) == (40, 45)


def test_top_without_own_subpenny_level_raises_naming_it():
    book = _book([("0.405", 5)], [])

    with pytest.raises(SubpennyError, match="book yes price"):
        _top_without_own(book, [])
