"""Parser of the NWS Daily Climate Report (CLI), the document Kalshi weather highs settle on.

Invariant: a report's date comes only from its "...THE <STATION> CLIMATE SUMMARY FOR <date>..."
headline and its maximum only from the bare `MAXIMUM` row of the observed temperature block
(never the "normals for tomorrow" rows); anything that cannot be read that way is refused with
a `CliParseError` naming the reason, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal

__all__ = [
    "CliParseError",
    "ClimateReport",
    "parse_cli",
    "parse_cli_product",
    "select_settlement_report",
]

ReportKind = Literal["final", "preliminary"]


class CliParseError(ValueError):
    """A climate report (or one section of it) that cannot be read; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClimateReport:
    """One station's climate summary for one climate day."""

    station_name: str
    day: date
    kind: ReportKind
    correction: bool
    issued_at: datetime | None  # UTC, from the issuance line when it can be read
    valid_as_of: str | None  # "0400 PM" on same-day preliminary reports
    max_f: int | None  # None when the report says MM (missing)
    max_record: bool
    max_estimated: bool
    max_time: str | None
    precip_in: Decimal | None  # None when absent or MM; 0 with precip_trace for "T"
    precip_trace: bool

    @property
    def is_final(self) -> bool:
        """Return whether this is the next-morning report that settles the day."""
        return self.kind == "final"


_HEADLINE = re.compile(
    r"\.\.\.\s*THE\s+(?P<name>.+?)\s+CLIMATE SUMMARY\s+(?:FOR|FROM)\s+"
    r"(?P<month>[A-Z]+)\.?\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})"
    r"(?P<corr>\s+CORRECTION)?\s*\.\.\."
)
_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_ISSUED = re.compile(
    r"^\s*(?P<hhmm>\d{3,4})\s+(?P<ampm>AM|PM)\s+(?P<tz>[A-Z]{3,4})\s+[A-Z]{3}\s+"
    r"(?P<mon>[A-Z]{3})\s+(?P<day>\d{1,2})\s+(?P<year>\d{4})\s*$", re.MULTILINE)
