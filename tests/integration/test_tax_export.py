"""The tax export over a real SQLite ledger built by the ledger's own write path.

The ledger is migrated with alembic (``upgrade_ledger``) and filled with ``record_fill`` /
``record_settlement``, the functions the order gateway uses; orders are inserted as ledger rows.
Expected figures are worked by hand in the comments.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from deployments.cli_tax import register
from models.ledger import OrderRecord, ms_from_datetime
from tasks.db import ledger_engine, upgrade_ledger, write_session
from tasks.ledger_store import FillReport, record_fill, record_settlement
from tasks.tax_export import FORM_8949_COLUMNS, TREATMENT_NOTE

M1 = "KXHIGHNY-26JAN05-B40"
M2 = "KXHIGHCHI-26JAN05-T30"
M3 = "KXHIGHAUS-25DEC31-B80"


def ts(year, month, day, hour, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class Ledger:
    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        upgrade_ledger(self.url)
        self.engine = ledger_engine(self.url)
        self._n = 0

    def order(self, coid, ticker, side, price, count, at):
        with write_session(self.engine) as session:
            session.add(OrderRecord(
                client_order_id=coid, strategy="test", market_ticker=ticker,
                event_ticker=ticker.rsplit("-", 1)[0], category="weather", side=side,
                price_cents=price, count=count, status="resting",
                time_in_force="good_till_canceled",
                created_ts_ms=ms_from_datetime(at), updated_ts_ms=ms_from_datetime(at)))

    def fill(self, coid, ticker, side, price, count, fee, at, **extra):
        self._n += 1
        assert record_fill(self.engine, FillReport(
            f"fill-{self._n}", ticker, side, price, count, fee, True, ms_from_datetime(at),
            client_order_id=coid, **extra))

    def settle(self, ticker, result, at):
        assert record_settlement(self.engine, ticker, result, as_of=at)


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.sqlite")
    yield led
    led.engine.dispose()


@pytest.fixture
def history(ledger):
    """Three markets over two years (hand-worked in the test below)."""
    # M3: 4 YES @30 (fee 2) on 2025-12-31, settles YES on 2026-01-01
    ledger.order("a1", M3, "yes", 30, 4, ts(2025, 12, 31, 22))
    ledger.fill("a1", M3, "yes", 30, 4, 2, ts(2025, 12, 31, 23))
    ledger.settle(M3, "yes", ts(2026, 1, 1, 6))
    # M1: 10 YES @40 in two fills (fees 11, 7); 4 NO @45 (fee 7); 5 YES @50 (fee 9); settles YES
    ledger.order("b1", M1, "yes", 40, 10, ts(2026, 1, 5, 9))
    ledger.fill("b1", M1, "yes", 40, 6, 11, ts(2026, 1, 5, 10))
    ledger.fill("b1", M1, "yes", 40, 4, 7, ts(2026, 1, 5, 10, 5))
    ledger.order("b2", M1, "no", 45, 4, ts(2026, 1, 5, 10, 30))
    ledger.fill("b2", M1, "no", 45, 4, 7, ts(2026, 1, 5, 11))
    ledger.order("b3", M1, "yes", 50, 5, ts(2026, 1, 5, 11, 30))
    ledger.fill("b3", M1, "yes", 50, 5, 9, ts(2026, 1, 5, 12))
    ledger.settle(M1, "yes", ts(2026, 1, 6, 15))
    # M2: 3 NO @30 (fee 5); 5 YES @72 (fee 6) closes the NO and opens 2 YES; settles NO
    ledger.order("c1", M2, "no", 30, 3, ts(2026, 1, 5, 8))
    ledger.fill("c1", M2, "no", 30, 3, 5, ts(2026, 1, 5, 9))
    ledger.order("c2", M2, "yes", 72, 5, ts(2026, 1, 5, 9, 30))
    ledger.fill("c2", M2, "yes", 72, 5, 6, ts(2026, 1, 5, 10))
    ledger.settle(M2, "no", ts(2026, 1, 6, 14))
    return ledger


def run_cli(*args):
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["tax", "export", *map(str, args)])
    last = result.stdout.strip().splitlines()[-1]
    return result, json.loads(last)


def read_rows(path: Path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_tax_export_cli_two_year_ledger_matches_hand_worked_rows_and_ties_out(history, tmp_path):
    out = tmp_path / "out" / "f8949-2026.csv"
    result, record = run_cli("--year", 2026, "--out", out, "--ledger-url", history.url)

    assert result.exit_code == 0, result.output
    # M1: fill-4 closes 4 of fill-2 (6 @40, fee 11): 220 - 160 - round(11*4/6)=7 - 7 = 46;
    #     settlement: fill-2's last 2: 200-80-4 = 116; fill-3: 400-160-7 = 233; fill-5: 500-250-9
    #     = 241 -> 636.   M2: -15 and -146 -> -161.   M3: 400-120-2 = 278.   2026: 753.
    assert record["rows"] == 7
    assert record["net_gain_cents"] == 753
    # ledger (average cost, before fees): M1 60+610-34 fees, M2 -6-144-11, M3 280-2
    assert record["ledger_realized_cents"] == 753
    # cash 2026: M1 636, M2 -161, M3's settlement +400 = 875 = 753 - 0 + 122 (carried-in basis)
    assert record["cash_change_cents"] == 875
    assert record["ties_out"] is True
    rows = read_rows(out)
    assert tuple(rows[0]) == FORM_8949_COLUMNS
    assert ["3 NO " + M2, "2026-01-05", "2026-01-05", "0.84", "0.95", "E", "-0.04", "-0.15"] in [
        r[:8] for r in rows[1:]]
    assert ["4 YES " + M3, "2025-12-31", "2026-01-01", "4.00", "1.22", "", "0.00", "2.78"] in [
        r[:8] for r in rows[1:]]
    assert sum(int(r[7].replace(".", "")) for r in rows[1:]) == 753
    summary = read_rows(tmp_path / "out" / "f8949-2026-summary.csv")
    # proceeds 400 + (220+200+400+500) + 84; cost (price) 120 + 650 + 234; fees 2 + 34 + 11
    assert ["summary", "2026", "ALL", "7", "24", "18.04", "10.04", "0.47", "7.53"] in summary
    assert ["note", TREATMENT_NOTE] in summary
    assert "KXHIGHNY" in result.stdout
    assert "ordinary income" in result.stdout


def test_tax_export_cli_year_with_only_an_open_lot_reports_it_open(history, tmp_path):
    out = tmp_path / "f2025.csv"
    result, record = run_cli("--year", 2025, "--out", out, "--ledger-url", history.url)

    assert result.exit_code == 0, result.output
    assert (record["rows"], record["net_gain_cents"], record["open_lots"]) == (0, 0, 1)
    assert record["cash_change_cents"] == -122
    assert record["ties_out"] is True
    summary = read_rows(tmp_path / "f2025-summary.csv")
    assert ["open_at_year_end", "fill-1", M3, "KXHIGHAUS", "yes", "4", "2025-12-31", "1.22",
            "held at year end: not disposed, not reported"] in summary


def _partial_close(ledger):
    # 10 YES @40 (fee 3) then 4 NO @50 (fee 2), still open at year end. FIFO: 4*50 - 160 -
    # round(3*4/10)=1 - 2 = 37. Ledger (average cost, fees apart): realized 4*(100-50) - 160 =
    # 40, held cost 240, fees 5: its books say cash 40 - 240 - 5 = -205 = -400-3 + 200-2.
    ledger.order("d1", M1, "yes", 40, 10, ts(2026, 3, 1, 9))
    ledger.fill("d1", M1, "yes", 40, 10, 3, ts(2026, 3, 1, 10))
    ledger.order("d2", M1, "no", 50, 4, ts(2026, 3, 2, 9))
    ledger.fill("d2", M1, "no", 50, 4, 2, ts(2026, 3, 2, 10))


def test_tax_export_cli_partial_close_of_open_position_ties_out_by_cash_identity(ledger,
                                                                                 tmp_path):
    _partial_close(ledger)
    result, record = run_cli("--year", 2026, "--out", tmp_path / "x.csv", "--ledger-url",
                             ledger.url)

    assert result.exit_code == 0, result.output
    # the ledger realizes nothing closed this year; the open market's 37 is listed apart
    assert (record["net_gain_cents"], record["ledger_realized_cents"],
            record["continuing_gains_cents"]) == (37, 0, 37)
    assert record["ties_out"] is True
    assert (f"continuing past year end {M1}: export 0.37 this year, ledger realized (average "
            "cost, before fees) 0.40") in result.stdout
    # cash: -403 + 198 = -205; open basis at the end: 6 @40 + fee 3-1 = 242: 37 = -205 + 242
    assert "reconciliation: net 0.37 = cash -2.05 + open basis 2.42 - 0.00: yes" in result.stdout


def test_tax_export_cli_partial_close_ledger_missing_the_close_does_not_tie_out(ledger,
                                                                                tmp_path):
    _partial_close(ledger)
    with write_session(ledger.engine) as session:  # the row goes, the position keeps it
        session.execute(text("DELETE FROM fills WHERE exchange_fill_id = 'fill-2'"))
    result, record = run_cli("--year", 2026, "--out", tmp_path / "x.csv", "--ledger-url",
                             ledger.url)

    assert result.exit_code == 0, result.output
    assert record["ties_out"] is False
    # the books say -205 of cash, the fills left say -403
    assert f"book mismatch {M1}: ledger books -2.05 of cash, fills -4.03" in result.stdout


def test_tax_export_cli_fill_booked_after_settlement_breaks_the_tie_out(history, tmp_path):
    # a fill the ledger books only after M1 settled, timed before the settlement: the export
    # counts it in the settled lots, the ledger's settlement did not: the reconciliation says so
    history.order("late", M1, "yes", 50, 1, ts(2026, 1, 5, 13))
    history.fill("late", M1, "yes", 50, 1, 0, ts(2026, 1, 5, 14))
    result, record = run_cli("--year", 2026, "--out", tmp_path / "late.csv", "--ledger-url",
                             history.url)

    assert result.exit_code == 0, result.output
    assert record["ties_out"] is False
    assert f"unmatched {M1}" in result.stdout


def _files(path: Path) -> list[str]:
    return sorted(p.name for p in path.rglob("*")) if path.exists() else []


def test_tax_export_cli_fill_without_order_refuses_and_writes_nothing(history, tmp_path):
    history.fill("nope", M1.replace("B40", "B41"), "yes", 40, 1, 0, ts(2026, 2, 1, 9),
                 event_ticker="KXHIGHNY-26JAN05", category="weather")
    out_dir = tmp_path / "refused"
    result, record = run_cli("--year", 2026, "--out", out_dir / "f.csv", "--ledger-url",
                             history.url)

    assert result.exit_code == 1
    assert "without a matching order" in record["error"]
    assert "fill-" in record["error"]
    assert record["ties_out"] is False
    assert _files(out_dir) == []


def test_tax_export_cli_settlement_of_unknown_market_refuses_and_writes_nothing(history,
                                                                                  tmp_path):
    history.settle("KXHIGHMIA-26JAN05-B70", "yes", ts(2026, 1, 6, 16))
    result, record = run_cli("--year", 2026, "--out", tmp_path / "o" / "f.csv", "--ledger-url",
                             history.url)

    assert result.exit_code == 1
    assert "unknown market" in record["error"]
    assert "KXHIGHMIA-26JAN05-B70" in record["error"]
    assert _files(tmp_path / "o") == []


def test_tax_export_cli_ledger_fill_with_unparsable_ticker_names_the_fill(ledger, tmp_path):
    ledger.order("w1", "NOSERIES", "yes", 40, 1, ts(2026, 3, 1, 9))
    ledger.fill("w1", "NOSERIES", "yes", 40, 1, 0, ts(2026, 3, 1, 10))
    result, record = run_cli("--year", 2026, "--out", tmp_path / "w.csv", "--ledger-url",
                             ledger.url)

    assert result.exit_code == 1
    assert record["field"] == "ticker"
    assert "ledger fill fill-1" in record["error"]
    assert "NOSERIES" in record["error"]
    assert not (tmp_path / "w.csv").exists()


def test_tax_export_cli_year_without_activity_refuses_and_leaves_old_file(history, tmp_path):
    out = tmp_path / "f2024.csv"
    out.write_text("previous export\n")
    result, record = run_cli("--year", 2024, "--out", out, "--ledger-url", history.url)

    assert result.exit_code == 1
    assert "no fills or settlements in 2024" in record["error"]
    assert out.read_text() == "previous export\n"
    assert not (tmp_path / "f2024-summary.csv").exists()
    assert [name for name in _files(tmp_path) if name.endswith(".tmp")] == []


def test_tax_export_cli_failed_rename_leaves_no_partial_export(history, tmp_path):
    out = tmp_path / "blocked.csv"
    out.mkdir()  # the Form 8949 rename onto a directory fails after the summary is ready
    result, record = run_cli("--year", 2026, "--out", out, "--ledger-url", history.url)

    assert result.exit_code == 1
    assert "error" in record
    assert not (tmp_path / "blocked-summary.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_tax_export_cli_missing_ledger_refuses_without_creating_it(tmp_path):
    result, record = run_cli("--year", 2026, "--out", tmp_path / "f.csv", "--ledger-url",
                             f"sqlite:///{tmp_path / 'none.sqlite'}")

    assert result.exit_code == 1
    assert "no ledger database" in record["error"]
    assert not (tmp_path / "none.sqlite").exists()


def test_tax_export_cli_specific_selection_file_chooses_the_lot(history, tmp_path):
    # close M1's 4 contracts (fill-4) against fill-3 (4 @40, fee 7) instead of FIFO's fill-2:
    # 220 - 160 - 7 - 7 = 46 as well, but then fill-2 keeps all 6 for settlement (600-240-11=349)
    selection = tmp_path / "sel.json"
    # M2's fill-7 closes fill-6's 3 NO: a specific selection must name it too
    selection.write_text(json.dumps({"fill-4": [["fill-3", 4]], "fill-7": [["fill-6", 3]]}))
    result, record = run_cli("--year", 2026, "--out", tmp_path / "s.csv", "--method",
                             "specific", "--selection", selection, "--ledger-url", history.url)

    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "s.csv")[1:]
    lots = [(r[13], r[12], r[7], r[15]) for r in rows if r[9] == M1]
    assert lots == [("fill-3", "4", "0.46", "close"), ("fill-2", "6", "3.49", "settlement"),
                    ("fill-5", "5", "2.41", "settlement")]
    assert record["net_gain_cents"] == 753  # same total: all of M1 is closed within the year
    assert record["ties_out"] is True


def test_tax_export_cli_bad_method_and_bad_selection_refuse(history, tmp_path):
    _, record = run_cli("--year", 2026, "--method", "lifo", "--ledger-url", history.url)
    assert "method" in record["error"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"fill-4": [["fill-2", "four"]]}')
    _, record = run_cli("--year", 2026, "--method", "specific", "--selection", bad,
                        "--ledger-url", history.url)
    assert record["field"] == "selection[fill-4]"


def test_export_tax_year_flow_under_prefect_writes_files_and_table_artifact(
        prefect_harness, history, tmp_path):
    import httpx
    from prefect.settings import PREFECT_API_URL

    from flows.export_taxes import export_tax_year

    record = export_tax_year(year=2026, out=str(tmp_path / "flow.csv"), ledger_url=history.url)

    assert record["rows"] == 7
    assert record["ties_out"] is True
    assert (tmp_path / "flow.csv").is_file()
    response = httpx.get(f"{PREFECT_API_URL.value()}/artifacts/tax-summary-2026/latest")
    response.raise_for_status()
    artifact = response.json()
    assert artifact["type"] == "table"
    table = json.loads(artifact["data"]) if isinstance(artifact["data"], str) else artifact["data"]
    assert {"series": "ALL", "net": "7.53"}.items() <= table[-1].items()
    assert "adviser" in artifact["description"]
