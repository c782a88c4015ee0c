"""Pure parsers of api.weather.gov JSON: points, raw gridpoints, forecasts, observations.

Invariant: every value leaves this module as a float in °F (or percent) attached to an aware UTC
interval; `validTime` intervals are expanded hour by hour before any max is taken; values that
are physically impossible are dropped and reported; a bundle whose `updateTime` is older than the
caller's limit, a missing layer, or a field of the wrong type is refused with `NwsParseError`
naming the field and value. Nothing here reads the clock: `as_of` is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from models.climate import climate_day_bounds_utc

__all__ = [
    "Alert",
    "ForecastPeriod",
    "GridLayer",
    "GridPoint",
    "Gridpoint",
    "NwsForecast",
    "NwsParseError",
    "Observation",
    "ObservationSet",
    "StaleForecastError",
    "StationInfo",
    "c_to_f",
    "climate_day_hourly_max_f",
    "grid_max_temperature_f",
    "hourly_values",
    "parse_alerts",
    "parse_forecast",
    "parse_gridpoint",
    "parse_iso_interval",
    "parse_metar_temperatures",
    "parse_observation",
    "parse_observations",
    "parse_points",
    "parse_stations",
    "running_max_f",
]

TEMP_MIN_F = -80.0  # below any US settlement station's record low
TEMP_MAX_F = 135.0  # above any US settlement station's record high


class NwsParseError(ValueError):
    """An NWS payload that cannot be used; `reason` names the field and value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StaleForecastError(NwsParseError):
    """A forecast bundle whose `updateTime` is older than the allowed age."""


def c_to_f(celsius: float) -> float:
    """Convert °C to °F without rounding."""
    return celsius * 9.0 / 5.0 + 32.0


