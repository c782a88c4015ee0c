"""Tax export I/O: read the ledger into tax inputs, write the Form 8949 CSV and its summary.

Invariants: money leaves as exact dollar strings made from integer cents; a written export is
complete or absent (each file is written to a temporary file in the target directory, flushed,
fsynced and renamed over the target only when every file is ready; on any error the temporaries are
removed); bad ledger rows (a fill without a matching order, a settlement of a market the ledger
does not know) stop the export with a message naming them, before anything is written.

The plain functions are usable without Prefect (the CLI calls them); the ``*_task`` wrappers are
what ``flows/export_taxes.py`` composes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import col, select

from models.ledger import Fill, OrderRecord, Position, Settlement, datetime_from_ms
from models.money import dollars_from_cents
from models.tax import (
    Disposal,
    LotSelection,
    Method,
    TaxFill,
    TaxInputError,
    TaxSettlement,
    YearReport,
    check_references,
    report_for_year,
    series_from_ticker,
)
from models.tax_reconcile import (
    LedgerMarket,
    Reconciliation,
    market_cash_flows,
    reconcile,
    settlement_positions,
)
from tasks.db import ledger_engine, read_session

__all__ = [
    "FORM_8949_COLUMNS",
    "TREATMENT_NOTE",
    "DATES_NOTE",
    "FORMATS",
    "LedgerHistory",
    "TaxExport",
    "ExportPaths",
    "read_ledger_history",
    "load_selection",
    "make_tax_export",
    "form_8949_rows",
    "text_cell",
    "summary_rows",
    "write_tax_files",
    "result_record",
    "summary_lines",
    "read_ledger_history_task",
    "write_tax_files_task",
    "publish_summary_task",
]

FORMATS: Final = ("csv",)
FORM_8949_COLUMNS: Final = (
    "(a) Description of property",
    "(b) Date acquired",
    "(c) Date sold or disposed of",
    "(d) Proceeds",
    "(e) Cost or other basis",
    "(f) Code(s)",
    "(g) Amount of adjustment",
    "(h) Gain or (loss)",
    "Term",
    "Ticker",
    "Series",
    "Side",
    "Contracts",
    "Lot (opening fill)",
    "Disposed by",
    "Disposal",
)
TREATMENT_NOTE: Final = (
    "Whether these gains and losses are ordinary income, capital gains or something else depends "
    "on your circumstances: that treatment is your and your tax adviser's call. This export lists "
    "lots from the eventdesk ledger; it is not tax advice."
)
DATES_NOTE: Final = (
    "Dates acquired and sold are the UTC calendar dates of the exchange's fill and settlement "
    "times, and a disposal belongs to the tax year of its UTC date. UTC because it is the one "
    "clock the exchange, the ledger and this reconciliation share: markets settle on climate "
    "days in the local standard time of stations in several time zones, which no single local "
    "date matches, and a year boundary in UTC is the one the cash and ledger tie-outs use. A "
    "trade made in the evening of December 31 in the Americas is dated January 1 here."
)
_FEE_CODE: Final = "E"  # Form 8949 code E: selling expenses not reflected in the proceeds
# a text cell starting with one of these is a formula to a spreadsheet (CSV injection, OWASP)
_FORMULA_STARTS: Final = frozenset("=+-@\t\r")


@dataclass(frozen=True)
class LedgerHistory:
    """Everything the tax lots need from the ledger, as plain values."""

    fills: tuple[TaxFill, ...]
    settlements: tuple[TaxSettlement, ...]
    markets: tuple[LedgerMarket, ...]


@dataclass(frozen=True)
class TaxExport:
    """One year's lots with their reconciliation."""

    report: YearReport
    reconciliation: Reconciliation


@dataclass(frozen=True)
class ExportPaths:
    """Where an export was written: the Form 8949 rows and the summary next to them."""

    form_8949: Path
    summary: Path


def _tax_fill(row: Fill) -> TaxFill:
    try:
        return TaxFill(row.exchange_fill_id, row.market_ticker,
                       series_from_ticker(row.market_ticker),
                       row.side, "buy",  # type: ignore[arg-type]  # TaxFill refuses all but yes/no
                       row.count, row.price_cents, row.fee_cents, datetime_from_ms(row.ts_ms),
                       None if row.order_id is None else str(row.order_id))
    except TaxInputError as exc:
        raise TaxInputError(f"ledger fill {row.exchange_fill_id}: {exc}", field=exc.field,
                            value=exc.value) from exc


def _tax_settlement(row: Settlement) -> TaxSettlement:
    try:
        return TaxSettlement(row.market_ticker, row.result,  # type: ignore[arg-type]
                             datetime_from_ms(row.settled_ts_ms))
    except TaxInputError as exc:
        raise TaxInputError(f"ledger settlement of {row.market_ticker}: {exc}", field=exc.field,
                            value=exc.value) from exc


