"""Synthetic KXHIGH weather markets, their simulated truth and a simulated forecast.

Invariant: the six markets of a synthetic event partition the integers exactly once (every whole
degree Fahrenheit lies in exactly one bracket), and the event settles from its simulated "true"
Daily Climate Report high by the same bracket rule Kalshi publishes (``less``: X < cap,
``between``: floor <= X <= cap, ``greater``: X > floor). Pure: time (``as_of``) and randomness
(``random.Random``) are passed in; nothing here reads a clock, the environment or a file.

Everything produced here is SIMULATED: the climatology is an approximation of NOAA 1991-2020 monthly
normal highs, the truth is a random draw around it, and the forecast is derived from that truth.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from models.climate import Station, climate_day_bounds_utc, climate_day_of, station_for
from models.money import fp_from_contracts

__all__ = [
    "SERIES",
    "SeriesInfo",
    "SyntheticMarket",
    "SyntheticEvent",
    "SimulatedForecast",
    "series_info",
    "event_ticker_for",
    "bracket_markets",
    "draw_event",
    "seeded_event",
    "synthetic_events",
    "forecast_at",
    "bracket_probability",
    "settle_event",
    "series_dict",
    "market_dict",
    "event_payload",
]

StrikeType = Literal["less", "between", "greater"]
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
SIMULATED_LABEL = "SIMULATED (eventdesk synthetic liquidity; not an NWS product)"


@dataclass(frozen=True)
class SeriesInfo:
    """One KXHIGH series: its settlement station, CLI product and simulated climatology."""

    series_ticker: str
    city: str
    station_name: str  # as Kalshi's rules name it
    normal_high_f: tuple[float, ...]  # 12 approximate monthly normal highs, Jan..Dec
    daily_sd_f: float  # spread of the daily high around the normal

    def __post_init__(self) -> None:
        if len(self.normal_high_f) != 12:
            raise ValueError(f"{self.series_ticker}: normal_high_f needs 12 months "
                             f"(got {len(self.normal_high_f)})")

    @property
    def station(self) -> Station:
        """The registered settlement station (``models.climate``): ids, office, offset."""
        return station_for(self.series_ticker)

    @property
    def station_id(self) -> str:
        """ICAO id of the settlement station, e.g. ``KNYC``."""
        return self.station.icao

    @property
    def standard_offset_hours(self) -> int:
        """Local standard time offset from UTC: the climate day's clock."""
        return self.station.standard_offset_hours

    @property
    def cli_product(self) -> str:
        """The Daily Climate Report product code, e.g. ``CLINYC``."""
        return f"CLI{self.station.cli_id}"

    @property
    def settlement_url(self) -> str:
        """The human URL Kalshi cites for the series' settlement source."""
        return (f"https://forecast.weather.gov/product.php?site={self.station.wfo}&product=CLI"
                f"&issuedby={self.station.cli_id}")


