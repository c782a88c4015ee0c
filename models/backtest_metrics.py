"""Backtest metrics from fills and orders: P&L, daily Sharpe, drawdown, fill rate, buckets.

Invariants: every money figure is integer cents and is a sum of per-fill P&L (payoff - cost -
fee), so the total equals the engine's cash change; P&L is booked on the UTC day its market
settles; days without settlements count as 0 (no gaps in the daily series). Ratios (Sharpe, win
rate, fill rate, average edge) are floats and None when undefined (no data), never 0 by default.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from models.backtest import FillRecord, OrderRecord

__all__ = ["EDGE_BUCKETS", "Metrics", "compute_metrics", "edge_bucket", "equity_curve"]

# per-contract decision edge in cents: [lo, hi) labels
EDGE_BUCKETS: tuple[tuple[int, int, str], ...] = (
    (-(10**9), 3, "<3c"), (3, 5, "3-4c"), (5, 10, "5-9c"), (10, 20, "10-19c"), (20, 10**9, "20c+"),
)
_SHARPE_DAYS_PER_YEAR = 365  # weather markets settle every calendar day


@dataclass(frozen=True)
class Metrics:
    """The figures of one backtest (or one fold); money in cents."""

    total_pnl_cents: int
    daily_pnl_cents: tuple[tuple[date, int], ...]
    sharpe_daily_annualised: float | None  # mean/sd of daily P&L x sqrt(365)
    win_rate: float | None  # settled markets with P&L > 0 / markets traded
    markets_traded: int
    avg_edge_cents: float | None  # decision edge per filled contract
    max_drawdown_cents: int  # largest fall of the equity curve from a running peak
    limit_orders: int
    limit_fill_rate: float | None  # filled / placed contracts of resting orders
    taker_orders: int
    contracts: int
    turnover_cents: int  # sum of price x contracts paid
    fees_cents: int
    pnl_by_edge_bucket: tuple[tuple[str, int, int], ...]  # (label, contracts, P&L)
    pnl_by_series: tuple[tuple[str, int, int], ...]  # (series, contracts, P&L)


def edge_bucket(edge_cents: int) -> str:
    """Return the label of the edge bucket holding ``edge_cents``."""
    for lo, hi, label in EDGE_BUCKETS:
        if lo <= edge_cents < hi:
            return label
    raise ValueError(f"edge_cents: {edge_cents!r} outside every bucket")


def _day(ts_ms: int) -> date:
    return datetime.fromtimestamp(ts_ms // 1000, tz=UTC).date()


def equity_curve(daily: Sequence[tuple[date, int]],
                 starting_cash_cents: int) -> list[tuple[date, int, int]]:
    """Return (day, equity, drawdown) per day: equity after the day, drawdown from the peak."""
    out: list[tuple[date, int, int]] = []
    equity = peak = starting_cash_cents
    for day, pnl in daily:
        equity += pnl
        peak = max(peak, equity)
        out.append((day, equity, peak - equity))
    return out


def compute_metrics(fills: Iterable[FillRecord], orders: Iterable[OrderRecord], *,
                    starting_cash_cents: int, first_day: date | None = None,
                    last_day: date | None = None) -> Metrics:
    """Compute the metrics of a set of fills and orders (fills of orders not given are fine)."""
    fills = list(fills)
    orders = list(orders)
    by_day: dict[date, int] = defaultdict(int)
    by_market: dict[str, int] = defaultdict(int)
    buckets: dict[str, list[int]] = {label: [0, 0] for _, _, label in EDGE_BUCKETS}
    series: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    total = contracts = turnover = fees = edge_sum = 0
    for f in fills:
        pnl = f.pnl_cents
        total += pnl
        contracts += f.count
        turnover += f.price_cents * f.count
        fees += f.fee_cents
        edge_sum += f.edge_cents * f.count
        by_day[_day(f.settle_ts_ms)] += pnl
        by_market[f.ticker] += pnl
        b = buckets[edge_bucket(f.edge_cents)]
        b[0] += f.count
        b[1] += pnl
        s = series[f.series_ticker]
        s[0] += f.count
        s[1] += pnl
    days = sorted(by_day)
    start = first_day or (days[0] if days else None)
    end = last_day or (days[-1] if days else None)
    daily: list[tuple[date, int]] = []
    if start is not None and end is not None:
        day = start
        while day <= end:
            daily.append((day, by_day.get(day, 0)))
            day += timedelta(days=1)
    outside = sum(v for d, v in by_day.items() if start is not None and end is not None
                  and not start <= d <= end)
    if outside:
        raise ValueError(f"first_day/last_day: {outside}c of P&L settles outside "
                         f"{start}..{end}")
    sharpe: float | None = None
    if len(daily) >= 2:
        values = [v for _, v in daily]
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        if var > 0:
            sharpe = mean / math.sqrt(var) * math.sqrt(_SHARPE_DAYS_PER_YEAR)
    curve = equity_curve(daily, starting_cash_cents)
    limit = [o for o in orders if not o.is_taker]
    placed = sum(o.count for o in limit)
    filled = sum(o.filled for o in limit)
    return Metrics(
        total_pnl_cents=total,
        daily_pnl_cents=tuple(daily),
        sharpe_daily_annualised=sharpe,
        win_rate=(sum(1 for v in by_market.values() if v > 0) / len(by_market)
                  if by_market else None),
        markets_traded=len(by_market),
        avg_edge_cents=edge_sum / contracts if contracts else None,
        max_drawdown_cents=max((dd for _, _, dd in curve), default=0),
        limit_orders=len(limit),
        limit_fill_rate=filled / placed if placed else None,
        taker_orders=sum(1 for o in orders if o.is_taker),
        contracts=contracts,
        turnover_cents=turnover,
        fees_cents=fees,
        pnl_by_edge_bucket=tuple((label, v[0], v[1]) for label, v in buckets.items() if v[0]),
        pnl_by_series=tuple((k, v[0], v[1]) for k, v in sorted(series.items())),
    )
