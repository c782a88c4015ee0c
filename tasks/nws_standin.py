"""A local stand-in for api.weather.gov that serves recorded fixtures on 127.0.0.1.

Invariant: it behaves like the real service where our client depends on it: it refuses requests
without a User-Agent with a 403 HTML page (as Akamai does), sends `Cache-Control`/`Expires` on
forecasts and `Last-Modified` on gridpoints and answers `If-Modified-Since` with 304, returns
`application/problem+json` errors, and can be scripted to fail (500/503/"Forecast Grid Expired")
so retries are exercised against a real socket. Tests, offline runs and the operations issue use
it via `serve_standin(...)`; point `EVENTDESK_NWS_BASE_URL` at the yielded URL.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

__all__ = ["StandinState", "build_standin_app", "serve_standin"]

_FORBIDDEN_HTML = ("<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>"
                   "You don't have permission to access this server.</BODY></HTML>")


@dataclass
class StandinState:
    """Fixture files, scripted failures and a request log, shared with the test that runs it."""

    fixtures: Path  # holds nws/*.json and cli/CLI*.txt
    forecast_max_age_s: int = 300
    # path prefix -> queue of (status, problem title) to return before serving the fixture
    failures: dict[str, deque[tuple[int, str]]] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    user_agents: list[str] = field(default_factory=list)
    conditional_hits: int = 0
    grid_last_modified: datetime = datetime(2022, 2, 4, 3, 15, 41, tzinfo=UTC)

    def fail(self, path_prefix: str, *statuses: int, title: str = "Unexpected Problem") -> None:
        """Make the next requests under `path_prefix` fail with `statuses`, in order."""
        queue = self.failures.setdefault(path_prefix, deque())
        queue.extend((s, title) for s in statuses)


def _problem(status: int, title: str, path: str) -> JSONResponse:
    kind = "ForecastGridExpired" if "Expired" in title else title.replace(" ", "")
    body = {"correlationId": "standin", "title": title, "type": f"https://api.weather.gov/problems/{kind}",
            "status": status, "detail": title, "instance": path}
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers={"Cache-Control": "private, must-revalidate, max-age=86400"})


def build_standin_app(state: StandinState) -> Starlette:
    """Return the ASGI app serving `state.fixtures` under api.weather.gov's paths."""
    nws = state.fixtures / "nws"
    cli = state.fixtures / "cli"

    def _json_file(name: str) -> Any:
        return json.loads((nws / name).read_text())

    async def guard(request: Request) -> Response | None:
        path = request.url.path
        state.hits[path] += 1
        agent = request.headers.get("user-agent", "")
        state.user_agents.append(agent)
        if not agent.strip() or agent.startswith(("python-requests", "python-urllib3")):
            return HTMLResponse(_FORBIDDEN_HTML, status_code=403)
        for prefix, queue in state.failures.items():
            if path.startswith(prefix) and queue:
                status, title = queue.popleft()
                return _problem(status, title, path)
        return None

    def cached_json(doc: Any, *, max_age: int) -> JSONResponse:
        expires = format_datetime(datetime.fromtimestamp(time.time() + max_age, UTC), usegmt=True)
        return JSONResponse(doc, media_type="application/geo+json", headers={
            "Cache-Control": f"public, max-age={max_age}, s-maxage=3600", "Expires": expires})

    async def points(request: Request) -> Response:
        return await guard(request) or cached_json(_json_file("points.json"), max_age=86_400)

    async def gridpoint(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        last_modified = format_datetime(state.grid_last_modified, usegmt=True)
        since = request.headers.get("if-modified-since")
        if since and parsedate_to_datetime(since) >= state.grid_last_modified:
            state.conditional_hits += 1
            return Response(status_code=304, headers={"Last-Modified": last_modified})
        return JSONResponse(_json_file("detailed_forecast.json"), media_type="application/geo+json",
                            headers={"Last-Modified": last_modified,
                                     "Cache-Control": "public, max-age=0, must-revalidate"})

    async def forecast(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        name = "gridpoints_forecast_si.json" if request.query_params.get("units") == "si" else \
            "gridpoints_forecast_us.json"
        return cached_json(_json_file(name), max_age=state.forecast_max_age_s)

    async def forecast_hourly(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        return cached_json(_json_file("gridpoints_forecast_hourly_us.json"),
                           max_age=state.forecast_max_age_s)

    async def observations(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        return cached_json(_json_file("stations_observations_multiple.json"), max_age=60)

    async def latest(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        return cached_json(_json_file("stations_observations_latest.json"), max_age=60)

    async def cli_list(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        location = request.path_params["location"].upper()
        files = sorted(cli.glob(f"CLI{location}*.txt"))
        if not files:  # the real service answers an unknown location with a 500
            return _problem(500, "Unexpected Problem", request.url.path)
        graph = [{"@id": f"{request.base_url}products/{p.stem}", "id": p.stem,
                  "issuingOffice": "K" + location, "issuanceTime": "2020-04-23T05:50:00+00:00",
                  "productCode": "CLI", "productName": "Climatological Report (Daily)"}
                 for p in files]
        return cached_json({"@context": {}, "@graph": graph}, max_age=60)

    async def product(request: Request) -> Response:
        if (early := await guard(request)) is not None:
            return early
        product_id = request.path_params["product_id"]
        path = cli / f"{product_id}.txt"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", product_id) or not path.exists():
            return _problem(404, "Not Found", request.url.path)
        return cached_json({"id": product_id, "productCode": "CLI",
                            "productText": path.read_text(encoding="latin-1")}, max_age=3600)

    routes = [
        Route("/points/{coords}", points),
        Route("/gridpoints/{wfo}/{xy}", gridpoint),
        Route("/gridpoints/{wfo}/{xy}/forecast", forecast),
        Route("/gridpoints/{wfo}/{xy}/forecast/hourly", forecast_hourly),
        Route("/stations/{station}/observations", observations),
        Route("/stations/{station}/observations/latest", latest),
        Route("/products/types/CLI/locations/{location}", cli_list),
        Route("/products/{product_id}", product),
    ]
    return Starlette(routes=routes)


@contextmanager
def serve_standin(state: StandinState, host: str = "127.0.0.1") -> Iterator[str]:
    """Run the stand-in with uvicorn in a thread on a free port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_standin_app(state), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("NWS stand-in did not start within 10 s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
