"""Stations, climate days and settlement-source checks for Kalshi weather series.

Invariant: a weather market is only priced when its series' settlement source and its market
rules name the station the registry expects; the climate day is midnight to midnight local
STANDARD time (a fixed UTC offset all year, 1 am to 1 am clock time under daylight saving).
Anything else yields a `SettlementAlarm` value that stops trading that series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, Literal

__all__ = [
    "STATIONS",
    "STATION_ZONES",
    "SettlementAlarm",
    "Station",
    "StationError",
    "check_market_rules",
    "check_series",
    "climate_day_bounds_utc",
    "climate_day_of",
    "station_for",
]

Variable = Literal["high", "precip"]


class StationError(ValueError):
    """An unknown series or an impossible station/climate-day request."""


@dataclass(frozen=True)
class Station:
    """One settlement station: what a series settles on and where it is."""

    series: str
    icao: str
    cli_id: str
    wfo: str
    name: str
    lat: float
    lon: float
    standard_offset_hours: int
    variable: Variable
    rules_phrases: tuple[str, ...]  # one of these must appear in every market's rules_primary
    time_zone: str  # IANA zone of local clock time (decision times); settlement uses the offset


STATIONS: dict[str, Station] = {
    s.series: s
    for s in (
        Station("KXHIGHNY", "KNYC", "NYC", "OKX", "Central Park", 40.7833, -73.9667, -5, "high",
                ("Central Park, New York",), "America/New_York"),
        Station("KXHIGHCHI", "KMDW", "MDW", "LOT", "Chicago Midway", 41.7842, -87.7553, -6, "high",
                ("Chicago Midway",), "America/Chicago"),
        Station("KXHIGHMIA", "KMIA", "MIA", "MFL", "Miami International", 25.7906, -80.3164, -5,
                "high", ("Miami, FL", "Miami International Airport"), "America/New_York"),
        Station("KXHIGHAUS", "KAUS", "AUS", "EWX", "Austin Bergstrom", 30.1830, -97.6799, -6,
                "high", ("Austin Bergstrom",), "America/Chicago"),
        Station("KXHIGHLAX", "KLAX", "LAX", "LOX", "Los Angeles Airport", 33.9381, -118.3889, -8,
                "high", ("Los Angeles Airport", "LAX"), "America/Los_Angeles"),
        Station("KXHIGHDEN", "KDEN", "DEN", "BOU", "Denver International", 39.8466, -104.6562, -7,
                "high", ("Denver, CO", "Denver International"), "America/Denver"),
        Station("KXHIGHPHIL", "KPHL", "PHL", "PHI", "Philadelphia International", 39.8733,
                -75.2268, -5, "high", ("Philadelphia",), "America/New_York"),
        Station("KXRAINNYC", "KNYC", "NYC", "OKX", "Central Park", 40.7833, -73.9667, -5,
                "precip", ("Central Park",), "America/New_York"),
    )
}

# NWS UGC codes (forecast zone, county) of each settlement station, for matching alerts
# (``models.news_rules``). County codes are state + "C" + county FIPS; NYZ072/NYC061 were checked
# against a recorded `/points` response; the other forecast zones should be re-checked against
# `/points/{lat},{lon}` (`forecastZone`, `county`) when the registry is reviewed.
STATION_ZONES: dict[str, tuple[str, ...]] = {
    "KNYC": ("NYZ072", "NYC061"),
    "KMDW": ("ILZ104", "ILC031"),
    "KMIA": ("FLZ074", "FLC086"),
    "KAUS": ("TXZ192", "TXC453"),
    "KLAX": ("CAZ041", "CAC037"),
    "KDEN": ("COZ040", "COC031"),
    "KPHL": ("PAZ071", "PAC101"),
}

# The settlement document every registered series must name (either wording is used by Kalshi).
_NWS_DOCUMENTS = ("Daily Climate Report", "Climatological Report (Daily)")
_NWS_SOURCE_NAMES = ("National Weather Service", "NWS")


@dataclass(frozen=True)
class SettlementAlarm:
    """Why a series must not be traded: its settlement source no longer matches the registry."""

    series: str
    field: str
    found: str
    expected: str

    @property
    def reason(self) -> str:
        """One line for logs and the decision record."""
        return (f"{self.series}: {self.field} is {self.found!r}, expected {self.expected}; "
                "trading this series is stopped until the registry is reviewed")


def station_for(series: str) -> Station:
    """Return the registered station of `series` or raise StationError naming it."""
    try:
        return STATIONS[series.upper()]
    except KeyError:
        raise StationError(f"series {series!r} is not in the station registry "
                           f"(known: {', '.join(sorted(STATIONS))})") from None


def climate_day_bounds_utc(day: date, standard_offset_hours: int) -> tuple[datetime, datetime]:
    """Return [start, end) in UTC of the NWS climate day `day` at a fixed standard offset."""
    if not -12 <= standard_offset_hours <= 14:
        raise StationError(f"standard_offset_hours out of range: {standard_offset_hours}")
    tz = timezone(timedelta(hours=standard_offset_hours))
    start = datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)
    return start, start + timedelta(days=1)


def climate_day_of(ts: datetime, standard_offset_hours: int) -> date:
    """Return the climate day (local standard time) that contains the aware instant `ts`."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise StationError(f"climate_day_of needs an aware datetime, got naive {ts.isoformat()}")
    if not -12 <= standard_offset_hours <= 14:
        raise StationError(f"standard_offset_hours out of range: {standard_offset_hours}")
    return ts.astimezone(timezone(timedelta(hours=standard_offset_hours))).date()


def check_series(series_doc: Mapping[str, Any]) -> SettlementAlarm | None:
    """Check a `GET /series/{ticker}` body (or its `series` object) against the registry."""
    doc = series_doc.get("series", series_doc)
    ticker = str(doc.get("ticker", ""))
    try:
        station = station_for(ticker)
    except StationError:
        return SettlementAlarm(ticker or "<missing>", "ticker", ticker, "a registered series")
    sources = doc.get("settlement_sources")
    if not isinstance(sources, Sequence) or isinstance(sources, str) or not sources:
        return SettlementAlarm(station.series, "settlement_sources", repr(sources),
                               "a non-empty list naming the National Weather Service")
    for source in sources:
        name = str(source.get("name", "")) if isinstance(source, Mapping) else str(source)
        url = str(source.get("url", "")) if isinstance(source, Mapping) else ""
        if not any(n.lower() in name.lower() for n in _NWS_SOURCE_NAMES):
            return SettlementAlarm(station.series, "settlement_sources.name", name,
                                   "the National Weather Service")
        if "issuedby=" in url.lower():
            issued_by = url.lower().split("issuedby=", 1)[1].split("&", 1)[0].upper()
            if issued_by != station.cli_id:
                return SettlementAlarm(station.series, "settlement_sources.url", url,
                                       f"the CLI product issued by {station.cli_id}")
    return None


def check_market_rules(series: str, ticker: str, rules_primary: str) -> SettlementAlarm | None:
    """Check one market's `rules_primary` names the registered station and the NWS report."""
    station = station_for(series)
    if not any(p in rules_primary for p in station.rules_phrases):
        return SettlementAlarm(station.series, f"{ticker}.rules_primary", rules_primary[:160],
                               f"a rule naming {' or '.join(station.rules_phrases)}")
    if not any(d in rules_primary for d in _NWS_DOCUMENTS):
        return SettlementAlarm(station.series, f"{ticker}.rules_primary", rules_primary[:160],
                               "a rule settling on the NWS Daily Climate Report")
    return None
