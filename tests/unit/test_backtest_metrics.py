"""Backtest metrics on hand-computed fills: P&L by day, Sharpe, drawdown, buckets, fill rate."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest

from models.backtest import FillRecord, OrderRecord
from models.backtest_metrics import compute_metrics, edge_bucket, equity_curve


def ms(day: int, hour: int = 14) -> int:
    return int(datetime(2025, 3, day, hour, tzinfo=UTC).timestamp() * 1000)


def fill(day: int, *, side: str = "yes", price: int = 40, count: int = 10, fee: int = 2,
         won: bool = True, edge: int = 6, series: str = "KXHIGHNY",
         ticker: str = "T") -> FillRecord:
    return FillRecord(ms(day - 1), f"{ticker}{day}", f"E{day}", series, side, price, count, fee,
                      True, edge, ms(day), 100 * count if won else 0)


def test_fill_pnl_is_payoff_minus_cost_minus_fee() -> None:
    assert fill(3).pnl_cents == 1000 - 400 - 2
    assert fill(3, won=False).pnl_cents == -402


def test_compute_metrics_hand_example() -> None:
    fills = [fill(3), fill(3, won=False, edge=12, ticker="U"),
             fill(5, price=20, count=5, fee=1, edge=25, series="KXHIGHMIA")]
    orders = [OrderRecord(0, "o1", "T3", "KXHIGHNY", "yes", 40, 10, True, 6, 10),
              OrderRecord(0, "o2", "T4", "KXHIGHNY", "yes", 40, 30, False, 6, 6),
              OrderRecord(0, "o3", "T5", "KXHIGHNY", "no", 60, 10, False, 6, 0)]
    m = compute_metrics(fills, orders, starting_cash_cents=10_000)
    # day 3: +598 and -402; day 4: nothing; day 5: 500 - 100 - 1
    assert m.daily_pnl_cents == ((date(2025, 3, 3), 196), (date(2025, 3, 4), 0),
                                 (date(2025, 3, 5), 399))
    assert m.total_pnl_cents == 595
    mean, sd = 595 / 3, math.sqrt(((196 - 595 / 3) ** 2 + (595 / 3) ** 2
                                   + (399 - 595 / 3) ** 2) / 2)
    assert m.sharpe_daily_annualised == pytest.approx(mean / sd * math.sqrt(365))
    assert m.win_rate == pytest.approx(2 / 3)
    assert m.avg_edge_cents == pytest.approx((6 * 10 + 12 * 10 + 25 * 5) / 25)
    assert m.max_drawdown_cents == 0
    assert (m.limit_orders, m.taker_orders) == (2, 1)
    assert m.limit_fill_rate == pytest.approx(6 / 40)
    assert (m.contracts, m.turnover_cents, m.fees_cents) == (25, 900, 5)
    assert m.pnl_by_edge_bucket == (("5-9c", 10, 598), ("10-19c", 10, -402), ("20c+", 5, 399))
    assert m.pnl_by_series == (("KXHIGHMIA", 5, 399), ("KXHIGHNY", 20, 196))


def test_equity_curve_drawdown_from_running_peak() -> None:
    daily = [(date(2025, 3, d), v) for d, v in ((1, 500), (2, -300), (3, -400), (4, 900))]
    curve = equity_curve(daily, 1_000)
    assert [(e, dd) for _, e, dd in curve] == [(1500, 0), (1200, 300), (800, 700), (1700, 0)]


def test_compute_metrics_no_fills_ratios_undefined() -> None:
    m = compute_metrics([], [], starting_cash_cents=10_000)
    assert (m.total_pnl_cents, m.sharpe_daily_annualised, m.win_rate, m.avg_edge_cents,
            m.limit_fill_rate, m.max_drawdown_cents) == (0, None, None, None, None, 0)


def test_compute_metrics_window_excluding_pnl_raises() -> None:
    with pytest.raises(ValueError, match="settles outside"):
        compute_metrics([fill(9)], [], starting_cash_cents=1, first_day=date(2025, 3, 1),
                        last_day=date(2025, 3, 5))


@pytest.mark.parametrize(("edge", "label"), [(-4, "<3c"), (2, "<3c"), (3, "3-4c"), (5, "5-9c"),
                                              (19, "10-19c"), (20, "20c+")])
def test_edge_bucket_boundaries(edge: int, label: str) -> None:
    assert edge_bucket(edge) == label