# Station ids, offices and offsets come from the registry in models.climate (Chicago is Midway,
# Austin is Bergstrom); normals: approximate NOAA 1991-2020 monthly means of the daily high.
SERIES: tuple[SeriesInfo, ...] = (
    SeriesInfo("KXHIGHNY", "NYC", "Central Park, New York",
               (39.5, 42.2, 49.9, 61.8, 71.4, 79.7, 84.9, 83.3, 76.2, 64.5, 54.0, 44.3), 7.0),
    SeriesInfo("KXHIGHCHI", "Chicago", "Chicago Midway, IL",
               (32.8, 36.8, 48.3, 60.8, 72.1, 82.0, 85.9, 84.0, 77.6, 64.5, 49.8, 37.4), 9.0),
    SeriesInfo("KXHIGHMIA", "Miami", "Miami International Airport, FL",
               (76.2, 78.3, 80.4, 83.4, 86.7, 89.4, 90.7, 91.0, 89.3, 86.0, 81.4, 78.0), 3.0),
    SeriesInfo("KXHIGHAUS", "Austin", "Austin Bergstrom International Airport, TX",
               (62.0, 66.0, 73.0, 80.0, 87.0, 93.0, 96.0, 97.0, 91.0, 82.0, 71.0, 63.0), 6.5),
    SeriesInfo("KXHIGHLAX", "Los Angeles", "Los Angeles Airport, CA",
               (65.7, 65.4, 66.3, 68.3, 69.7, 72.4, 75.3, 76.6, 76.5, 73.9, 70.3, 65.8), 4.5),
    SeriesInfo("KXHIGHDEN", "Denver", "Denver International Airport, CO",
               (45.0, 46.0, 55.0, 61.0, 71.0, 82.0, 89.0, 86.0, 79.0, 65.0, 53.0, 44.0), 9.0),
    SeriesInfo("KXHIGHPHIL", "Philadelphia", "Philadelphia International Airport, PA",
               (41.0, 44.0, 53.0, 64.0, 74.0, 83.0, 88.0, 86.0, 79.0, 67.0, 56.0, 45.0), 7.0),
)


@dataclass(frozen=True)
class SyntheticMarket:
    """One bracket: YES wins when the integer high lies in ``low_f..high_f`` (None = open)."""

    ticker: str
    strike_type: StrikeType
    floor_strike: int | None
    cap_strike: int | None
    low_f: int | None
    high_f: int | None

    def __post_init__(self) -> None:
        shapes = {"less": (False, True), "between": (True, True), "greater": (True, False)}
        floor_needed, cap_needed = shapes[self.strike_type]
        if (self.floor_strike is not None) != floor_needed or (
                self.cap_strike is not None) != cap_needed:
            raise ValueError(f"{self.ticker}: strikes do not fit strike_type "
                             f"{self.strike_type!r} (floor={self.floor_strike}, "
                             f"cap={self.cap_strike})")

    def contains(self, value_f: int) -> bool:
        """Apply Kalshi's strike rule to a whole-degree CLI value."""
        floor, cap = self.floor_strike, self.cap_strike
        if self.strike_type == "less" and cap is not None:
            return value_f < cap
        if self.strike_type == "greater" and floor is not None:
            return value_f > floor
        if floor is not None and cap is not None:
            return floor <= value_f <= cap
        raise ValueError(f"{self.ticker}: incomplete strikes")  # unreachable after __post_init__

    @property
    def yes_sub_title(self) -> str:
        """The displayed bracket, e.g. ``57° to 58°`` or ``56° or below``."""
        if self.strike_type == "less":
            return f"{self.high_f}° or below"
        if self.strike_type == "greater":
            return f"{self.low_f}° or above"
        return f"{self.low_f}° to {self.high_f}°"


@dataclass(frozen=True)
class SyntheticEvent:
    """One climate day of one series: brackets, trading window and the simulated truth."""

    series: SeriesInfo
    event_ticker: str
    day: date
    climate_start_utc: datetime
    climate_end_utc: datetime
    open_time_utc: datetime
    close_time_utc: datetime
    centre_f: int
    markets: tuple[SyntheticMarket, ...]
    true_high_f: int
    forecast_z: float  # standardised forecast error, fixed per event so forecasts converge


@dataclass(frozen=True)
class SimulatedForecast:
    """A simulated point forecast of the CLI high with its uncertainty, labelled as simulated."""

    event_ticker: str
    station_id: str
    day: date
    issued_at: datetime
    lead_hours: float
    mean_f: float
    sd_f: float
    label: str = SIMULATED_LABEL

    @property
    def high_f(self) -> int:
        """The point forecast rounded to a whole degree, as NWS publishes it."""
        return int(math.floor(self.mean_f + 0.5))

    def as_dict(self) -> dict[str, Any]:
        """Return plain JSON values for a local NWS stand-in; ``simulated`` is always true."""
        return {
            "simulated": True,
            "label": self.label,
            "event_ticker": self.event_ticker,
            "station_id": self.station_id,
            "date": self.day.isoformat(),
            "issued_at": self.issued_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lead_hours": round(self.lead_hours, 3),
            "high_f": self.high_f,
            "mean_f": round(self.mean_f, 2),
            "sd_f": round(self.sd_f, 2),
        }


