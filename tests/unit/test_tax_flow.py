"""The export flow's plain parts: parameter checks, default year and path, the yearly schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from flows.export_taxes import (
    default_out_path,
    export_tax_year,
    previous_year,
    yearly_deployment,
)
from models.tax import TaxInputError


@pytest.mark.parametrize(("kwargs", "field"), [({"method": "lifo"}, "method"),
                                               ({"format": "xlsx"}, "format")])
def test_export_tax_year_bad_parameter_raises_before_reading(kwargs, field, tmp_path):
    with pytest.raises(TaxInputError) as info:
        export_tax_year.fn(year=2026, ledger_url=f"sqlite:///{tmp_path / 'x.sqlite'}", **kwargs)
    assert info.value.field == field
    assert list(tmp_path.iterdir()) == []


def test_previous_year_uses_the_utc_year():
    # 2027-01-01 01:00 in New York is already 06:00 UTC on Jan 1: the export is for 2026
    assert previous_year(datetime(2027, 1, 1, 6, tzinfo=UTC)) == 2026
    # 2026-12-31 20:00 at UTC-5 is 2027-01-01 01:00 UTC
    assert previous_year(datetime(2026, 12, 31, 20, tzinfo=timezone(timedelta(hours=-5)))) == 2026


def test_default_out_path_names_year_and_method():
    assert default_out_path(Path("/d"), 2026, "fifo") == Path("/d/tax/form8949-2026-fifo.csv")


def test_yearly_deployment_runs_on_january_2_utc():
    deployment = yearly_deployment("paper")
    assert deployment.name == "export-tax-year-paper"
    [schedule] = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 6 2 1 *", "UTC")
    assert deployment.parameters == {"method": "fifo", "format": "csv"}
