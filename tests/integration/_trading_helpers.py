"""Helpers of the trading tests: a paper exchange with synthetic liquidity, an NWS stand-in whose
gridpoint forecasts are consistent with the synthetic markets, settings that point at both, and a
fault counter wrapped around the exchange's ASGI app.

The NWS stand-in serves api.weather.gov's recorded shapes (``/points`` and raw ``/gridpoints``
with ``updateTime`` and a ``maxTemperature`` layer in ``wmoUnit:degC``), computed from
``models.synthetic.forecast_at`` of the same seeded events the liquidity agent lists, plus a
per-series bias the test controls (a forecast that disagrees with the market makes an edge).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kalshi.client import KalshiClient, RetryPolicy
from kalshi.paper.app import create_app
from kalshi.paper.exchange import PaperExchange
from kalshi.paper.liquidity import start_liquidity
from kalshi.paper.server import serve_in_thread
from kalshi.signing import KalshiAuth, generate_private_key, private_key_pem
from models.climate import STATIONS, climate_day_of
from models.liquidity import MakerConfig, TakerConfig
from models.synthetic import SERIES, forecast_at, seeded_event, series_info
from tests.integration.conftest import http, register_key

SEED = 11
KEY_ID = "trader-key"
OTHER_KEY_ID = "other-trader-key"
_OTHER_KEY = generate_private_key()
BALANCE_CENTS = 1_000_000


@dataclass
class NwsScript:
    """What the synthetic NWS serves: a bias per series, stale or missing series."""

    seed: int = SEED
    bias_f: dict[str, float] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    hits: Counter[str] = field(default_factory=Counter)


def _series_by_wfo() -> dict[str, str]:
    return {s.wfo: s.series for s in STATIONS.values() if s.series.startswith("KXHIGH")}


def points_endpoint(hits: Counter[str]) -> Callable[[Request], Awaitable[Response]]:
    """api.weather.gov's ``/points/{lat},{lon}`` for the weather stations, counting its hits."""
    by_wfo = _series_by_wfo()

    async def points(request: Request) -> Response:
        lat_s, lon_s = request.path_params["coords"].split(",")
        hits["points"] += 1
        for s in STATIONS.values():
            if f"{s.lat:.4f}" == lat_s and f"{s.lon:.4f}" == lon_s and s.series in by_wfo.values():
                base = f"{request.base_url}gridpoints/{s.wfo}/10,20"
                return JSONResponse({"properties": {
                    "gridId": s.wfo, "gridX": 10, "gridY": 20, "forecast": f"{base}/forecast",
                    "forecastHourly": f"{base}/forecast/hourly", "forecastGridData": base,
                    "observationStations": f"{base}/stations", "timeZone": s.time_zone}},
                    media_type="application/geo+json")
        return JSONResponse({"title": "Not Found", "status": 404}, status_code=404,
                            media_type="application/problem+json")

    return points


def synthetic_gridpoint(info: Any, seed: int, bias_f: float, now: datetime,
                        updated: datetime) -> Response:
    """A raw ``/gridpoints`` maxTemperature answer for yesterday, today and tomorrow's seeded
    events of a synthetic series, as forecast at `now` (+ `bias_f`), updated at `updated`."""
    values = []
    today = climate_day_of(now, info.standard_offset_hours)
    for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
        event = seeded_event(seed, info, day, open_not_after=now)
        mean_f = forecast_at(event, now).mean_f + bias_f
        start = event.climate_start_utc + timedelta(hours=7)
        values.append({"validTime": f"{start.strftime('%Y-%m-%dT%H:%M:%S+00:00')}/PT12H",
                       "value": (mean_f - 32.0) * 5.0 / 9.0})
    return JSONResponse({"properties": {
        "updateTime": updated.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "maxTemperature": {"uom": "wmoUnit:degC", "values": values}}},
        media_type="application/geo+json",
        headers={"Cache-Control": "public, max-age=0, must-revalidate"})


def build_synthetic_nws(script: NwsScript) -> Starlette:
    """Return an ASGI app serving gridpoint forecasts of the synthetic events."""
    by_wfo = _series_by_wfo()

    points = points_endpoint(script.hits)

    async def gridpoint(request: Request) -> Response:
        series = by_wfo.get(request.path_params["wfo"])
        script.hits["gridpoints"] += 1
        if series is None or series in script.missing:
            return JSONResponse({"title": "Unexpected Problem", "status": 500}, status_code=500,
                                media_type="application/problem+json")
        now = datetime.now(UTC)
        info = series_info(series)
        updated = now - (timedelta(days=2) if series in script.stale else timedelta(minutes=5))
        return synthetic_gridpoint(info, script.seed, script.bias_f.get(series, 0.0), now,
                                   updated)

    return Starlette(routes=[Route("/points/{coords}", points),
                             Route("/gridpoints/{wfo}/{xy}", gridpoint)])


