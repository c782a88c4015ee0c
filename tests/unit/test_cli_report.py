"""Every real Daily Climate Report parses to the date and maximum read by eye, or is refused.

The EXPECTED table was written by reading each file's headline and bare MAXIMUM row (grep and
sed over the raw text), not from the parser's output.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from models.cli_report import (
    ClimateReport,
    CliParseError,
    parse_cli,
    parse_cli_product,
    select_settlement_report,
)

# file -> per section: (station, day, max_f or None for MM, kind) or a refusal reason fragment
EXPECTED: dict[str, list[tuple[str, date, int | None, str] | str]] = {
    "CLIABY.txt": [("ALBANY", date(2014, 9, 29), 79, "final")],
    "CLIACT.txt": [("WACO", date(2014, 12, 15), 69, "preliminary")],
    "CLIALO.txt": [("WATERLOO IA", date(2014, 1, 3), 19, "preliminary")],
    "CLIANC.txt": [
        ("ANCHORAGE AK", date(2017, 3, 14), 23, "final"),
        ("KING SALMON", date(2017, 3, 14), 22, "final"),
        ("KODIAK", date(2017, 3, 14), 31, "final"),
        ("BETHEL", date(2017, 3, 14), 10, "final"),
        ("SAINT PAUL ISLAND", date(2017, 3, 14), 29, "final"),
        ("COLD BAY", date(2017, 3, 14), 33, "final"),
    ],
    "CLIANN.txt": [("ANNETTE WSO AP", date(2015, 3, 2), 53, "final")],
    "CLIBET.txt": [("BETHEL AP", date(2014, 1, 1), 17, "final")],
    "CLIBGR.txt": [("BANGOR ME", date(2014, 11, 2), 35, "final")],
    "CLIBNA.txt": [("NASHVILLE", date(2015, 10, 19), 47, "preliminary")],
    "CLIBOI.txt": [("BOISE ID", date(2014, 12, 29), 28, "preliminary")],
    "CLICKV.txt": [("CLARKSVILLE", date(2014, 12, 29), 39, "final")],
    "CLICVG.txt": [("CINCINNATI OH", date(2020, 4, 22), 69, "final")],
    "CLICVG_2007.txt": [("CINCINNATI", date(2007, 6, 30), 82, "final")],
    "CLICVG_colon.txt": [("CINCINNATI OH", date(2021, 2, 4), 39, "final")],
    "CLICVG_newer.txt": [("CINCINNATI OH", date(2020, 4, 22), 70, "final")],
    "CLICVG_older.txt": [("CINCINNATI OH", date(2020, 4, 22), 68, "final")],
    "CLICVG_tab.txt": [("CINCINNATI OH", date(2013, 5, 9), 81, "final")],
    "CLIDCA.txt": [("WASHINGTON NATIONAL DC", date(2026, 6, 28), 76, "final")],
    "CLIDMH.txt": [("BALTIMORE INNER HARBOR MD", date(2019, 5, 9), 74, "final")],
    "CLIDRT.txt": [("DEL RIO", date(2014, 12, 29), 42, "preliminary")],
    "CLIDSM.txt": [("DES MOINES IA", date(2013, 8, 1), 89, "final")],
    "CLIDSM2.txt": [("DES MOINES IA", date(2014, 10, 12), 56, "preliminary")],
    "CLIEAR.txt": [("KEARNEY", date(2014, 11, 13), 25, "preliminary")],
    "CLIECP.txt": [("PANAMA CITY NW", date(2014, 12, 29), 70, "preliminary")],
    "CLIEKA.txt": [("EUREKA CA", date(2014, 12, 28), 55, "final")],
    "CLIEST.txt": [("ESTHERVILLE IA", date(2014, 10, 12), 62, "final")],
    "CLIEWN.txt": [("NEW BERN NC", date(2014, 9, 28), 83, "final")],
    "CLIFFC.txt": [("PEACHTREE CITY", date(2014, 10, 3), 79, "preliminary")],
    "CLIFMY.txt": ["no MAXIMUM row"],
    "CLIHOU.txt": [
        ("HOUSTON INTERCONTINENTAL", date(2014, 11, 30), 80, "final"),
        ("HOUSTON/HOBBY AIRPORT", date(2014, 11, 30), 79, "final"),
    ],
    "CLIICT.txt": ["no MAXIMUM row"],
    "CLIJNU.txt": [("JUNEAU", date(2013, 6, 30), 75, "preliminary")],
    "CLILWD.txt": [("LAMONI IA", date(2017, 5, 29), 76, "final")],
    "CLIMAI.txt": [("MARIANNA", date(2014, 12, 29), 69, "preliminary")],
    "CLIMBS.txt": [("TRI CITIES MI", date(2014, 12, 29), 29, "final")],
    "CLIMSO.txt": ["no MAXIMUM row"],
    "CLIMSO_2.txt": ["no MAXIMUM row"],
    "CLIMUO.txt": [("MOUNTAIN HOME AFB", date(2021, 6, 23), 92, "final")],
    "CLIMYV.txt": [("MARYSVILLE", date(2022, 11, 12), 60, "final")],
    "CLINYC.txt": [("CENTRAL PARK NY", date(2013, 1, 2), 33, "final")],
    "CLIOLF.txt": [("WOLF POINT MT", date(2014, 12, 29), 1, "preliminary")],
    "CLIOME.txt": [("NOME WSO AP", date(2014, 10, 23), 33, "final")],
    "CLIOME_2.txt": [("NOME AIRPORT", date(2006, 11, 8), 29, "final")],
    "CLIPPG.txt": [("PAGO PAGO AIRPORT", date(2020, 12, 28), 89, "preliminary")],
    "CLIPPG2.txt": [("PAGO PAGO AIRPORT", date(2021, 6, 23), 86, "preliminary")],
    "CLIPPG3.txt": [("PAGO PAGO AIRPORT", date(2022, 2, 6), 89, "preliminary")],
    "CLIPPG4.txt": [("PAGO PAGO AIRPORT", date(2023, 3, 30), 86, "final")],
    "CLIRDU.txt": [("RALEIGH-DURHAM INTL AIRPORT NC", date(2021, 3, 19), 57, "final")],
    "CLIRDU_v2.txt": [("RALEIGH-DURHAM INTL AIRPORT NC", date(2021, 3, 20), 57, "final")],
    "CLISAD.txt": ["no MAXIMUM row"],
    "CLISEW.txt": [("SEATTLE WA WFO", date(2014, 12, 29), 44, "final")],
    "CLITCS.txt": [("TRUTH OR CONSEQUENCES", date(2014, 12, 29), 60, "final")],
}


def _read(path: Path) -> str:
    return path.read_text(encoding="latin-1")


def test_cli_fixture_table_covers_every_copied_report(fixtures_dir):
    assert sorted(p.name for p in (fixtures_dir / "cli").glob("CLI*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_real_report_parses_to_expected_values_or_refuses(fixtures_dir, name):
    results = parse_cli_product(_read(fixtures_dir / "cli" / name))
    assert len(results) == len(EXPECTED[name])
    for got, want in zip(results, EXPECTED[name], strict=True):
        if isinstance(want, str):
            assert isinstance(got, CliParseError)
            assert want in got.reason
        else:
            assert isinstance(got, ClimateReport), got
            assert (got.station_name, got.day, got.max_f, got.kind) == want


def test_cli_miami_same_day_report_is_preliminary(shared_data):
    text = _read(shared_data / "nws/text/cli/CLIMIA_2026-05-03_afternoon_truncated.txt")
    report = parse_cli(text)
    assert (report.station_name, report.day, report.max_f) == ("MIAMI", date(2026, 5, 3), 82)
    assert report.kind == "preliminary"
    assert report.valid_as_of == "0400 PM"
    assert report.max_time == "2:21 PM"


def test_cli_normals_block_is_not_the_maximum(fixtures_dir):
    # CLINYC: observed 33, tomorrow's normal "MAXIMUM TEMPERATURE (F)   39"
    assert parse_cli(_read(fixtures_dir / "cli/CLINYC.txt")).max_f == 33


def test_cli_record_flag_and_estimate_flag_are_read(fixtures_dir):
    annette = parse_cli(_read(fixtures_dir / "cli/CLIANN.txt"))
    assert annette.max_f == 53
    assert annette.max_record
    raleigh = parse_cli(_read(fixtures_dir / "cli/CLIRDU.txt"))
    assert raleigh.max_f == 57
    assert raleigh.max_estimated
    assert not raleigh.max_record


def test_cli_correction_is_flagged_in_headline_and_report_line(fixtures_dir):
    assert parse_cli(_read(fixtures_dir / "cli/CLIEWN.txt")).correction
    assert parse_cli(_read(fixtures_dir / "cli/CLIRDU_v2.txt")).correction
    assert not parse_cli(_read(fixtures_dir / "cli/CLINYC.txt")).correction


def test_cli_trace_precipitation_reads_as_trace(fixtures_dir):
    report = parse_cli(_read(fixtures_dir / "cli/CLIMUO.txt"))
    assert report.precip_trace
    assert report.precip_in == Decimal(0)
    dca = parse_cli(_read(fixtures_dir / "cli/CLIDCA.txt"))
    assert dca.precip_in == Decimal("0.33")
    assert not dca.precip_trace


def test_cli_missing_maximum_reads_as_none(fixtures_dir):
    text = _read(fixtures_dir / "cli/CLINYC.txt").replace(
        "  MAXIMUM         33    301 PM", "  MAXIMUM         MM    301 PM")
    assert parse_cli(text).max_f is None


def test_cli_without_headline_is_refused():
    with pytest.raises(CliParseError, match="headline"):
        parse_cli("CLIMATE REPORT\nMAXIMUM TEMPERATURE... 59\n")


def test_cli_station_selection_in_multi_station_product(fixtures_dir):
    report = parse_cli(_read(fixtures_dir / "cli/CLIHOU.txt"), station_name="HOUSTON/HOBBY AIRPORT")
    assert report.max_f == 79
    with pytest.raises(CliParseError, match="no section"):
        parse_cli(_read(fixtures_dir / "cli/CLIHOU.txt"), station_name="CHICAGO MIDWAY")


def test_cli_settlement_selection_prefers_latest_final(fixtures_dir):
    older = parse_cli(_read(fixtures_dir / "cli/CLICVG_older.txt"))
    newer = parse_cli(_read(fixtures_dir / "cli/CLICVG_newer.txt"))
    chosen = select_settlement_report([newer, older], date(2020, 4, 22))
    assert chosen.max_f == 70  # issued 05:50Z, after the 05:46Z version with 68
    with pytest.raises(CliParseError, match="no final report"):
        select_settlement_report([older], date(2020, 4, 23))