def series_info(series_ticker: str) -> SeriesInfo:
    """Return the station table entry of a KXHIGH series, or raise naming the ticker."""
    for info in SERIES:
        if info.series_ticker == series_ticker:
            return info
    raise ValueError(f"series_ticker: unknown synthetic series {series_ticker!r}")


def _require_utc(as_of: datetime, field: str = "as_of") -> None:
    if as_of.tzinfo is None or as_of.utcoffset() != timedelta(0):
        raise ValueError(f"{field}: must be timezone-aware UTC (got {as_of!r})")


def event_ticker_for(series_ticker: str, day: date) -> str:
    """Return Kalshi's event ticker, e.g. ``KXHIGHNY-26NOV22``."""
    return f"{series_ticker}-{day.year % 100:02d}{_MONTHS[day.month - 1]}{day.day:02d}"


def _normal_high_f(info: SeriesInfo, day: date) -> float:
    # linear interpolation between mid-month normals (day 15 of each month)
    anchor = date(day.year, day.month, 15)
    step = 1 if day >= anchor else -1
    other_month = (day.month - 1 + step) % 12 + 1
    other_year = day.year + (1 if day.month == 12 and step == 1 else 0) - (
        1 if day.month == 1 and step == -1 else 0)
    other = date(other_year, other_month, 15)
    weight = (day - anchor).days / (other - anchor).days
    a, b = info.normal_high_f[day.month - 1], info.normal_high_f[other_month - 1]
    return a + (b - a) * weight


def bracket_markets(event_ticker: str, centre_f: int) -> tuple[SyntheticMarket, ...]:
    """Return Kalshi's six brackets: a low tail, four 2°F brackets from centre-4, a high tail."""
    lowest = centre_f - 4
    markets = [SyntheticMarket(f"{event_ticker}-T{lowest}", "less", None, lowest, None, lowest - 1)]
    for floor in range(lowest, lowest + 8, 2):
        markets.append(SyntheticMarket(f"{event_ticker}-B{floor}.5", "between", floor, floor + 1,
                                       floor, floor + 1))
    top = lowest + 7
    markets.append(SyntheticMarket(f"{event_ticker}-T{top}", "greater", top, None, top + 1, None))
    return tuple(markets)


def draw_event(info: SeriesInfo, day: date, rng: random.Random, *,
               open_not_after: datetime | None = None) -> SyntheticEvent:
    """Draw one event's simulated true high (normal around climatology) and build its brackets.

    Kalshi opens an event at 10:00 standard time the day before; ``open_not_after`` moves the
    opening earlier (e.g. to "now") so a freshly generated event is tradable at once.
    """
    start, end = climate_day_bounds_utc(day, info.standard_offset_hours)
    normal = _normal_high_f(info, day)
    centre = int(math.floor(normal + 0.5))
    true_high = int(math.floor(normal + rng.gauss(0.0, info.daily_sd_f) + 0.5))
    forecast_z = rng.gauss(0.0, 1.0)
    ticker = event_ticker_for(info.series_ticker, day)
    open_time = start - timedelta(hours=14)
    if open_not_after is not None:
        _require_utc(open_not_after, "open_not_after")
        open_time = min(open_time, open_not_after.replace(second=0, microsecond=0))
    return SyntheticEvent(info, ticker, day, start, end, open_time, end - timedelta(minutes=1),
                          centre, bracket_markets(ticker, centre), true_high, forecast_z)


def seeded_event(seed: int, info: SeriesInfo, day: date, *,
                 open_not_after: datetime | None = None) -> SyntheticEvent:
    """Draw an event from an RNG named by (seed, series, day): the same truth on every restart."""
    rng = random.Random(f"{seed}:{info.series_ticker}:{day.isoformat()}")
    return draw_event(info, day, rng, open_not_after=open_not_after)