_TZ_OFFSETS = {"EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8,
               "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10, "SST": -11, "CHST": 10}
_VALID_AS_OF = re.compile(r"^\s*VALID\s+(?:TODAY\s+)?AS OF\s+(?P<t>\d{3,4}\s+[AP]M)", re.MULTILINE)
_TEMP_HEADER = re.compile(r"^\s*TEMPERATURE\s*(?:\(F\))?\s*$", re.MULTILINE)
_PRECIP_HEADER = re.compile(r"^\s*PRECIPITATION\b", re.MULTILINE)
_PERIOD = re.compile(r"^\s*(YESTERDAY|TODAY)\s*$")
_MAX_ROW = re.compile(
    r"^\s*MAXIMUM\s+(?!TEMPERATURE)(?P<v>MM|-?\d+)(?P<r>R)?(?P<e>\s*\(E\)|\s+E(?=\s|$))?"
    r"(?:\s+(?P<time>\d{1,2}:?\d{2}\s+[AP]M))?")
_PRECIP_ROW = re.compile(r"^\s*(?:YESTERDAY|TODAY)\s+(?P<v>MM|T|\d+\.\d+)")


def _sections(text: str) -> list[tuple[re.Match[str], str, str]]:
    # (headline, preamble before it, body up to the next headline)
    heads = list(_HEADLINE.finditer(text))
    out = []
    for i, head in enumerate(heads):
        start = heads[i - 1].end() if i else 0
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out.append((head, text[start:head.start()], text[head.end():end]))
    return out


def _issued_at(preamble: str) -> datetime | None:
    found = list(_ISSUED.finditer(preamble))
    if not found:
        return None
    m = found[-1]
    offset = _TZ_OFFSETS.get(m["tz"])
    month = _MONTHS.get(m["mon"])
    if offset is None or month is None:
        return None
    hhmm = int(m["hhmm"])
    hour, minute = divmod(hhmm, 100)
    if not (1 <= hour <= 12 and minute < 60):
        return None
    hour = hour % 12 + (12 if m["ampm"] == "PM" else 0)
    local = datetime(int(m["year"]), month, int(m["day"]), hour, minute,
                     tzinfo=timezone(timedelta(hours=offset)))
    return local.astimezone(UTC)


def _observed_temperature_block(body: str) -> tuple[str, list[str]]:
    header = _TEMP_HEADER.search(body)
    if header is None:
        raise CliParseError("no 'TEMPERATURE (F)' block in this section")
    precip = _PRECIP_HEADER.search(body, header.end())
    block = body[header.end(): precip.start() if precip else len(body)]
    lines = [ln for ln in block.splitlines() if ln.strip()]
    if not lines or not _PERIOD.match(lines[0]):
        raise CliParseError("temperature block does not start with YESTERDAY or TODAY")
    return lines[0].strip(), lines[1:]


def _parse_section(head: re.Match[str], preamble: str, body: str) -> ClimateReport:
    month = _MONTHS.get(head["month"][:3])
    if month is None:
        raise CliParseError(f"headline month {head['month']!r} is not a month")
    try:
        day = date(int(head["year"]), month, int(head["day"]))
    except ValueError as exc:
        raise CliParseError(f"headline date is impossible: {head.group(0)!r} ({exc})") from None
    period, rows = _observed_temperature_block(body)
    max_rows = [m for m in (_MAX_ROW.match(r) for r in rows) if m]
    if not max_rows:
        raise CliParseError(f"no MAXIMUM row in the observed ({period}) temperature block: "
                            "a morning report that carries only the minimum so far")
    row = max_rows[0]
    valid = _VALID_AS_OF.search(body)
    kind: ReportKind = "preliminary" if period == "TODAY" or valid else "final"
    report_line = next((ln for ln in preamble.splitlines() if "CLIMATE REPORT" in ln), "")
    precip_match = None
    precip_header = _PRECIP_HEADER.search(body)
    if precip_header is not None:
        following = [ln for ln in body[precip_header.end():].splitlines()[1:] if ln.strip()]
        precip_match = next((m for m in map(_PRECIP_ROW.match, following[:3]) if m), None)
    precip_raw = precip_match["v"] if precip_match else None
    return ClimateReport(
        station_name=" ".join(head["name"].split()),
        day=day,
        kind=kind,
        correction=bool(head["corr"]) or "CORRECT" in report_line,
        issued_at=_issued_at(preamble),
        valid_as_of=" ".join(valid["t"].split()) if valid else None,
        max_f=None if row["v"] == "MM" else int(row["v"]),
        max_record=bool(row["r"]),
        max_estimated=bool(row["e"]),
        max_time=row["time"],
        precip_in=(Decimal(0) if precip_raw == "T"
                   else Decimal(precip_raw) if precip_raw and precip_raw != "MM" else None),
        precip_trace=precip_raw == "T",
    )


def parse_cli_product(text: str) -> list[ClimateReport | CliParseError]:
    """Parse every station section of a CLI product; unreadable sections come back as errors."""
    sections = _sections(text)
    if not sections:
        raise CliParseError("no '...THE <station> CLIMATE SUMMARY FOR <date>...' headline")
    out: list[ClimateReport | CliParseError] = []
    for head, preamble, body in sections:
        try:
            out.append(_parse_section(head, preamble, body))
        except CliParseError as exc:
            out.append(exc)
    return out


def parse_cli(text: str, station_name: str | None = None) -> ClimateReport:
    """Parse the section for `station_name` (default: the first one) or raise CliParseError."""
    results = parse_cli_product(text)
    if station_name is None:
        first = results[0]
        if isinstance(first, CliParseError):
            raise first
        return first
    wanted = " ".join(station_name.upper().split())
    for head, result in zip(_sections(text), results, strict=True):
        if " ".join(head[0]["name"].split()) == wanted:
            if isinstance(result, CliParseError):
                raise result
            return result
    raise CliParseError(f"no section for station {station_name!r} in this product")


def select_settlement_report(reports: Iterable[ClimateReport], day: date) -> ClimateReport:
    """Return the report that settles `day`: the latest final one, else raise CliParseError."""
    finals = [r for r in reports if r.day == day and r.is_final and r.max_f is not None]
    if not finals:
        raise CliParseError(f"no final report with a maximum for {day.isoformat()}")
    epoch = datetime.min.replace(tzinfo=UTC)
    return max(finals, key=lambda r: (r.issued_at or epoch, r.correction))
