"""The offline NWS stand-in of `eventdesk up --offline`: SIMULATED forecasts on 127.0.0.1.

Invariant: every answer is labelled simulated (``"simulated": true`` and a ``label`` in the JSON
body, an ``X-Eventdesk-Simulated: true`` header) and is computed from ``models.synthetic`` for the
same seeded events the paper exchange's synthetic liquidity lists, so the weather the trading flow
sees is consistent with the markets it trades. Shapes follow api.weather.gov where our client
reads them: ``/points/{lat},{lon}``, the raw ``/gridpoints/{wfo}/{x},{y}`` bundle (``updateTime``,
``maxTemperature`` and hourly ``temperature`` in ``wmoUnit:degC``) and ``/forecast``. Nothing here
is an NWS product.

Run: ``python -m deployments.nws_sim --host 127.0.0.1 --port 8766 --simulated [--seed 0]``.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.climate import STATIONS, Station, climate_day_of
from models.synthetic import SERIES, SIMULATED_LABEL, forecast_at, seeded_event, series_info

__all__ = ["DEFAULT_SEED", "build_app", "gridpoint_payload", "main"]

DEFAULT_SEED = 0  # the paper exchange's synthetic liquidity draws its events with seed 0
_GRID_X, _GRID_Y = 10, 20
_HEADERS = {"X-Eventdesk-Simulated": "true", "Cache-Control": "public, max-age=0, must-revalidate"}


def _stations() -> dict[str, Station]:
    """WFO -> station of every synthetic series (one series per forecast office)."""
    synthetic = {info.series_ticker for info in SERIES}
    return {s.wfo: s for s in STATIONS.values() if s.series in synthetic}


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _c(temp_f: float) -> float:
    return round((temp_f - 32.0) * 5.0 / 9.0, 3)


def gridpoint_payload(station: Station, now: datetime, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Return a raw gridpoint bundle whose daily max is the simulated forecast of each day.

    Covers yesterday, today and tomorrow (station climate days); the hourly temperature peaks at
    the simulated forecast high in the afternoon, so the hourly max equals the daily max.
    """
    info = series_info(station.series)
    today = climate_day_of(now, info.standard_offset_hours)
    maxima: list[dict[str, Any]] = []
    hourly: list[dict[str, Any]] = []
    days: list[dict[str, Any]] = []
    for offset in (-1, 0, 1):
        day: date = today + timedelta(days=offset)
        event = seeded_event(seed, info, day, open_not_after=now)
        forecast = forecast_at(event, now)
        start = event.climate_start_utc
        maxima.append({"validTime": f"{_iso(start + timedelta(hours=7))}/PT12H",
                       "value": _c(forecast.mean_f)})
        for hour in range(24):
            # a daily cycle: lowest at 05:00 local standard time, highest (= the mean) at 15:00
            swing = 0.5 * (1.0 + math.cos(math.pi * (hour - 15) / 10.0)) if hour >= 5 else 0.0
            temp_f = forecast.mean_f - 12.0 * (1.0 - swing)
            hourly.append({"validTime": f"{_iso(start + timedelta(hours=hour))}/PT1H",
                           "value": _c(temp_f)})
        days.append(forecast.as_dict())
    return {
        "simulated": True,
        "label": SIMULATED_LABEL,
        "properties": {
            "simulated": True,
            "label": SIMULATED_LABEL,
            "updateTime": _iso(now - timedelta(minutes=5)),
            "gridId": station.wfo,
            "gridX": _GRID_X,
            "gridY": _GRID_Y,
            "maxTemperature": {"uom": "wmoUnit:degC", "values": maxima},
            "temperature": {"uom": "wmoUnit:degC", "values": hourly},
            "simulatedForecasts": days,
        },
    }


def _problem(status: int, title: str, path: str) -> JSONResponse:
    body = {"simulated": True, "label": SIMULATED_LABEL, "title": title, "status": status,
            "detail": title, "instance": path}
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers=_HEADERS)