def synthetic_events(as_of: datetime, rng: random.Random,
                     series: tuple[SeriesInfo, ...] = SERIES) -> list[SyntheticEvent]:
    """Return today's and tomorrow's events (station climate days) for each series, open now."""
    _require_utc(as_of)
    events = []
    for info in series:
        today = climate_day_of(as_of, info.standard_offset_hours)
        for day in (today, today + timedelta(days=1)):
            events.append(draw_event(info, day, rng, open_not_after=as_of))
    return events


def _forecast_sd_f(lead_hours: float) -> float:
    # typical NWS day-1 error ~2.5-3°F, growing ~0.5°F per extra day; floor once the day is over
    return max(0.6, 1.0 + 0.075 * lead_hours)


def forecast_at(event: SyntheticEvent, as_of: datetime) -> SimulatedForecast:
    """Return the simulated forecast issued at ``as_of``, converging on the truth with lead time.

    The forecast error is ``forecast_z * sd(lead)``: the truth is always a plausible draw from the
    forecast distribution, and the mean tends to the truth as the climate day ends.
    """
    _require_utc(as_of)
    lead_hours = max(0.0, (event.climate_end_utc - as_of).total_seconds() / 3600.0)
    sd = _forecast_sd_f(lead_hours)
    mean = event.true_high_f + event.forecast_z * sd
    return SimulatedForecast(event.event_ticker, event.series.station_id, event.day, as_of,
                             lead_hours, mean, sd)


def _normal_cdf(x: float, mean: float, sd: float) -> float:
    return 0.5 * (1.0 + math.erf((x - mean) / (sd * math.sqrt(2.0))))


def bracket_probability(market: SyntheticMarket, forecast: SimulatedForecast) -> float:
    """Return P(YES) = F(b + 0.5) - F(a - 0.5) under the forecast's normal distribution."""
    upper = 1.0 if market.high_f is None else _normal_cdf(
        market.high_f + 0.5, forecast.mean_f, forecast.sd_f)
    lower = 0.0 if market.low_f is None else _normal_cdf(
        market.low_f - 0.5, forecast.mean_f, forecast.sd_f)
    return min(1.0, max(0.0, upper - lower))


def settle_event(event: SyntheticEvent) -> dict[str, Literal["yes", "no"]]:
    """Return each market's result from the simulated true high."""
    return {m.ticker: ("yes" if m.contains(event.true_high_f) else "no") for m in event.markets}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _long_date(day: date) -> str:
    return day.strftime("%B %d, %Y")


def series_dict(info: SeriesInfo) -> dict[str, Any]:
    """Return a ``GET /series/{ticker}`` series object (current shape) for the synthetic series."""
    return {
        "ticker": info.series_ticker,
        "frequency": "daily",
        "title": f"Highest temperature in {info.city}",
        "category": "Climate and Weather",
        "categories": ["Climate and Weather"],
        "tags": ["Daily temperature"],
        "settlement_sources": [{"name": "National Weather Service", "url": info.settlement_url}],
        "contract_url": "",
        "contract_terms_url": "",
        "fee_type": "quadratic",
        "fee_multiplier": 1,
        "additional_prohibitions": [],
        "product_metadata": {"simulated": True, "station_id": info.station_id,
                             "cli_product": info.cli_product, "label": SIMULATED_LABEL},
    }


def _condition(market: SyntheticMarket) -> str:
    if market.strike_type == "less":
        return f"less than {market.cap_strike}°"
    if market.strike_type == "greater":
        return f"greater than {market.floor_strike}°"
    return f"between {market.floor_strike}-{market.cap_strike}°"


