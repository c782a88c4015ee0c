"""`eventdesk exchange ...`: run the paper exchange and drive its operator API.

Every command except ``serve`` talks to a running exchange over HTTP (``--url``, default from the
settings: ``EVENTDESK_PAPER_OPERATOR_URL`` or ``http://{paper_host}:{paper_port}``) and prints the
operator API's JSON answer; a refusal exits non-zero with the exchange's message.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import typer

__all__ = ["exchange_app", "operator_url", "register"]

exchange_app = typer.Typer(
    name="exchange",
    help="The paper exchange: a Kalshi-compatible venue on 127.0.0.1.",
    no_args_is_help=True,
)

_URL_HELP = "Exchange root URL (default: settings paper_operator_url or paper_host:paper_port)."


def operator_url(url: str | None) -> str:
    """Return the operator API base (``.../operator``) from ``--url`` or the settings."""
    if not url:
        from tasks.settings import load_settings

        settings = load_settings()
        url = settings.paper_operator_url or f"http://{settings.paper_host}:{settings.paper_port}"
    url = url.rstrip("/")
    return url if url.endswith("/operator") else f"{url}/operator"


def _call(method: str, url: str | None, path: str, payload: dict[str, Any] | None = None,
          timeout_s: float = 120.0) -> Any:
    base = operator_url(url)
    try:
        response = httpx.request(method, f"{base}{path}", json=payload, timeout=timeout_s)
    except httpx.TransportError as exc:
        typer.echo(f"no paper exchange answering at {base} ({exc.__class__.__name__}); start one "
                   "with `eventdesk exchange serve`", err=True)
        raise typer.Exit(2) from exc
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = {"message": response.text}
    if response.status_code >= 400:
        message = body.get("message", body) if isinstance(body, dict) else body
        typer.echo(f"refused ({response.status_code}): {message}", err=True)
        raise typer.Exit(1)
    return body


def _echo(body: Any) -> None:
    typer.echo(json.dumps(body, indent=2, sort_keys=True))


def _liquidity_opts(mode: str, *, data_dir: Path | None, event_ticker: str | None,
                    speed: int | None, seed: int | None, mirror_url: str | None,
                    tickers: str | None) -> dict[str, Any]:
    # each mode takes only its own options; one given for another mode is refused, not ignored
    given = {"--data-dir": data_dir, "--event-ticker": event_ticker, "--speed": speed,
             "--seed": seed, "--mirror-url": mirror_url, "--tickers": tickers}
    allowed = {"synthetic": {"--seed"},
               "replay": {"--data-dir", "--event-ticker", "--speed", "--seed"},
               "mirror": {"--mirror-url", "--tickers"}, "none": set()}[mode]
    extra = sorted(name for name, value in given.items() if value is not None
                   and name not in allowed)
    if extra:
        raise typer.BadParameter(f"{', '.join(extra)} do(es) not apply to --liquidity {mode}")
    opts: dict[str, Any] = {}
    if mode == "synthetic" and seed is not None:
        opts["seed"] = seed
    if mode == "replay":
        if data_dir is None or event_ticker is None:
            raise typer.BadParameter("--liquidity replay needs --data-dir (the recorded "
                                     "weather-events-2024-25 folder) and --event-ticker")
        opts |= {"data_dir": data_dir, "event_ticker": event_ticker}
        if speed is not None:
            opts["speed"] = speed
        if seed is not None:
            opts["seed"] = seed
    if mode == "mirror":
        names = [t for t in (tickers or "").split(",") if t.strip()]
        if not mirror_url or not names:
            raise typer.BadParameter("--liquidity mirror needs --mirror-url (the source "
                                     "exchange's /trade-api/v2 URL) and --tickers T1,T2")
        opts |= {"base_url": mirror_url, "tickers": [t.strip() for t in names]}
    return opts


@exchange_app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default: settings paper_host)."),
    port: int | None = typer.Option(None, help="Port (default: settings paper_port; 0 = any)."),
    db: Path | None = typer.Option(None, help="SQLite file (default: <data_dir>/paper.sqlite)."),
    liquidity: str = typer.Option("none", help="synthetic | replay | mirror | none"),
    data_dir: Path | None = typer.Option(
        None, help="replay: folder of recorded events (weather-events-2024-25)."),
    event_ticker: str | None = typer.Option(
        None, help="replay: the recorded event to replay, e.g. KXHIGHNY-25MAY08."),
    speed: int | None = typer.Option(
        None, min=1, help="replay: recorded seconds per exchange second (default 60)."),
    seed: int | None = typer.Option(None, help="synthetic/replay: random seed."),
    mirror_url: str | None = typer.Option(
        None, help="mirror: base URL of the public source, e.g. https://.../trade-api/v2."),
    tickers: str | None = typer.Option(None, help="mirror: comma-separated market tickers."),
) -> None:
    """Serve the paper exchange (Kalshi REST + WebSocket + operator API) until interrupted."""
    from kalshi.paper.server import LIQUIDITY_MODES, LiquidityUnavailable, run_server
    from tasks.settings import load_settings

    if liquidity not in LIQUIDITY_MODES:
        typer.echo(f"--liquidity must be one of {', '.join(LIQUIDITY_MODES)} (got {liquidity!r})",
                   err=True)
        raise typer.Exit(2)
    try:
        opts = _liquidity_opts(liquidity, data_dir=data_dir, event_ticker=event_ticker,
                               speed=speed, seed=seed, mirror_url=mirror_url, tickers=tickers)
    except typer.BadParameter as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    settings = load_settings()
    path = db or settings.resolved_data_dir / "paper.sqlite"
    bind_host = host or settings.paper_host
    bind_port = settings.paper_port if port is None else port

    def announce(url: str) -> None:
        typer.echo(f"paper exchange listening on {url} (REST {url}/trade-api/v2, db {path}, "
                   f"liquidity {liquidity})")

    try:
        run_server(path, host=bind_host, port=bind_port, liquidity=liquidity,
                   liquidity_opts=opts, announce=announce)
    except LiquidityUnavailable as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@exchange_app.command("add-key")
def add_key(
    key_id: str = typer.Option(..., "--key-id", help="The API key id clients send."),
    public_key: Path = typer.Option(..., "--public-key", help="PEM file of the RSA public key."),
    balance: str = typer.Option("0", help="Starting balance in dollars, e.g. 1000.00."),
    tier: str = typer.Option("prestige", help="Rate-limit tier (basic ... prestige, unlimited)."),
    url: str | None = typer.Option(None, help=_URL_HELP),
) -> None:
    """Register a public key (like uploading it to Kalshi) and fund its account."""
    try:
        pem = public_key.read_text()
    except OSError as exc:
        typer.echo(f"cannot read --public-key {public_key}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    _echo(_call("POST", url, "/keys", {"key_id": key_id, "public_key_pem": pem,
                                       "balance": balance, "tier": tier}))


def _read_definitions(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        typer.echo(f"cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


@exchange_app.command("add-markets")
def add_markets(
    file: Path = typer.Argument(..., help="Kalshi series/event/market JSON or JSONL (.gz ok)."),
    reopen: bool = typer.Option(False, "--reopen", help="Open them from now, closing later."),
    reopen_hours: float = typer.Option(24.0, help="With --reopen: hours until close."),
    url: str | None = typer.Option(None, help=_URL_HELP),
) -> None:
    """List markets from recorded Kalshi JSON (current or legacy shape)."""
    body = _call("POST", url, "/markets", {"text": _read_definitions(file), "reopen": reopen,
                                           "reopen_hours": reopen_hours})
    typer.echo(f"added {len(body['added'])} markets, {len(body['errors'])} refused")
    for error in body["errors"]:
        typer.echo(f"  {error['ticker']}: {error['error']}", err=True)


@exchange_app.command()
def settle(
    ticker: str = typer.Argument(..., help="Market ticker."),
    result: str = typer.Option(..., "--result", help="yes | no"),
    url: str | None = typer.Option(None, help=_URL_HELP),
) -> None:
    """Determine and settle a market: $1 per winning contract."""
    if result not in ("yes", "no"):
        typer.echo(f"--result must be yes or no (got {result!r})", err=True)
        raise typer.Exit(2)
    _echo(_call("POST", url, "/settle", {"ticker": ticker, "result": result}))


@exchange_app.command()
def faults(
    latency_ms: int | None = typer.Option(None, help="Delay every REST response (ms)."),
    error_rate: float | None = typer.Option(None, help="Probability of a 503 per request."),
    rate_limit_rate: float | None = typer.Option(None, help="Probability of a 429 per request."),
    drop_after_accept: float | None = typer.Option(
        None, help="Probability an accepted write's response is lost (connection dropped)."),
    ws_drop_rate: float | None = typer.Option(None, help="WebSocket connection drop rate."),
    seq_gap_rate: float | None = typer.Option(None, help="WebSocket seq gap rate."),
    clear: bool = typer.Option(False, "--clear", help="Reset every fault first."),
    url: str | None = typer.Option(None, help=_URL_HELP),
) -> None:
    """Show or set injected faults (no options: show them)."""
    settings = {"latency_ms": latency_ms, "error_rate": error_rate,
                "rate_limit_rate": rate_limit_rate, "drop_after_accept": drop_after_accept,
                "ws_drop_rate": ws_drop_rate, "seq_gap_rate": seq_gap_rate}
    chosen: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
    if not chosen and not clear:
        _echo(_call("GET", url, "/faults"))
        return
    _echo(_call("POST", url, "/faults", {**chosen, "clear": clear}))


def register(app: typer.Typer) -> None:
    """Add `eventdesk exchange ...` to the root app."""
    app.add_typer(exchange_app, name="exchange")