def _mapping(doc: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise NwsParseError(f"{where} is {type(doc).__name__}, expected an object")
    return doc


def _properties(doc: Any, where: str) -> Mapping[str, Any]:
    props = _mapping(doc, where).get("properties")
    if not isinstance(props, Mapping):
        raise NwsParseError(f"{where}.properties missing (got {type(props).__name__})")
    return props


def _aware(text: Any, field: str) -> datetime:
    if not isinstance(text, str) or not text:
        raise NwsParseError(f"{field}={text!r} is not an ISO-8601 time")
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NwsParseError(f"{field}={text!r} is not an ISO-8601 time") from None
    if ts.tzinfo is None:
        raise NwsParseError(f"{field}={text!r} has no UTC offset")
    return ts.astimezone(UTC)


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NwsParseError(f"{field}={value!r} is a {type(value).__name__}, expected a number")
    return float(value)


_DURATION = re.compile(r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$")


def parse_iso_interval(text: str) -> tuple[datetime, datetime]:
    """Parse an ISO-8601 interval "start/PnDTnH" or "start/end" into aware UTC [start, end)."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise NwsParseError(f"validTime={text!r} is not an ISO-8601 interval")
    first, second = text.split("/")
    start = _aware(first, "validTime")
    if second.startswith("P"):
        m = _DURATION.match(second)
        if m is None or second in ("P", "PT"):
            raise NwsParseError(f"validTime={text!r} has an unreadable duration {second!r}")
        parts = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
        end = start + timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"],
                                seconds=parts["s"])
    else:
        end = _aware(second, "validTime")
    if end <= start:
        raise NwsParseError(f"validTime={text!r} is empty or reversed")
    return start, end


# --------------------------------------------------------------------------------------------
# /points


@dataclass(frozen=True)
class GridPoint:
    """Where a lat/lon sits on the forecast grid, and the URLs that serve it."""

    wfo: str
    x: int
    y: int
    forecast_url: str
    forecast_hourly_url: str
    grid_url: str
    stations_url: str
    time_zone: str


def parse_points(doc: Any) -> GridPoint:
    """Parse a `/points/{lat},{lon}` response."""
    p = _properties(doc, "points")
    fields = ("gridId", "gridX", "gridY", "forecast", "forecastHourly", "forecastGridData",
              "observationStations", "timeZone")
    for f in fields:
        if p.get(f) in (None, ""):
            raise NwsParseError(f"points.properties.{f} missing")
    for f in ("gridX", "gridY"):
        if isinstance(p[f], bool) or not isinstance(p[f], int):
            raise NwsParseError(f"points.properties.{f}={p[f]!r} is not an integer")
    return GridPoint(str(p["gridId"]), p["gridX"], p["gridY"], str(p["forecast"]),
                     str(p["forecastHourly"]), str(p["forecastGridData"]),
                     str(p["observationStations"]), str(p["timeZone"]))


# --------------------------------------------------------------------------------------------
# raw gridpoints


@dataclass(frozen=True)
class GridLayer:
    """One gridpoint layer: values (in °F for temperatures) on [start, end) UTC intervals."""

    name: str
    unit: str  # after conversion: "degF", "percent", "mm", ...
    values: tuple[tuple[datetime, datetime, float], ...]
    dropped: tuple[str, ...]


@dataclass(frozen=True)
class Gridpoint:
    """A raw gridpoint bundle (`/gridpoints/{wfo}/{x},{y}`) with its issue time."""

    update_time: datetime
    layers: Mapping[str, GridLayer]

    def layer(self, name: str) -> GridLayer:
        """Return a layer or raise NwsParseError naming it."""
        try:
            return self.layers[name]
        except KeyError:
            raise NwsParseError(f"gridpoint layer {name!r} missing") from None


_TEMPERATURE_LAYERS = {"temperature", "maxTemperature", "minTemperature", "dewpoint",
                       "apparentTemperature", "heatIndex", "windChill"}


def _unit(code: Any, field: str) -> str:
    if not isinstance(code, str) or ":" not in code:
        raise NwsParseError(f"{field}={code!r} is not a unit code")
    prefix, unit = code.split(":", 1)
    if prefix not in ("wmoUnit", "unit", "nwsUnit"):
        raise NwsParseError(f"{field}={code!r} has an unknown unit namespace")
    return unit


def _parse_layer(name: str, raw: Any) -> GridLayer:
    layer = _mapping(raw, f"gridpoint.{name}")
    unit = _unit(layer.get("uom"), f"{name}.uom")
    values_raw = layer.get("values")
    if not isinstance(values_raw, list):
        raise NwsParseError(f"{name}.values is {type(values_raw).__name__}, expected a list")
    out: list[tuple[datetime, datetime, float]] = []
    dropped: list[str] = []
    for i, item in enumerate(values_raw):
        item = _mapping(item, f"{name}.values[{i}]")
        start, end = parse_iso_interval(str(item.get("validTime")))
        value = _number(item.get("value"), f"{name}.values[{i}].value")
        if value is None:
            dropped.append(f"{name}[{i}] {item.get('validTime')}: value null")
            continue
        if name in _TEMPERATURE_LAYERS:
            if unit == "degC":
                value = c_to_f(value)
            elif unit != "degF":
                raise NwsParseError(f"{name}.uom={layer.get('uom')!r} is not a temperature unit")
            if not TEMP_MIN_F <= value <= TEMP_MAX_F:
                dropped.append(f"{name}[{i}] {item.get('validTime')}: impossible {value:.1f}°F")
                continue
        elif unit == "percent" and not 0 <= value <= 100:
            dropped.append(f"{name}[{i}] {item.get('validTime')}: impossible {value}%")
            continue
        out.append((start, end, value))
    converted = "degF" if name in _TEMPERATURE_LAYERS else unit
    return GridLayer(name, converted, tuple(out), tuple(dropped))


def parse_gridpoint(doc: Any, *, as_of: datetime, max_age: timedelta,
                    required: Sequence[str] = ("temperature", "maxTemperature")) -> Gridpoint:
    """Parse a raw gridpoint bundle; refuse it if stale at `as_of` or missing a required layer."""
    p = _properties(doc, "gridpoint")
    update_time = _aware(p.get("updateTime"), "gridpoint.updateTime")
    age = as_of - update_time
    if age > max_age:
        raise StaleForecastError(f"gridpoint.updateTime={p.get('updateTime')} is {age} old at "
                                 f"{as_of.isoformat()}, limit {max_age}")
    for name in required:
        if name not in p:
            raise NwsParseError(f"gridpoint layer {name!r} missing")
    layers = {}
    for name, raw in p.items():
        if isinstance(raw, Mapping) and "values" in raw and "uom" in raw:
            layers[name] = _parse_layer(name, raw)
    return Gridpoint(update_time, layers)


def hourly_values(layer: GridLayer) -> dict[datetime, float]:
    """Expand a layer's intervals into one value per UTC hour (merged hours are repeated)."""
    out: dict[datetime, float] = {}
    for start, end, value in layer.values:
        hour = start.replace(minute=0, second=0, microsecond=0)
        while hour < end:
            out[hour] = value
            hour += timedelta(hours=1)
    return out


def climate_day_hourly_max_f(grid: Gridpoint, day: date, standard_offset_hours: int) -> float:
    """Return the max of the expanded hourly temperature over the climate day."""
    start, end = climate_day_bounds_utc(day, standard_offset_hours)
    hours = {h: v for h, v in hourly_values(grid.layer("temperature")).items() if start <= h < end}
    if len(hours) < 24:
        raise NwsParseError(f"temperature layer covers {len(hours)}/24 hours of climate day {day}")
    return max(hours.values())


def grid_max_temperature_f(grid: Gridpoint, day: date, standard_offset_hours: int) -> float:
    """Return the NDFD daytime maxTemperature whose interval starts inside the climate day."""
    start, end = climate_day_bounds_utc(day, standard_offset_hours)
    hits = [v for s, _e, v in grid.layer("maxTemperature").values if start <= s < end]
    if not hits:
        raise NwsParseError(f"maxTemperature has no value starting in climate day {day}")
    return max(hits)


# --------------------------------------------------------------------------------------------
# /forecast and /forecast/hourly


@dataclass(frozen=True)
class ForecastPeriod:
    """One forecast period, temperature in °F."""

    start: datetime
    end: datetime
    is_daytime: bool
    temp_f: float
    pop_pct: float | None


@dataclass(frozen=True)
class NwsForecast:
    """A `/forecast` or `/forecast/hourly` bundle."""

    update_time: datetime
    generated_at: datetime | None
    periods: tuple[ForecastPeriod, ...]


def parse_forecast(doc: Any, *, as_of: datetime, max_age: timedelta) -> NwsForecast:
    """Parse a 12-hour or hourly forecast; refuse stale bundles and malformed periods."""
    p = _properties(doc, "forecast")
    update_time = _aware(p.get("updateTime"), "forecast.updateTime")
    if as_of - update_time > max_age:
        raise StaleForecastError(f"forecast.updateTime={p.get('updateTime')} is "
                                 f"{as_of - update_time} old, limit {max_age}")
    generated = p.get("generatedAt")
    raw_periods = p.get("periods")
    if not isinstance(raw_periods, list) or not raw_periods:
        raise NwsParseError(f"forecast.periods={raw_periods!r:.60} is empty or not a list")
    periods = []
    for i, raw in enumerate(raw_periods):
        per = _mapping(raw, f"periods[{i}]")
        where = f"periods[{i}]"
        start = _aware(per.get("startTime"), f"{where}.startTime")
        end = _aware(per.get("endTime"), f"{where}.endTime")
        temp = per.get("temperature")
        if isinstance(temp, bool) or not isinstance(temp, int | float):
            raise NwsParseError(f"{where}.temperature={temp!r} is not a number")
        unit = per.get("temperatureUnit")
        if unit == "C":
            temp_f = c_to_f(float(temp))
        elif unit == "F":
            temp_f = float(temp)
        else:
            raise NwsParseError(f"{where}.temperatureUnit={unit!r} is not F or C")
        if not TEMP_MIN_F <= temp_f <= TEMP_MAX_F:
            raise NwsParseError(f"{where}.temperature={temp!r}{unit} is impossible")
        if not isinstance(per.get("isDaytime"), bool):
            raise NwsParseError(f"{where}.isDaytime={per.get('isDaytime')!r} is not a boolean")
        pop_raw = per.get("probabilityOfPrecipitation")
        pop = None
        if isinstance(pop_raw, Mapping):
            pop = _number(pop_raw.get("value"), f"{where}.probabilityOfPrecipitation.value")
        periods.append(ForecastPeriod(start, end, per["isDaytime"], temp_f, pop))
    generated_at = _aware(generated, "forecast.generatedAt") if generated else None
    return NwsForecast(update_time, generated_at, tuple(periods))


# --------------------------------------------------------------------------------------------
# observations


@dataclass(frozen=True)
class Observation:
    """One station observation; temperatures in °F."""

    station: str
    timestamp: datetime
    temp_f: float | None  # METAR T-group (tenths °C) when present, else the JSON value
    json_temp_f: float | None
    max6h_f: float | None  # METAR remark 1snTTT: max of the last 6 hours
    max24h_f: float | None
    raw_message: str | None


@dataclass(frozen=True)
class ObservationSet:
    """Usable observations sorted by time, and why the others were rejected."""

    observations: tuple[Observation, ...]
    rejected: tuple[str, ...]


_T_GROUP = re.compile(r"\sT([01])(\d{3})(?:[01]\d{3})?(?=\s|$)")
_MAIN_TEMP = re.compile(r"\s(M?\d{2})/(M?\d{2})?(?=\s)")
_SIX_HOUR_MAX = re.compile(r"\s1([01])(\d{3})(?=\s|$)")
_METAR_HEAD = re.compile(r"^(?:METAR |SPECI )?[A-Z][A-Z0-9]{3} \d{6}Z\b")


def parse_metar_temperatures(raw: str) -> tuple[float | None, float | None]:
    """Return (temperature °F, 6-hour max °F) from a METAR; raise if it is not a METAR."""
    if not _METAR_HEAD.match(raw.strip()):
        raise NwsParseError(f"rawMessage={raw[:40]!r} is not a METAR")
    text = f" {raw.strip()} "
    temp_c: float | None = None
    if m := _T_GROUP.search(text):
        temp_c = (-1 if m.group(1) == "1" else 1) * int(m.group(2)) / 10
    elif m := _MAIN_TEMP.search(text):
        token = m.group(1)
        temp_c = -float(token[1:]) if token.startswith("M") else float(token)
    max6: float | None = None
    remarks = text.split(" RMK ", 1)
    if len(remarks) == 2 and (m := _SIX_HOUR_MAX.search(" " + remarks[1])):
        max6 = c_to_f((-1 if m.group(1) == "1" else 1) * int(m.group(2)) / 10)
    return (c_to_f(temp_c) if temp_c is not None else None), max6


def _quantity_f(q: Any, field: str) -> float | None:
    if q is None:
        return None
    q = _mapping(q, field)
    value = _number(q.get("value"), f"{field}.value")
    if value is None:
        return None
    unit = _unit(q.get("unitCode"), f"{field}.unitCode")
    if unit == "degC":
        return c_to_f(value)
    if unit == "degF":
        return value
    raise NwsParseError(f"{field}.unitCode={q.get('unitCode')!r} is not a temperature unit")


def parse_observation(feature: Any) -> Observation:
    """Parse one observation feature (or `/observations/latest`)."""
    p = _properties(feature, "observation")
    station = p.get("station")
    if not isinstance(station, str) or not station:
        raise NwsParseError(f"observation.station={station!r} missing")
    ts = _aware(p.get("timestamp"), "observation.timestamp")
    json_temp = _quantity_f(p.get("temperature"), "temperature")
    max24 = _quantity_f(p.get("maxTemperatureLast24Hours"), "maxTemperatureLast24Hours")
    raw = p.get("rawMessage")
    metar_temp = max6 = None
    if raw:
        if not isinstance(raw, str):
            raise NwsParseError(f"rawMessage={raw!r} is not text")
        metar_temp, max6 = parse_metar_temperatures(raw)
    temp = metar_temp if metar_temp is not None else json_temp
    for name, value in (("temperature", temp), ("temperature (JSON)", json_temp),
                        ("maxTemperatureLast24Hours", max24),
                        ("METAR 6-hour max", max6)):
        if value is not None and not TEMP_MIN_F <= value <= TEMP_MAX_F:
            raise NwsParseError(f"{name}={value:.1f}°F is impossible")
    if temp is None and max6 is None and max24 is None:
        raise NwsParseError("no temperature: JSON value null and no METAR temperature")
    return Observation(station.rsplit("/", 1)[-1], ts, temp, json_temp, max6, max24,
                       raw if isinstance(raw, str) else None)


def parse_observations(doc: Any) -> ObservationSet:
    """Parse `/stations/{id}/observations`; refuse it when no observation is usable."""
    features = _mapping(doc, "observations").get("features")
    if not isinstance(features, list) or not features:
        raise NwsParseError("observations.features is empty: no observations")
    obs: list[Observation] = []
    rejected: list[str] = []
    for i, feature in enumerate(features):
        try:
            obs.append(parse_observation(feature))
        except NwsParseError as exc:
            rejected.append(f"features[{i}]: {exc.reason}")
    if not obs:
        raise NwsParseError("no usable observation: " + "; ".join(rejected))
    return ObservationSet(tuple(sorted(obs, key=lambda o: o.timestamp)), tuple(rejected))


def running_max_f(
    observations: Sequence[Observation], start: datetime, end: datetime
) -> float | None:
    """Return the highest temperature or 6-hour max observed in [start, end), or None."""
    values = [v for o in observations if start <= o.timestamp < end
              for v in (o.temp_f, o.max6h_f) if v is not None]
    return max(values) if values else None


# --------------------------------------------------------------------------------------------
# station lists and alerts


@dataclass(frozen=True)
class StationInfo:
    """One observation station."""

    station_id: str
    name: str
    lat: float
    lon: float


def parse_stations(doc: Any) -> tuple[StationInfo, ...]:
    """Parse `/gridpoints/{wfo}/{x},{y}/stations` or `/stations`."""
    features = _mapping(doc, "stations").get("features")
    if not isinstance(features, list) or not features:
        raise NwsParseError("stations.features is empty")
    out = []
    for i, f in enumerate(features):
        p = _properties(f, f"stations.features[{i}]")
        coords = _mapping(_mapping(f, "feature").get("geometry"), f"features[{i}].geometry")
        lon, lat = coords.get("coordinates") or (None, None)
        out.append(StationInfo(str(p.get("stationIdentifier") or ""), str(p.get("name") or ""),
                               float(_number(lat, f"features[{i}].lat") or 0.0),
                               float(_number(lon, f"features[{i}].lon") or 0.0)))
        if not out[-1].station_id:
            raise NwsParseError(f"stations.features[{i}].stationIdentifier missing")
    return tuple(out)


@dataclass(frozen=True)
class Alert:
    """One active alert."""

    alert_id: str
    event: str
    headline: str
    severity: str
    message_type: str
    onset: datetime | None
    expires: datetime | None


def parse_alerts(doc: Any) -> tuple[Alert, ...]:
    """Parse `/alerts/active?...`; an empty list is a valid answer (no alerts)."""
    features = _mapping(doc, "alerts").get("features")
    if not isinstance(features, list):
        raise NwsParseError("alerts.features is not a list")
    out = []
    for i, f in enumerate(features):
        p = _properties(f, f"alerts.features[{i}]")
        if not p.get("id") or not p.get("event"):
            raise NwsParseError(f"alerts.features[{i}] lacks id or event")
        out.append(Alert(str(p["id"]), str(p["event"]), str(p.get("headline") or ""),
                         str(p.get("severity") or ""), str(p.get("messageType") or ""),
                         _aware(p["onset"], "onset") if p.get("onset") else None,
                         _aware(p["expires"], "expires") if p.get("expires") else None))
    return tuple(out)
