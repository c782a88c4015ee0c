"""The tax export over a history of REAL trading-flow runs on the paper exchange.

Three climate days of KXHIGHNY, December 30 to January 1: each day the ``trade-weather`` flow
(Prefect test harness) trades a few cycles against synthetic makers and a noise taker, with a
forecast bias that flips sign so it buys both sides (opening, closing and flipping positions);
the exchange clock then moves past the day's close, ``eventdesk exchange settle`` settles the
day's markets with the simulated truth and the ``reconcile`` flow imports the settlements. The
UTC year ends inside New York's December 31 climate day (7 pm EST), with positions held, so the
2025 export carries open lots and partial closes of markets that settle in 2026.

``eventdesk tax export`` for 2025 and 2026 must then tie out, to the cent, with what the
exchange itself says: the cash balance at the start, at the year end and at the end (fees
included), the positions held at the year end, the settlements' revenue and every fill. A ledger
copy with one fill dropped must not tie out.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from models.tax import cash_flow_cents
from tasks.settings import load_settings
from tasks.tax_export import read_ledger_history
from tests.integration._tax_history import (
    HistoryRun,
    HistoryVenue,
    exchange_tie_out,
    open_lots,
    run_history,
    trading_history,
)

START = datetime(2025, 12, 30, 16, 0, tzinfo=UTC)  # 11 am EST: inside NY's Dec 30 climate day


def _export(year: int, out: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    from deployments.cli import app

    result = CliRunner().invoke(app, ["tax", "export", "--year", str(year), "--out", str(out),
                                      *args])
    last = result.output.strip().splitlines()[-1]
    return result.exit_code, json.loads(last), result.output


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, prefect_harness):
    tmp = tmp_path_factory.mktemp("taxhist")
    ledger_url = f"sqlite:///{tmp / 'ledger.sqlite'}"
    with trading_history(tmp, START, ["KXHIGHNY"]) as venue, pytest.MonkeyPatch.context() as mp:
        for name, value in venue.env(ledger_url).items():
            mp.setenv(name, value)
        load_settings(fresh=True)
        run = run_history(venue, days=3, cycles=3)
        yield venue, run, tmp, ledger_url
    load_settings(fresh=True)


def test_tax_export_trading_history_ties_out_to_exchange_balance_settlements_fills(
        history: tuple[HistoryVenue, HistoryRun, Path, str]) -> None:
    venue, run, tmp, ledger_url = history
    out = {year: tmp / f"f8949-{year}.csv" for year in (2025, 2026)}

    exported = {year: _export(year, path) for year, path in out.items()}

    for code, _record, output in exported.values():
        assert code == 0, output
    first, second = exported[2025][1], exported[2026][1]
    tie = exchange_tie_out(venue, run, [out[2025], out[2026]],
                           tmp / "f8949-2026-summary.csv")
    print(json.dumps({"days": [d.isoformat() for d in run.days], "cycles": run.cycles,
                      "fills": tie.exchange_fills, "contracts": tie.exchange_contracts,
                      "fees_cents": tie.exchange_fees_cents, "lots": tie.lots, "rows": tie.rows,
                      "closed_by_trades": tie.closed_by_fills_contracts,
                      "net_gain_cents": {2025: first["net_gain_cents"],
                                         2026: second["net_gain_cents"]},
                      "continuing_2025_cents": first["continuing_gains_cents"],
                      "open_lots_2025": first["open_lots"],
                      "daily_balances_cents": run.daily_balances_cents,
                      "history_s": round(run.seconds, 1), "changes": dict(run.order_changes)}))
    assert len(run.days) == 3
    assert all(r["verdict"] == "clean" for r in run.reconciles), run.reconciles
    assert tie.exchange_fills >= 6, "too few fills for a meaningful history"
    assert tie.closed_by_fills_contracts > 0, "the flow never closed a position by a trade"
    assert not tie.open_positions  # nothing open at the end
    assert tie.resting_orders == 0
    assert first["ties_out"] is True, exported[2025][2]
    assert second["ties_out"] is True, exported[2026][2]
    # 2026 closes every market: the ledger's realized P&L is the export's, to the cent; 2025's
    # rows of markets still open at its end are listed apart (average cost vs FIFO)
    assert second["net_gain_cents"] == second["ledger_realized_cents"]
    assert second["continuing_gains_cents"] == 0
    assert first["net_gain_cents"] == (first["ledger_realized_cents"]
                                       + first["continuing_gains_cents"])
    # the exchange's cash: start -> year end (nothing resting) -> end, fees included
    year_end = run.year_end
    assert year_end is not None
    assert first["cash_change_cents"] == year_end.balance_cents - run.balance_start_cents
    assert second["cash_change_cents"] == run.balance_end_cents - year_end.balance_cents
    assert first["net_gain_cents"] + second["net_gain_cents"] == tie.balance_change_cents
    # and day by day: the ledger's fills and settlements explain each settled day's balance
    ledger = read_ledger_history(ledger_url)
    for at, balance in zip(run.daily_at, run.daily_balances_cents, strict=True):
        moved = cash_flow_cents(ledger.fills, ledger.settlements,
                                end=at + timedelta(milliseconds=1))
        assert moved == balance - run.balance_start_cents, at
    assert first["net_gain_cents"] + second["net_gain_cents"] == tie.row_gain_cents
    # the lots open at the end of 2025 are the positions the exchange held then
    held: dict[str, int] = {}
    for lot in open_lots(tmp / "f8949-2025-summary.csv"):
        held[lot[2]] = held.get(lot[2], 0) + (1 if lot[4] == "yes" else -1) * int(lot[5])
    assert held == year_end.positions
    assert year_end.positions, "no position held over the year end: nothing straddles"
    assert tie.settlement_proceeds_cents == tie.settlement_revenue_cents
    assert first["rows"] + second["rows"] == tie.rows
    assert second["open_lots"] == 0
    assert tie.open_lot_contracts == 0
    assert tie.fills_unaccounted == {}
    assert tie.settled_counts_differ == {}
    assert tie.lot_ids_not_at_exchange == ()
    assert tie.exchange_contracts == (tie.disposed_contracts + tie.open_lot_contracts
                                      + tie.closed_by_fills_contracts)
    assert tie.bad_rows == ()


def test_tax_export_ledger_copy_missing_one_fill_does_not_tie_out(
        history: tuple[HistoryVenue, HistoryRun, Path, str]) -> None:
    _venue, run, tmp, ledger_url = history
    source = sqlite3.connect(ledger_url.removeprefix("sqlite:///"))
    copy_path = tmp / "ledger-missing-fill.sqlite"
    target = sqlite3.connect(copy_path)
    with target:
        source.backup(target)
    source.close()
    with target:
        (fill_id,) = target.execute(
            "SELECT exchange_fill_id FROM fills ORDER BY ts_ms LIMIT 1").fetchone()
        target.execute("DELETE FROM fills WHERE exchange_fill_id = ?", (fill_id,))
    target.close()
    copy_url = f"sqlite:///{copy_path}"

    results = [_export(year, tmp / f"missing-{year}.csv", "--ledger-url", copy_url)
               for year in (2025, 2026)]

    for code, record, output in results:
        assert code == 0, output
        assert record["ties_out"] is False, output
        assert "book mismatch" in output  # the summary names the market whose books disagree
    total = sum(record["net_gain_cents"] for _, record, _ in results)
    assert total != run.balance_end_cents - run.balance_start_cents
