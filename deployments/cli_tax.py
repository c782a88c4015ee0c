"""`eventdesk tax export`: the year's Form 8949 CSV, summary and reconciliation from the ledger.

Invariant: stdout's last line is always one JSON object (``rows``, ``net_gain_cents``,
``ledger_realized_cents``, ``continuing_gains_cents``, ``cash_change_cents``, ``open_lots``,
``ties_out``; ``error`` instead when the export was refused), and a
refused export leaves no file behind. Runs the same functions as the ``export-tax-year`` flow,
directly (no Prefect server needed); ``eventdesk run export-tax-year`` records it as a flow run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register", "tax_app"]

tax_app = typer.Typer(name="tax", help="Tax records from the ledger.", no_args_is_help=True)


def _emit(record: dict[str, Any]) -> None:
    typer.echo(json.dumps(record, sort_keys=True))


@tax_app.command("export")
def export(
    year: Annotated[int, typer.Option(help="Tax year (UTC dates).")],
    out: Annotated[Path | None, typer.Option(help="Form 8949 CSV path (summary goes beside it).")]
    = None,
    method: Annotated[str, typer.Option(help="Lot method: fifo or specific.")] = "fifo",
    selection: Annotated[
        Path | None,
        typer.Option(help='Specific-lot selection JSON: {"closing fill": [["lot", n], ...]}.'),
    ] = None,
    ledger_url: Annotated[str | None, typer.Option(help="Ledger database URL (default: settings).")]
    = None,
) -> None:
    """Export one tax year: print the summary, then one JSON line."""
    from flows.export_taxes import default_out_path
    from models.money import MoneyError
    from models.tax import TaxInputError
    from tasks.settings import load_settings
    from tasks.tax_export import (
        load_selection,
        make_tax_export,
        read_ledger_history,
        result_record,
        summary_lines,
        write_tax_files,
    )

    try:
        if method not in ("fifo", "specific"):
            raise TaxInputError("must be 'fifo' or 'specific'", field="method", value=method)
        settings = load_settings()
        picks = load_selection(selection) if selection is not None else None
        history = read_ledger_history(ledger_url or settings.ledger_url)
        result = make_tax_export(history, year, method=method,  # type: ignore[arg-type]
                                 selection=picks)
        target = out or default_out_path(settings.resolved_data_dir, year, method)
        paths = write_tax_files(result, target)
    except (TaxInputError, MoneyError, OSError) as exc:
        typer.echo(f"eventdesk tax export: {exc}", err=True)
        _emit({"error": str(exc), "field": getattr(exc, "field", None), "rows": 0,
               "ties_out": False})
        raise typer.Exit(code=1) from exc
    for line in summary_lines(result):
        typer.echo(line)
    typer.echo(f"wrote {paths.form_8949} and {paths.summary}")
    _emit(result_record(result, paths))


def register(app: typer.Typer) -> None:
    """Add `tax export` to the root app."""
    app.add_typer(tax_app, name="tax")