def read_ledger_history(ledger_url: str) -> LedgerHistory:
    """Read fills, settlements and positions; refuse orphan fills and unknown settled markets."""
    url = make_url(ledger_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") and not (
            str(url.database).startswith("file:") or Path(str(url.database)).is_file()):
        raise TaxInputError("no ledger database at this path", field="ledger_url",
                            value=str(url.database))
    engine = ledger_engine(ledger_url)
    try:
        with read_session(engine) as session:
            orders = session.exec(select(OrderRecord.id, OrderRecord.market_ticker)).all()
            fill_rows = session.exec(select(Fill).order_by(col(Fill.ts_ms), col(Fill.id))).all()
            settle_rows = session.exec(
                select(Settlement).order_by(col(Settlement.settled_ts_ms))).all()
            positions = session.exec(select(Position)).all()
    except OperationalError as exc:
        raise TaxInputError(f"cannot read the ledger's tables ({exc.orig}); is it migrated?",
                            field="ledger_url", value=url.render_as_string(hide_password=True)
                            ) from exc
    finally:
        engine.dispose()
    fills = tuple(_tax_fill(row) for row in fill_rows)
    settlements = tuple(_tax_settlement(row) for row in settle_rows)
    known = {ticker for _, ticker in orders} | {p.market_ticker for p in positions}
    check_references(fills, settlements, order_ids=[str(order_id) for order_id, _ in orders],
                     market_tickers=known | {f.ticker for f in fills})
    last_fill = {f.ticker: f.ts for f in fills}
    settled = {row.market_ticker: row for row in settle_rows}
    markets = []
    for p in positions:
        s = settled.get(p.market_ticker)
        closed = None
        if p.contracts == 0:
            closed = (datetime_from_ms(s.settled_ts_ms) if s is not None and s.contracts
                      else last_fill.get(p.market_ticker))
        markets.append(LedgerMarket(p.market_ticker, p.contracts, p.realized_pnl_cents,
                                    p.fees_cents, closed, None if s is None else s.contracts,
                                    p.cost_cents))
    return LedgerHistory(fills, settlements, tuple(markets))


def load_selection(path: Path) -> dict[str, list[tuple[str, int]]]:
    """Read a specific-lot selection: JSON ``{"closing fill id": [["lot id", contracts], ...]}``."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TaxInputError(f"cannot read lot selection: {exc}", field="selection",
                            value=str(path)) from exc
    if not isinstance(raw, dict):
        raise TaxInputError("must be a JSON object of fill id -> [[lot id, contracts], ...]",
                            field="selection", value=type(raw).__name__)
    out: dict[str, list[tuple[str, int]]] = {}
    for fill_id, picks in raw.items():
        if not isinstance(picks, list) or not all(
                isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                and isinstance(p[1], int) and not isinstance(p[1], bool) for p in picks):
            raise TaxInputError("must be a list of [lot id, contracts] pairs",
                                field=f"selection[{fill_id}]", value=picks)
        out[fill_id] = [(p[0], p[1]) for p in picks]
    return out


def make_tax_export(
    history: LedgerHistory, year: int, *, method: Method = "fifo",
    selection: LotSelection | None = None,
) -> TaxExport:
    """Build the year's lots and reconcile them with the cash flows and the ledger."""
    report = report_for_year(history.fills, history.settlements, year, method=method,
                             selection=selection)
    positions = settlement_positions(history.fills, history.settlements)
    cash = market_cash_flows(history.fills, history.settlements)
    return TaxExport(report, reconcile(report, history.markets, fill_positions=positions,
                                       fill_cash=cash))


def _dollars(cents: int) -> str:
    return dollars_from_cents(cents)


def text_cell(value: str) -> str:
    """Return ``value`` safe for a spreadsheet: a leading ``=``, ``+``, ``-``, ``@``, tab or CR
    (a formula to Excel, LibreOffice, Sheets) is neutralised by a leading apostrophe."""
    return f"'{value}" if value[:1] in _FORMULA_STARTS else value


def form_8949_rows(disposals: Sequence[Disposal]) -> list[list[str]]:
    """Return one Form 8949 row per disposal (fees: opening in basis, closing as code E)."""
    rows = []
    for d in disposals:
        rows.append([
            text_cell(f"{d.contracts} {d.side.upper()} {d.ticker}"),
            d.acquired_date.isoformat(),
            d.disposed_date.isoformat(),
            _dollars(d.proceeds_cents),
            _dollars(d.basis_cents),
            _FEE_CODE if d.close_fee_cents else "",
            _dollars(-d.close_fee_cents),
            _dollars(d.gain_cents),
            "long" if d.long_term else "short",
            text_cell(d.ticker), text_cell(d.series), d.side, str(d.contracts),
            text_cell(d.lot_id), text_cell(d.disposed_by), d.kind,
        ])
    return rows


