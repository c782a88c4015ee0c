"""Tax lots over a history made by the paper exchange's own matching engine.

A desk account trades against a market maker for several days (taking and resting, YES and NO,
crossing zero), every market settles, and the export must tie out to what the exchange says: the
desk's balance history (day by day), each settlement's revenue and counts, and the engine's realized
P&L less fees. The engine (``models.matching``) is the one the paper exchange serves.
"""

from __future__ import annotations

import contextlib
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from models.ledger import datetime_from_ms, ms_from_datetime
from models.matching import Engine, EngineReject, MarketSpec, OrderRequest
from models.tax import (
    TaxSettlement,
    build_lots,
    cash_flow_cents,
    fill_from_book_side,
    report_for_year,
    series_from_ticker,
)

DESK, MM = "desk", "mm"
START = datetime(2026, 3, 1, tzinfo=UTC)
DESK_CASH = 500_000


def _trade_days(seed: int, days: int = 4):
    rng = random.Random(seed)
    engine = Engine()
    engine.add_account(DESK, DESK_CASH)
    engine.add_account(MM, 50_000_000)
    balances = []  # (end of day, desk balance) after the day's settlements
    for day in range(days):
        open_at = START + timedelta(days=day)
        now = ms_from_datetime(open_at)
        tickers = [f"{series}-26MAR{day + 1:02d}-B{50 + k}" for series in ("KXHIGHNY", "KXHIGHCHI")
                   for k in range(2)]
        for ticker in tickers:
            engine.add_market(MarketSpec(ticker, ticker.rsplit("-", 1)[0], ticker.split("-")[0],
                                         now, now + 20 * 3_600_000), now)
        for step in range(60):
            now += 60_000
            ticker = rng.choice(tickers)
            fair = rng.randint(10, 90)
            # the maker rests both sides; the desk either takes (IOC) or rests inside
            for account, side, price, tif in (
                    (MM, "bid", fair - rng.randint(1, 3), "good_till_canceled"),
                    (MM, "ask", fair + rng.randint(1, 3), "good_till_canceled"),
                    (DESK, rng.choice(("bid", "ask")), fair + rng.randint(-4, 4),
                     rng.choice(("immediate_or_cancel", "good_till_canceled")))):
                with contextlib.suppress(EngineReject):
                    engine.submit(OrderRequest(account, ticker, side, min(max(price, 1), 99),
                                               rng.randint(1, 15), tif), now)
            if step % 20 == 19:
                engine.cancel_all(MM, now)
        now = ms_from_datetime(open_at + timedelta(hours=21))
        engine.cancel_all(DESK, now)
        engine.cancel_all(MM, now)
        for ticker in tickers:
            engine.determine(ticker, rng.choice(("yes", "no")), now)
            engine.settle(ticker, now + 1000)
        balances.append((datetime_from_ms(now + 1000), engine.balance_cents(DESK)))
    return engine, balances


def _tax_inputs(engine: Engine):
    fills = [fill_from_book_side(f.fill_id, f.ticker, series_from_ticker(f.ticker), f.side,
                                 f.yes_price_cents, f.count, f.fee_cents, datetime_from_ms(f.ts_ms))
             for f in engine.fills(DESK)]
    settlements = [TaxSettlement(s.ticker, s.result, datetime_from_ms(s.ts_ms),
                                 fee_cents=s.fee_cents) for s in engine.settlements(DESK)]
    return fills, settlements


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tax_export_engine_history_ties_out_to_balance_and_settlements(seed):
    engine, balances = _trade_days(seed)
    fills, settlements = _tax_inputs(engine)
    assert len(fills) > 30, "the scenario must actually trade"
    assert any(f.side == "no" for f in fills)
    assert any(f.side == "yes" for f in fills)

    report = report_for_year(fills, settlements, 2026)

    # every market settled: nothing open, and the year's net is the change of the desk's cash
    assert report.open_lots == ()
    assert engine.reserved_cents(DESK) == 0
    assert report.realized_cents == engine.balance_cents(DESK) - DESK_CASH
    assert report.cash_change_cents == engine.balance_cents(DESK) - DESK_CASH
    # day by day: lots disposed up to each day's settlement = the balance history
    for day_end, balance in balances:
        book = build_lots(fills, settlements, end=day_end + timedelta(seconds=1))
        assert book.realized_cents == balance - DESK_CASH
        assert cash_flow_cents(fills, settlements, end=day_end + timedelta(seconds=1)) == (
            balance - DESK_CASH)
    # each exchange settlement: revenue and counts are the settlement disposals' proceeds/contracts
    by_ticker: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d in report.disposals:
        if d.kind == "settlement":
            by_ticker[d.ticker]["revenue"] += d.proceeds_cents
            by_ticker[d.ticker][d.side] += d.contracts
    for s in engine.settlements(DESK):
        assert by_ticker[s.ticker]["revenue"] == s.revenue_cents
        assert (by_ticker[s.ticker]["yes"], by_ticker[s.ticker]["no"]) == (s.yes_count, s.no_count)
    assert set(by_ticker) == {s.ticker for s in engine.settlements(DESK)}
    # the engine's own realized P&L (average cost, before fees) less its fees
    positions = engine.positions(DESK)
    assert report.realized_cents == sum(p.realized_pnl_cents - p.fees_paid_cents for p in positions)
