"""The Form 8949 rows and the atomic file writer (tasks/tax_export.py), on real temp files."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from models.tax import (
    TaxFill,
    TaxInputError,
    TaxSettlement,
    report_for_year,
)
from models.tax_reconcile import reconcile
from tasks.tax_export import (
    DATES_NOTE,
    FORM_8949_COLUMNS,
    TREATMENT_NOTE,
    TaxExport,
    form_8949_rows,
    load_selection,
    result_record,
    text_cell,
    write_tax_files,
)

T = "KXHIGHNY-26JAN05-B40"


def _export() -> TaxExport:
    day = [datetime(2026, 1, d, tzinfo=UTC) for d in (5, 6)]
    fills = [TaxFill("A", T, "KXHIGHNY", "yes", "buy", 10, 40, 17, day[0]),
             TaxFill("B", T, "KXHIGHNY", "no", "buy", 4, 45, 7, day[1])]
    report = report_for_year(fills, [TaxSettlement(T, "no", datetime(2026, 1, 7, tzinfo=UTC))],
                             2026)
    return TaxExport(report, reconcile(report, []))


def test_form_8949_rows_gain_is_proceeds_minus_basis_plus_adjustment():
    export = _export()
    rows = form_8949_rows(export.report.disposals)

    assert len(rows) == len(export.report.disposals) == 2
    for row in rows:
        d, e, g, h = (Decimal(row[i]) for i in (3, 4, 6, 7))
        assert d - e + g == h
        assert len(row) == len(FORM_8949_COLUMNS)
    # closing fill B: 4 YES at 55 = 2.20; basis 4*40 + round(17*0.4)=7 -> 1.67; code E, -0.07
    assert rows[0][:8] == ["4 YES " + T, "2026-01-05", "2026-01-06", "2.20", "1.67", "E", "-0.07",
                           "0.46"]
    # settled NO: 6 YES pay nothing; basis 240 + the remaining 10c of fee
    assert rows[1][:8] == ["6 YES " + T, "2026-01-05", "2026-01-07", "0.00", "2.50", "", "0.00",
                           "-2.50"]


def test_write_tax_files_writes_both_files_and_replaces_old_ones(tmp_path):
    out = tmp_path / "deep" / "f.csv"
    out.parent.mkdir()
    out.write_text("old\n")
    paths = write_tax_files(_export(), out)

    with paths.form_8949.open(newline="") as handle:
        assert len(list(csv.reader(handle))) == 3
    assert paths.summary == tmp_path / "deep" / "f-summary.csv"
    assert "ties_out" in paths.summary.read_text()
    assert sorted(p.name for p in out.parent.iterdir()) == ["f-summary.csv", "f.csv"]


def test_write_tax_files_failing_rename_removes_summary_and_temporaries(tmp_path):
    (tmp_path / "f.csv").mkdir()  # renaming a file onto a directory fails
    with pytest.raises(IsADirectoryError):
        write_tax_files(_export(), tmp_path / "f.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]


def test_result_record_has_the_cli_fields():
    record = result_record(_export())
    assert {"rows": 2, "net_gain_cents": 46 - 250, "ledger_realized_cents": 0}.items() <= (
        record.items())
    assert record["ties_out"] is False  # no ledger markets given: unmatched
    json.dumps(record)


@pytest.mark.parametrize(
    ("text", "field"),
    [("not json", "selection"), ("[1, 2]", "selection"), ('{"B": [["A"]]}', "selection[B]"),
     ('{"B": [["A", true]]}', "selection[B]"), ('{"B": "A"}', "selection[B]")],
)
def test_load_selection_bad_file_raises_naming_the_entry(tmp_path, text, field):
    path = tmp_path / "sel.json"
    path.write_text(text)
    with pytest.raises(TaxInputError) as info:
        load_selection(path)
    assert info.value.field == field


def test_load_selection_reads_pairs(tmp_path):
    path = tmp_path / "sel.json"
    path.write_text('{"B": [["A", 3], ["C", 1]]}')
    assert load_selection(path) == {"B": [("A", 3), ("C", 1)]}


@pytest.mark.parametrize(("value", "cell"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-1+2", "'-1+2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), (T, T),
    ("4 YES " + T, "4 YES " + T), ("", ""),
])
def test_text_cell_neutralises_formula_starts_only(value, cell):
    assert text_cell(value) == cell


def test_form_8949_rows_escape_text_cells_but_not_money(tmp_path):
    day = [datetime(2026, 1, d, tzinfo=UTC) for d in (5, 6)]
    evil = "=CMD|' /C calc'!A0-26JAN05-B40"  # a hostile ticker that reached the ledger
    fills = [TaxFill("@lot", evil, "=CMD|' /C calc'!A0", "yes", "buy", 2, 40, 1, day[0])]
    report = report_for_year(fills, [TaxSettlement(evil, "no", day[1])], 2026)

    paths = write_tax_files(TaxExport(report, reconcile(report, [])), tmp_path / "f.csv")

    with paths.form_8949.open(newline="") as handle:
        row = list(csv.reader(handle))[1]
    assert row[3:8] == ["0.00", "0.81", "", "0.00", "-0.81"]  # a loss stays a number
    assert row[9] == "'" + evil
    assert row[10] == "'=CMD|' /C calc'!A0"
    assert row[13] == "'@lot"
    summary = paths.summary.read_text()
    assert ",'=CMD" in summary  # every text cell of the summary is escaped as well
    assert all(not cell.startswith(("=", "@")) for line in csv.reader(summary.splitlines())
               for cell in line)


def test_summary_notes_treatment_and_utc_dates(tmp_path):
    paths = write_tax_files(_export(), tmp_path / "f.csv")
    with paths.summary.open(newline="") as handle:
        notes = [row[1] for row in csv.reader(handle) if row and row[0] == "note"]
    assert notes == [TREATMENT_NOTE, DATES_NOTE]
    assert "UTC" in DATES_NOTE