def summary_rows(export: TaxExport) -> list[list[str]]:
    """Return the summary file's rows: per-series lines, open lots, reconciliation, the note."""
    report, rec = export.report, export.reconciliation
    rows: list[list[str]] = [["section", "year", "series", "rows", "contracts", "proceeds",
                              "cost_basis", "fees", "net_gain_or_loss"]]
    rows += [["summary", str(s.year), text_cell(s.series), str(s.rows), str(s.contracts),
              _dollars(s.proceeds_cents), _dollars(s.basis_cents), _dollars(s.fees_cents),
              _dollars(s.net_cents)] for s in report.summaries]
    rows += [[], ["section", "lot", "ticker", "series", "side", "contracts", "date_acquired",
                  "cost_basis", "note"]]
    rows += [["open_at_year_end", text_cell(lot.lot_id), text_cell(lot.ticker),
              text_cell(lot.series), lot.side,
              str(lot.contracts), lot.acquired_ts.date().isoformat(), _dollars(lot.basis_cents),
              "held at year end: not disposed, not reported"] for lot in report.open_lots]
    rows += [[], ["section", "item", "amount", "detail"]]
    rows += [
        ["reconciliation", "net_gain", _dollars(rec.net_gain_cents), "sum of column (h)"],
        ["reconciliation", "cash_change", _dollars(rec.cash_change_cents),
         "trading, fees and settlement cash over the year"],
        ["reconciliation", "open_basis_start", _dollars(rec.open_basis_start_cents), ""],
        ["reconciliation", "open_basis_end", _dollars(rec.open_basis_end_cents), ""],
        ["reconciliation", "ledger_realized", _dollars(rec.ledger_realized_cents),
         "ledger realized P&L after fees of markets closed in the year (less what earlier "
         "years reported)"],
        ["reconciliation", "continuing_gains", _dollars(rec.continuing_gains_cents),
         "rows of markets continuing past year end (open then, or traded again later): average "
         "cost and FIFO differ until they close; checked by each market's cash flow against the "
         "ledger's books"],
        ["reconciliation", "ties_out", str(rec.ties_out).lower(),
         f"net_gain = cash_change + open_basis_end - open_basis_start: "
         f"{str(rec.cash_ties_out).lower()}; net_gain = ledger_realized + continuing_gains "
         f"and every market checks: {str(rec.ledger_ties_out).lower()}"],
    ]
    rows += [["reconciliation", "continuing_market", text_cell(ticker),
              f"export {_dollars(export_cents)} this year; ledger realized (average cost, "
              f"before fees) {_dollars(ledger_cents)} lifetime"]
             for ticker, export_cents, ledger_cents in rec.continuing_markets]
    rows += [["reconciliation", "unmatched_market", text_cell(ticker),
              f"export {_dollars(export_cents)} vs ledger {_dollars(ledger_cents)}"]
             for ticker, export_cents, ledger_cents in rec.unmatched]
    rows += [["reconciliation", "settled_position_mismatch", text_cell(ticker),
              f"ledger settled {ledger_n} contracts, its fills add up to {fills_n}"]
             for ticker, ledger_n, fills_n in rec.position_mismatches]
    rows += [["reconciliation", "book_mismatch", text_cell(ticker),
              f"ledger books {_dollars(ledger_cents)} of cash, its fills and settlements "
              f"{_dollars(fills_cents)}"]
             for ticker, ledger_cents, fills_cents in rec.book_mismatches]
    rows += [[], ["note", TREATMENT_NOTE], ["note", DATES_NOTE]]
    return rows


def _csv_text(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _summary_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}-summary{out.suffix or '.csv'}")


def write_tax_files(export: TaxExport, out: Path) -> ExportPaths:
    """Write the Form 8949 CSV to ``out`` and the summary beside it: both, or neither."""
    out = Path(out)
    paths = ExportPaths(out, _summary_path(out))
    texts = {
        paths.form_8949: _csv_text(FORM_8949_COLUMNS, form_8949_rows(export.report.disposals)),
        paths.summary: _csv_text(None, summary_rows(export)),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    temporaries: dict[Path, Path] = {}
    placed: list[Path] = []
    try:
        for target, text in texts.items():
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
                "w", encoding="utf-8", newline="", dir=target.parent, prefix=f".{target.name}.",
                suffix=".tmp", delete=False)
            temporaries[target] = Path(handle.name)
            with handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        # the summary first, the Form 8949 rows last: if that rename fails, undo the summary
        for target in (paths.summary, paths.form_8949):
            os.replace(temporaries[target], target)
            placed.append(target)
    except BaseException:
        if len(placed) < len(texts):
            for target in placed:
                target.unlink(missing_ok=True)
        raise
    finally:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
    return paths