def build_app(seed: int = DEFAULT_SEED) -> Starlette:
    """Return the ASGI app of the simulated NWS (clock read per request: it is a live service)."""
    by_wfo = _stations()

    async def index(request: Request) -> Response:
        return JSONResponse({"simulated": True, "label": SIMULATED_LABEL, "seed": seed,
                             "offices": sorted(by_wfo)}, headers=_HEADERS)

    async def points(request: Request) -> Response:
        coords = request.path_params["coords"]
        for station in by_wfo.values():
            if coords == f"{station.lat:.4f},{station.lon:.4f}":
                base = f"{str(request.base_url).rstrip('/')}/gridpoints/{station.wfo}/"
                base += f"{_GRID_X},{_GRID_Y}"
                return JSONResponse({"simulated": True, "label": SIMULATED_LABEL, "properties": {
                    "simulated": True, "gridId": station.wfo, "gridX": _GRID_X,
                    "gridY": _GRID_Y, "forecast": f"{base}/forecast",
                    "forecastHourly": f"{base}/forecast/hourly", "forecastGridData": base,
                    "observationStations": f"{base}/stations", "timeZone": station.time_zone}},
                    media_type="application/geo+json", headers=_HEADERS)
        return _problem(404, f"no simulated station at {coords}", request.url.path)

    def _station(request: Request) -> Station | None:
        station = by_wfo.get(request.path_params["wfo"])
        if station is None or request.path_params["xy"] != f"{_GRID_X},{_GRID_Y}":
            return None
        return station

    async def gridpoint(request: Request) -> Response:
        station = _station(request)
        if station is None:
            return _problem(404, "no simulated gridpoint here", request.url.path)
        return JSONResponse(gridpoint_payload(station, datetime.now(UTC), seed),
                            media_type="application/geo+json", headers=_HEADERS)

    async def forecast(request: Request) -> Response:
        station = _station(request)
        if station is None:
            return _problem(404, "no simulated gridpoint here", request.url.path)
        now = datetime.now(UTC)
        grid = gridpoint_payload(station, now, seed)["properties"]
        periods = []
        for number, day in enumerate(grid["simulatedForecasts"][1:], start=1):
            start = datetime.fromisoformat(day["date"]).replace(tzinfo=UTC) + timedelta(hours=12)
            periods.append({"number": number, "name": day["date"], "isDaytime": True,
                            "startTime": _iso(start), "endTime": _iso(start + timedelta(hours=12)),
                            "temperature": day["high_f"], "temperatureUnit": "F",
                            "probabilityOfPrecipitation": {"unitCode": "wmoUnit:percent",
                                                           "value": None},
                            "shortForecast": f"SIMULATED high {day['high_f']}F",
                            "detailedForecast": SIMULATED_LABEL})
        return JSONResponse({"simulated": True, "label": SIMULATED_LABEL, "properties": {
            "simulated": True, "updateTime": grid["updateTime"], "generatedAt": _iso(now),
            "units": "us", "periods": periods}}, media_type="application/geo+json",
            headers=_HEADERS)

    return Starlette(routes=[
        Route("/", index),
        Route("/points/{coords}", points),
        Route("/gridpoints/{wfo}/{xy}", gridpoint),
        Route("/gridpoints/{wfo}/{xy}/forecast", forecast),
    ])


def main(argv: list[str] | None = None) -> int:
    """Serve the simulated NWS until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m deployments.nws_sim",
                                     description="SIMULATED NWS forecasts for the offline desk")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help="seed of the paper exchange's synthetic events (default 0)")
    parser.add_argument("--simulated", action="store_true",
                        help="required: acknowledges that every forecast served is simulated")
    args = parser.parse_args(argv)
    if not args.simulated:
        parser.error("--simulated is required: this server invents forecasts")
    sys.stdout.write(f"SIMULATED NWS stand-in on http://{args.host}:{args.port} "
                     f"(seed {args.seed})\n")
    sys.stdout.flush()
    uvicorn.run(build_app(args.seed), host=args.host, port=args.port, log_level="warning",
                access_log=False, lifespan="off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
