"""NWS ingestion: a cached, polite `requests` client for api.weather.gov and its Prefect tasks.

Invariant: every request carries the configured User-Agent (with contact) and
`Accept: application/geo+json`; only 200 responses are ever cached (`allowable_codes=(200,)`);
forecasts honour Cache-Control/Expires and revalidate with If-Modified-Since; `/points` is cached
for days; 500/503 and network errors are retried with backoff, "Forecast Grid Expired" and 403
are not (a 403 explains the User-Agent rule). Parsing is done by the pure `models.nws`.
A `/points` answer read from the network or the disk cache is also kept in process memory for
`POINTS_MEMO_TTL` (per cache file and URL), so a trading cycle does not pay a cache-file lookup
per station; the disk cache stays the authority (the memo is much shorter than its 7 days).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import requests_cache
from prefect import task

from models.nws import (
    GridPoint,
    NwsForecast,
    ObservationSet,
    parse_forecast,
    parse_observations,
    parse_points,
)
from tasks.settings import Settings, load_settings

__all__ = [
    "FetchedDoc",
    "NwsClient",
    "NwsError",
    "NwsForbiddenError",
    "NwsGridExpiredError",
    "NwsHttpError",
    "NwsTransientError",
    "fetch_forecast_snapshot",
    "nws_client",
    "record_nws_snapshot",
]

log = logging.getLogger(__name__)

POINTS_TTL = timedelta(days=7)
POINTS_MEMO_TTL = timedelta(hours=1)
_POINTS_MEMO: dict[tuple[str, str], tuple[float, GridPoint, FetchedDoc]] = {}
_POINTS_MEMO_LOCK = threading.Lock()
RETRY_STATUSES = (500, 502, 503, 504)


class NwsError(Exception):
    """Base of NWS client errors; carries the URL and status, never headers."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(f"{message} ({status or 'no status'} from {url})")
        self.url = url
        self.status = status


class NwsTransientError(NwsError):
    """500/502/503/504 or a network failure that outlived the retries: try again later."""


class NwsGridExpiredError(NwsError):
    """503 "Forecast Grid Expired": the office grid is stale; use another source, alert."""


class NwsForbiddenError(NwsError):
    """403: api.weather.gov requires a User-Agent identifying the app and a contact."""


class NwsHttpError(NwsError):
    """Any other non-200 answer (400 unknown parameter, 404 unknown id, ...)."""


@dataclass(frozen=True)
class FetchedDoc:
    """One fetched JSON document with when and how it was obtained (for the archive)."""

    url: str
    fetched_at: datetime
    from_cache: bool
    payload: Any


def _problem_title(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:120]
    if isinstance(body, Mapping):
        return str(body.get("title") or body.get("detail") or "")
    return ""