def result_record(export: TaxExport, paths: ExportPaths | None = None) -> dict[str, Any]:
    """Return the export's one-line JSON result (the CLI's last line)."""
    rec = export.reconciliation
    record: dict[str, Any] = {
        "year": export.report.year,
        "method": export.report.method,
        "rows": len(export.report.disposals),
        "net_gain_cents": rec.net_gain_cents,
        "ledger_realized_cents": rec.ledger_realized_cents,
        "continuing_gains_cents": rec.continuing_gains_cents,
        "cash_change_cents": rec.cash_change_cents,
        "open_lots": len(export.report.open_lots),
        "ties_out": rec.ties_out,
    }
    if paths is not None:
        record["out"] = str(paths.form_8949)
        record["summary"] = str(paths.summary)
    return record


def summary_lines(export: TaxExport) -> list[str]:
    """Return the human summary the CLI prints (no JSON)."""
    report, rec = export.report, export.reconciliation
    lines = [f"tax year {report.year} ({report.method}): {len(report.disposals)} lot rows, "
             f"{len(report.open_lots)} lots open at year end"]
    lines += [f"  {s.series:<16} rows {s.rows:>5}  contracts {s.contracts:>6}  "
              f"proceeds {_dollars(s.proceeds_cents):>10}  basis {_dollars(s.basis_cents):>10}  "
              f"fees {_dollars(s.fees_cents):>8}  net {_dollars(s.net_cents):>10}"
              for s in report.summaries]
    cash_ok = "yes" if rec.cash_ties_out else "NO"
    ledger_ok = "yes" if rec.ledger_ties_out else "NO"
    lines.append(
        f"reconciliation: net {_dollars(rec.net_gain_cents)} = "
        f"cash {_dollars(rec.cash_change_cents)} + "
        f"open basis {_dollars(rec.open_basis_end_cents)} - "
        f"{_dollars(rec.open_basis_start_cents)}: {cash_ok}; "
        f"ledger realized {_dollars(rec.ledger_realized_cents)} + continuing markets "
        f"{_dollars(rec.continuing_gains_cents)}: {ledger_ok}")
    lines += [f"  continuing past year end {t}: export {_dollars(e)} this year, ledger realized "
              f"(average cost, before fees) {_dollars(g)}" for t, e, g in rec.continuing_markets]
    lines += [f"  unmatched {t}: export {_dollars(e)} vs ledger {_dollars(g)}"
              for t, e, g in rec.unmatched]
    lines += [f"  settled position mismatch {t}: ledger {n} contracts, fills {k}"
              for t, n, k in rec.position_mismatches]
    lines += [f"  book mismatch {t}: ledger books {_dollars(g)} of cash, fills {_dollars(k)}"
              for t, g, k in rec.book_mismatches]
    lines.append(f"note: {TREATMENT_NOTE}")
    return lines


@task(name="read-ledger-history", cache_policy=NO_CACHE)
def read_ledger_history_task(ledger_url: str) -> LedgerHistory:
    """Read the ledger's tax inputs (a task: recorded, never cached)."""
    return read_ledger_history(ledger_url)


@task(name="write-tax-files", cache_policy=NO_CACHE)
def write_tax_files_task(export: TaxExport, out: str) -> ExportPaths:
    """Write the export's files atomically."""
    return write_tax_files(export, Path(out))


@task(name="publish-tax-summary", cache_policy=NO_CACHE)
def publish_summary_task(export: TaxExport, paths: ExportPaths | None = None) -> None:
    """Publish the per-series summary and the reconciliation as a Prefect table artifact."""
    report, rec = export.report, export.reconciliation
    table: list[Mapping[str, Any]] = [
        {"year": s.year, "series": s.series, "rows": s.rows, "contracts": s.contracts,
         "proceeds": _dollars(s.proceeds_cents), "basis": _dollars(s.basis_cents),
         "fees": _dollars(s.fees_cents), "net": _dollars(s.net_cents)}
        for s in report.summaries]
    where = f" Files: {paths.form_8949}, {paths.summary}." if paths is not None else ""
    create_table_artifact(
        key=f"tax-summary-{report.year}",
        table=[dict(row) for row in table],
        description=(
            f"Tax year {report.year} ({report.method}): {len(report.disposals)} lot rows, "
            f"{len(report.open_lots)} open at year end; net {_dollars(rec.net_gain_cents)}, "
            f"ledger realized {_dollars(rec.ledger_realized_cents)}, continuing markets "
            f"{_dollars(rec.continuing_gains_cents)}, cash change "
            f"{_dollars(rec.cash_change_cents)}, ties out: {rec.ties_out}.{where} "
            f"{TREATMENT_NOTE}"),
    )
