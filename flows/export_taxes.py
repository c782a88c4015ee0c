"""Flow: export one tax year's lots from the ledger (Form 8949 CSV, summary, reconciliation).

Invariant: the flow only composes; it writes both files or neither, and any bad input (an unknown
method or format, a year without activity, an orphan fill, a settlement of an unknown market)
fails the run with the message naming it before anything is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from models.tax import Method, TaxInputError
from tasks.settings import load_settings
from tasks.tax_export import (
    FORMATS,
    load_selection,
    make_tax_export,
    publish_summary_task,
    read_ledger_history_task,
    result_record,
    write_tax_files_task,
)

__all__ = ["YEARLY_CRON", "export_tax_year", "default_out_path", "previous_year",
           "yearly_deployment"]

YEARLY_CRON = "0 6 2 1 *"  # January 2, 06:00 UTC: every December 31 fill and settlement is in

_METHODS: tuple[Method, ...] = ("fifo", "specific")


def previous_year(now: datetime) -> int:
    """The tax year a scheduled run on January 2 exports: the UTC year before ``now``."""
    return now.astimezone(UTC).year - 1


def default_out_path(data_dir: Path, year: int, method: str) -> Path:
    """Where an export goes unless told: ``<data dir>/tax/form8949-<year>-<method>.csv``."""
    return data_dir / "tax" / f"form8949-{year}-{method}.csv"


@flow(name="export-tax-year")
def export_tax_year(
    year: int | None = None,
    method: str = "fifo",
    format: str = "csv",  # noqa: A002 - the deployment parameter's name
    out: str | None = None,
    selection_path: str | None = None,
    ledger_url: str | None = None,
) -> dict[str, Any]:
    """Export ``year`` (default: last UTC year) from the ledger; return the JSON result record."""
    if method not in _METHODS:
        raise TaxInputError("must be 'fifo' or 'specific'", field="method", value=method)
    if format not in FORMATS:
        raise TaxInputError(f"must be one of {', '.join(FORMATS)}", field="format", value=format)
    settings = load_settings()
    tax_year = year if year is not None else previous_year(datetime.now(UTC))
    selection = load_selection(Path(selection_path)) if selection_path else None
    history = read_ledger_history_task(ledger_url or settings.ledger_url)
    export = make_tax_export(history, tax_year, method=method, selection=selection)
    target = out or str(default_out_path(settings.resolved_data_dir, tax_year, method))
    paths = write_tax_files_task(export, target)
    publish_summary_task(export, paths)
    return result_record(export, paths)


def yearly_deployment(env: str) -> RunnerDeployment:
    """The ``export-tax-year-<env>`` deployment: last year's export every January 2, 06:00 UTC."""
    deployment = export_tax_year.to_deployment(
        name=f"export-tax-year-{env}",
        schedules=[Cron(YEARLY_CRON, timezone="UTC")],
        parameters={"method": "fifo", "format": "csv"},
        description="Form 8949 CSV, summary and reconciliation of the previous UTC year.",
    )
    if not isinstance(deployment, RunnerDeployment):  # called from async code: a coroutine
        raise TypeError("yearly_deployment: call it outside an event loop")
    return deployment