class FaultCounter:
    """ASGI wrapper counting the faults the paper exchange injects (503, 429, dropped acks)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if status == 503 and b"injected fault" in body:
                    self.counts["5xx"] += 1
                elif status == 429:
                    self.counts["429"] += 1
                elif message.get("more_body") and body == b"{":
                    self.counts["dropped_ack"] += 1
            await send(message)

        await self.app(scope, receive, watch)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Venue:
    """A running paper exchange with synthetic liquidity and the synthetic NWS."""

    root: str
    exchange: PaperExchange
    faults_seen: FaultCounter
    nws_url: str
    nws: NwsScript
    key_path: Path
    data_dir: Path
    liquidity: Any
    key_id: str = KEY_ID
    series: list[str] = field(default_factory=list)

    def new_account(self, key_id: str, folder: Path) -> None:
        """Trade from now on as a fresh, funded account (no orders, fills or positions yet)."""
        key = generate_private_key()
        path = folder / f"{key_id}.pem"
        path.write_bytes(private_key_pem(key))
        os.chmod(path, 0o600)
        register_key(f"{self.root}/operator", key_id, key, balance_cents=BALANCE_CENTS)
        self.key_id, self.key_path = key_id, path

    @property
    def base_url(self) -> str:
        return f"{self.root}/trade-api/v2"

    def set_faults(self, **values: Any) -> None:
        with http(timeout=30) as client:
            response = client.post(f"{self.root}/operator/faults", json=values)
        assert response.status_code == 200, response.text

    def client(self, *, retries: int = 4) -> KalshiClient:
        from kalshi.signing import load_private_key

        key = load_private_key(self.key_path)
        return KalshiClient(self.base_url, KalshiAuth(self.key_id, key), timeout=5,
                            backoff=RetryPolicy(max_retries=retries, base_s=0.005, cap_s=0.02))

    def other_client(self) -> KalshiClient:
        """A client of another funded account (a competing trader)."""
        return KalshiClient(self.base_url, KalshiAuth(OTHER_KEY_ID, _OTHER_KEY), timeout=5)

    def env(self, db_url: str, **extra: str) -> dict[str, str]:
        values = {
            "EVENTDESK_ENV": "paper", "EVENTDESK_KALSHI_BASE_URL": self.base_url,
            "EVENTDESK_KALSHI_KEY_ID": self.key_id,
            "EVENTDESK_KALSHI_PRIVATE_KEY_PATH": str(self.key_path),
            "EVENTDESK_KALSHI_TIER": "prime", "EVENTDESK_DATABASE_URL": db_url,
            "EVENTDESK_DATA_DIR": str(self.data_dir), "EVENTDESK_NWS_BASE_URL": self.nws_url,
            "EVENTDESK_KALSHI_TIMEOUT_S": "5",
        }
        values.update(extra)
        return values

    def refresh_books(self, seconds: float = 1.0) -> None:
        """Let the synthetic market makers requote for a while, then hold the books still."""
        self.liquidity = _start_liquidity(self.exchange, **_LIQUIDITY_OPTS, series=self.series)
        time.sleep(seconds)
        self.stop_liquidity()

    def stop_liquidity(self) -> None:
        self.liquidity.stop()
        time.sleep(0.2)

    def volumes_ready(self, minimum: int) -> bool:
        engine = self.exchange.engine
        return all(engine.market(t).volume >= minimum for t in self.exchange.market_tickers())


_LIQUIDITY_OPTS: dict[str, Any] = {
    "seed": SEED, "interval_s": 0.02,
    "maker": MakerConfig(ttl_ms=3_600_000, noise_sd_cents=0.0),
    "taker": TakerConfig(prob_per_step=0.6, max_size=5),
}


def _start_liquidity(exchange: PaperExchange, **opts: Any) -> Any:
    async def start() -> Any:
        return start_liquidity(exchange, "synthetic", **opts)

    loop = exchange._loop  # the exchange's event loop (uvicorn's thread)
    assert loop is not None
    return asyncio.run_coroutine_threadsafe(start(), loop).result(10)


@contextmanager
def trading_venue(tmp: Path, *, series: list[str] | None = None,
                  min_volume: int = 20) -> Iterator[Venue]:
    """Serve a paper exchange with synthetic liquidity and the synthetic NWS on loopback."""
    exchange = PaperExchange(tmp / "exchange.sqlite", seed=SEED, synchronous="NORMAL")
    counter = FaultCounter(create_app(exchange))
    script = NwsScript()
    key = generate_private_key()
    key_path = tmp / "trader.pem"
    key_path.write_bytes(private_key_pem(key))
    os.chmod(key_path, 0o600)
    with serve_in_thread(counter) as root, serve_in_thread(build_synthetic_nws(script)) as nws:
        register_key(f"{root}/operator", KEY_ID, key, balance_cents=BALANCE_CENTS)
        register_key(f"{root}/operator", OTHER_KEY_ID, _OTHER_KEY, balance_cents=BALANCE_CENTS)
        chosen = series or [s.series_ticker for s in SERIES]
        handle = _start_liquidity(exchange, **_LIQUIDITY_OPTS, series=chosen)
        deadline = time.monotonic() + 30
        while not (exchange.market_tickers() and
                   all(exchange.engine.market(t).volume >= min_volume
                       for t in exchange.market_tickers())):
            assert time.monotonic() < deadline, "synthetic liquidity did not trade in 30 s"
            time.sleep(0.05)
        venue = Venue(root, exchange, counter, nws, script, key_path, tmp / "data", handle,
                      series=chosen)
        try:
            yield venue
        finally:
            handle.stop()
    exchange.close()
