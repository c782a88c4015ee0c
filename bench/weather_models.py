"""Throughput of the weather parsers and models; the last line is one JSON object.

Run: .venv/bin/python bench/weather_models.py
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from models.brackets import Bracket
from models.cli_report import parse_cli_product
from models.nws import climate_day_hourly_max_f, parse_gridpoint
from models.weather import Predictive, TrainingRow, bracket_probabilities, fit_emos

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def _rate(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    texts = [p.read_text(encoding="latin-1") for p in sorted((FIXTURES / "cli").glob("*.txt"))]
    grid_doc = json.loads((FIXTURES / "nws" / "detailed_forecast.json").read_text())
    as_of = datetime(2022, 2, 4, 6, tzinfo=UTC)
    event = [Bracket(-10_000, "lo", None, 79)] + [Bracket(a, f"B{a}", a, a + 1)
                                                  for a in range(80, 88, 2)]
    event.append(Bracket(88, "hi", 88, None))
    rng = np.random.default_rng(1)
    x = rng.normal(60, 15, 400)
    rows = [TrainingRow((float(a), float(a) + 1.0), int(round(a + rng.normal(0, 3)))) for a in x]

    def cli() -> None:
        for t in texts:
            parse_cli_product(t)

    def grid() -> None:
        g = parse_gridpoint(grid_doc, as_of=as_of, max_age=timedelta(hours=12))
        climate_day_hourly_max_f(g, as_of.date(), -5)

    figures = {
        "cli_reports_per_s": round(_rate(cli, 20) * len(texts)),
        "gridpoints_parsed_per_s": round(_rate(grid, 20), 1),
        "bracket_sets_per_s": round(_rate(lambda: bracket_probabilities(
            Predictive(83.2, 2.4, 8.0), event), 2000)),
        "emos_fits_400_rows_per_s": round(_rate(lambda: fit_emos(rows), 5), 2),
    }
    for k, v in figures.items():
        print(f"{k:<28}{v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
