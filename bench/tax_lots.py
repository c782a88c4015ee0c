"""Benchmark: tax lots over a synthetic year of fills (figures only; last line one JSON object)."""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.tax import TaxFill, TaxSettlement, build_lots, cash_flow_cents, report_for_year  # noqa: E402


def history(n_fills: int, n_markets: int, seed: int = 7):
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(days=360) / n_fills
    tickers = [f"KXHIGH{c}-26JAN{m:04d}-B{m % 90}" for m in range(n_markets) for c in ("NY",)]
    fills = [
        TaxFill(f"f{i}", t, t.split("-")[0], rng.choice(("yes", "no")), "buy",
                rng.randint(1, 50), rng.randint(1, 99), rng.randint(0, 30), start + step * i)
        for i, t in enumerate(rng.choice(tickers) for _ in range(n_fills))]
    settlements = [TaxSettlement(t, rng.choice(("yes", "no")), start + timedelta(days=361))
                   for t in tickers]
    return fills, settlements


def main() -> None:
    results = {}
    for n_fills, n_markets in ((10_000, 500), (100_000, 2_000)):
        fills, settlements = history(n_fills, n_markets)
        t0 = time.perf_counter()
        book = build_lots(fills, settlements)
        t1 = time.perf_counter()
        report = report_for_year(fills, settlements, 2026)
        t2 = time.perf_counter()
        assert book.realized_cents == cash_flow_cents(fills, settlements)
        print(f"{n_fills} fills / {n_markets} markets: build_lots {t1 - t0:.3f} s, "
              f"report_for_year {t2 - t1:.3f} s, {len(report.disposals)} rows")
        results[f"build_lots_s_{n_fills}"] = round(t1 - t0, 4)
        results[f"report_s_{n_fills}"] = round(t2 - t1, 4)
        results[f"rows_{n_fills}"] = len(report.disposals)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