def market_dict(event: SyntheticEvent, market: SyntheticMarket, as_of: datetime) -> dict[str, Any]:
    """Return a current-shape ``Market`` object (dollar strings, fixed-point counts)."""
    _require_utc(as_of)
    info = event.series
    when = _long_date(event.day)
    rules = (f"If the highest temperature recorded at {info.station_name} ({info.station_id}) "
             f"for {when} as reported by the National Weather Service's Climatological Report "
             f"(Daily) {info.cli_product}, is {_condition(market)}, then the market resolves "
             f"to Yes.")
    secondary = (f"The climate day is midnight to midnight local standard time (UTC"
                 f"{info.standard_offset_hours:+d}). SIMULATED market: the result comes from a "
                 f"simulated report, not the NWS.")
    if as_of < event.open_time_utc:
        status = "initialized"
    elif as_of < event.close_time_utc:
        status = "active"
    else:
        status = "closed"
    expected = event.climate_end_utc + timedelta(hours=9)
    payload: dict[str, Any] = {
        "ticker": market.ticker,
        "event_ticker": event.event_ticker,
        "market_type": "binary",
        "title": f"Will the high temp in {info.city} be {market.yes_sub_title} on {when}?",
        "subtitle": market.yes_sub_title,
        "yes_sub_title": market.yes_sub_title,
        "no_sub_title": market.yes_sub_title,
        "created_time": _iso(event.open_time_utc),
        "updated_time": _iso(event.open_time_utc),
        "open_time": _iso(event.open_time_utc),
        "close_time": _iso(event.close_time_utc),
        "expected_expiration_time": _iso(expected),
        "expiration_time": _iso(expected + timedelta(days=6)),
        "latest_expiration_time": _iso(expected + timedelta(days=6)),
        "occurrence_datetime": _iso(event.climate_start_utc),
        "settlement_timer_seconds": 3600,
        "status": status,
        "yes_bid_dollars": "0.0000",
        "yes_bid_size_fp": fp_from_contracts(0),
        "yes_ask_dollars": "1.0000",
        "yes_ask_size_fp": fp_from_contracts(0),
        "no_bid_dollars": "0.0000",
        "no_ask_dollars": "1.0000",
        "last_price_dollars": "0.0000",
        "volume_fp": fp_from_contracts(0),
        "volume_24h_fp": fp_from_contracts(0),
        "open_interest_fp": fp_from_contracts(0),
        "notional_value_dollars": "1.0000",
        "previous_yes_bid_dollars": "0.0000",
        "previous_yes_ask_dollars": "0.0000",
        "previous_price_dollars": "0.0000",
        "liquidity_dollars": "0.0000",
        "result": "",
        "can_close_early": True,
        "expiration_value": "",
        "settlement_bounds_type": "default",
        "strike_type": market.strike_type,
        "rules_primary": rules,
        "rules_secondary": secondary,
        "price_level_structure": "linear_cent",
        "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
        "response_price_units": "usd_cent",
    }
    if market.floor_strike is not None:
        payload["floor_strike"] = market.floor_strike
    if market.cap_strike is not None:
        payload["cap_strike"] = market.cap_strike
    return payload


def event_payload(event: SyntheticEvent, as_of: datetime) -> dict[str, Any]:
    """Return a current-shape ``GET /events/{ticker}`` body: {"event": ..., "markets": [...]}."""
    info = event.series
    return {
        "event": {
            "event_ticker": event.event_ticker,
            "series_ticker": info.series_ticker,
            "sub_title": f"On {event.day.strftime('%b')} {event.day.day}, {event.day.year}",
            "title": f"Highest temperature in {info.city} on {_long_date(event.day)}?",
            "collateral_return_type": "MECNET",
            "mutually_exclusive": True,
            "category": "Climate and Weather",
            "strike_date": _iso(event.close_time_utc),
            "settlement_sources": [{"name": "National Weather Service",
                                    "url": info.settlement_url}],
            "product_metadata": {"simulated": True},
        },
        "markets": [market_dict(event, m, as_of) for m in event.markets],
    }