class NwsClient:
    """api.weather.gov over requests-cache; `base_url` points at the real service or a stand-in."""

    def __init__(self, base_url: str, user_agent: str, cache_dir: Path, *,
                 retries: int = 4, backoff_s: float = 1.0, timeout_s: float = 15.0,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if not user_agent.strip() or "(" not in user_agent:
            raise ValueError(f"nws_user_agent={user_agent!r} must name the app and a contact, "
                             "e.g. 'eventdesk/0.1 (ops@example.org)'")
        self.base_url = base_url.rstrip("/")
        self._retries, self._backoff_s, self._timeout_s = retries, backoff_s, timeout_s
        self._sleep, self._now = sleep, now
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._points_cache = str((cache_dir / "nws_points_cache.sqlite").resolve())
        headers = {"User-Agent": user_agent, "Accept": "application/geo+json"}
        # forecasts: the server's Cache-Control/Expires decide; without them, store and
        # revalidate every time (If-Modified-Since / ETag); errors are never stored
        self.session = requests_cache.CachedSession(
            str(cache_dir / "nws_http_cache.sqlite"), backend="sqlite", cache_control=True,
            expire_after=requests_cache.EXPIRE_IMMEDIATELY, allowable_codes=(200,),
            allowable_methods=("GET",), stale_if_error=False)
        # /points mappings change rarely: keep them for days whatever the headers say
        self.points_session = requests_cache.CachedSession(
            str(cache_dir / "nws_points_cache.sqlite"), backend="sqlite", cache_control=False,
            expire_after=POINTS_TTL, allowable_codes=(200,), allowable_methods=("GET",))
        for s in (self.session, self.points_session):
            s.headers.update(headers)

    def close(self) -> None:
        """Close both sessions."""
        self.session.close()  # type: ignore[no-untyped-call]
        self.points_session.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> NwsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------
    def get_json(self, path: str, *, params: Mapping[str, str] | None = None,
                 session: requests.Session | None = None) -> FetchedDoc:
        """GET `path` under the base URL, retrying transient failures; return the JSON."""
        url = f"{self.base_url}{path}"
        use = session or self.session
        attempt = 0
        while True:
            try:
                response = use.get(url, params=params, timeout=self._timeout_s)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self._retries:
                    raise NwsTransientError(f"network error: {type(exc).__name__}",
                                            url=url) from exc
                self._backoff(attempt, url, None)
                attempt += 1
                continue
            status = response.status_code
            if status == 200:
                try:
                    payload = response.json()
                except ValueError as exc:
                    raise NwsHttpError("response is not JSON", url=url, status=status) from exc
                return FetchedDoc(url, self._now(), bool(getattr(response, "from_cache", False)),
                                  payload)
            title = _problem_title(response)
            if status == 403:
                raise NwsForbiddenError(
                    "403 Access Denied: api.weather.gov refuses requests without a User-Agent "
                    "that names the application and a contact (set EVENTDESK_NWS_USER_AGENT, e.g. "
                    "'eventdesk/0.1 (you@example.org)'); a 403 can also mean an anonymous proxy",
                    url=url, status=status)
            if status == 503 and "expired" in title.lower():
                raise NwsGridExpiredError(f"Forecast Grid Expired: {title}", url=url, status=status)
            if status in RETRY_STATUSES:
                if attempt >= self._retries:
                    raise NwsTransientError(f"gave up after {attempt + 1} tries: {title}",
                                            url=url, status=status)
                self._backoff(attempt, url, status)
                attempt += 1
                continue
            raise NwsHttpError(title or "unexpected status", url=url, status=status)

    def _backoff(self, attempt: int, url: str, status: int | None) -> None:
        delay = self._backoff_s * (2 ** attempt) * (0.5 + random.random() / 2)
        log.warning("nws retry %d for %s after status %s, sleeping %.2fs", attempt + 1, url,
                    status, delay)
        self._sleep(delay)

    # -- endpoints ---------------------------------------------------------------------------
    def get_points(self, lat: float, lon: float) -> tuple[GridPoint, FetchedDoc]:
        """Resolve a coordinate (rounded to 4 dp, as the API requires) to its gridpoint."""
        path = f"/points/{round(lat, 4):.4f},{round(lon, 4):.4f}"
        key = (self._points_cache, f"{self.base_url}{path}")
        with _POINTS_MEMO_LOCK:
            memo = _POINTS_MEMO.get(key)
        if memo is not None and time.monotonic() - memo[0] < POINTS_MEMO_TTL.total_seconds():
            return memo[1], replace(memo[2], from_cache=True)
        doc = self.get_json(path, session=self.points_session)
        point = parse_points(doc.payload)  # a bad answer raises and is not remembered
        with _POINTS_MEMO_LOCK:
            _POINTS_MEMO[key] = (time.monotonic(), point, doc)
        return point, doc

    def get_gridpoint_raw(self, point: GridPoint) -> FetchedDoc:
        """Fetch the raw gridpoint layers (parse with `models.nws.parse_gridpoint`)."""
        return self.get_json(f"/gridpoints/{point.wfo}/{point.x},{point.y}")

    def get_forecast(self, point: GridPoint, *, hourly: bool, as_of: datetime,
                     max_age: timedelta) -> tuple[NwsForecast, FetchedDoc]:
        """Fetch and parse the 12-hour (or hourly) forecast."""
        suffix = "/forecast/hourly" if hourly else "/forecast"
        doc = self.get_json(f"/gridpoints/{point.wfo}/{point.x},{point.y}{suffix}")
        return parse_forecast(doc.payload, as_of=as_of, max_age=max_age), doc

    def get_observations(self, station: str, start: datetime,
                         end: datetime) -> tuple[ObservationSet, FetchedDoc]:
        """Fetch and parse a station's observations in [start, end]."""
        params = {"start": start.astimezone(UTC).isoformat(),
                  "end": end.astimezone(UTC).isoformat()}
        doc = self.get_json(f"/stations/{station}/observations", params=params)
        return parse_observations(doc.payload), doc

    def get_cli_texts(self, location: str, limit: int = 5) -> list[str]:
        """Fetch the newest Daily Climate Report texts for a CLI location id (e.g. NYC, MDW)."""
        listing = self.get_json(f"/products/types/CLI/locations/{location}").payload
        graph = listing.get("@graph") if isinstance(listing, Mapping) else None
        if not isinstance(graph, list):
            raise NwsHttpError("product list has no @graph", url=f"{self.base_url}/products")
        texts = []
        for item in graph[:limit]:
            product = self.get_json(f"/products/{item['id']}").payload
            texts.append(str(product.get("productText", "")))
        return texts


def nws_client(settings: Settings, **kwargs: Any) -> NwsClient:
    """Build the client from settings (cache under the data directory)."""
    return NwsClient(settings.nws_base_url, settings.nws_user_agent,
                     settings.resolved_data_dir / "cache", **kwargs)


def _retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    return isinstance(state.result(raise_on_failure=False), NwsTransientError)


@task(retries=2, retry_delay_seconds=[30, 120], retry_condition_fn=_retry_on_transient)
def fetch_forecast_snapshot(lat: float, lon: float) -> dict[str, FetchedDoc]:
    """Fetch gridpoint, forecast and hourly forecast for a point, raw, for the archive."""
    settings = load_settings()
    with nws_client(settings) as client:
        point, points_doc = client.get_points(lat, lon)
        out = {"points": points_doc, "gridpoint": client.get_gridpoint_raw(point)}
        base = f"/gridpoints/{point.wfo}/{point.x},{point.y}"
        out["forecast"] = client.get_json(f"{base}/forecast")
        out["forecast_hourly"] = client.get_json(f"{base}/forecast/hourly")
        return out


@task(retries=2, retry_delay_seconds=[30, 120], retry_condition_fn=_retry_on_transient)
def record_nws_snapshot(series: str, days_ahead: int = 2) -> list[str]:
    """Fetch the series' gridpoint and archive its maxima for today and the next days.

    Returns the reasons for anything not stored (a stale grid stores nothing); the recording
    flow logs them. The archive is `<data_dir>/forecast_archive.sqlite`.
    """
    from models.climate import climate_day_of, station_for
    from tasks.forecast_archive import open_archive, store_nws_snapshot

    settings = load_settings()
    station = station_for(series)
    with nws_client(settings) as client:
        point, _ = client.get_points(station.lat, station.lon)
        doc = client.get_gridpoint_raw(point)
    engine = open_archive(f"sqlite:///{settings.resolved_data_dir / 'forecast_archive.sqlite'}")
    today = climate_day_of(doc.fetched_at, station.standard_offset_hours)
    days = [today + timedelta(days=k) for k in range(days_ahead + 1)]
    try:
        return store_nws_snapshot(engine, station, doc.payload, doc.fetched_at, days,
                                  timedelta(hours=settings.nws_max_age_hours))
    finally:
        engine.dispose()
