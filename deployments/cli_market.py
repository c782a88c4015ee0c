"""Read-only market and portfolio commands against the configured exchange (paper, demo or prod).

Invariant: a command either prints its result (a table, or JSON with ``--json``) and exits 0, or
prints exactly one line naming the problem to stderr and exits non-zero; never a traceback, never a
secret. Money is shown from exact Decimals, never floats.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from enum import StrEnum
from itertools import islice
from typing import Any

import typer
from pydantic import BaseModel, ValidationError

from kalshi.client import KalshiClient
from kalshi.errors import KalshiError
from models.money import MoneyError, format_cents

__all__ = ["register"]


class MarketStatus(StrEnum):
    """The ``GET /markets?status=`` filter words."""

    open = "open"
    closed = "closed"
    settled = "settled"


class OrderStatus(StrEnum):
    """The ``GET /portfolio/orders?status=`` filter words."""

    resting = "resting"
    canceled = "canceled"
    executed = "executed"


JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"eventdesk: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def _client(*, require_auth: bool) -> Iterator[KalshiClient]:
    # one place that turns every expected failure into one stderr line and a non-zero exit
    from tasks.kalshi_client import kalshi_client
    from tasks.settings import Settings, SettingsError

    try:
        settings = Settings()  # read the environment now; the process-wide cache is left alone
        client = kalshi_client(settings, require_auth=require_auth)
    except (SettingsError, ValidationError) as exc:
        first = str(exc).strip().splitlines()
        raise _fail(f"settings: {' '.join(first[:3])}", 2) from None
    try:
        with client:
            yield client
    except KalshiError as exc:
        raise _fail(f"{type(exc).__name__}: {exc}") from None
    except MoneyError as exc:
        raise _fail(f"bad value from exchange: {exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {k: _plain(v) for k, v in value.model_dump().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _emit_json(value: Any) -> None:
    typer.echo(json.dumps(_plain(value), indent=2, sort_keys=True))


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def _price(value: Decimal | None) -> str:
    # dollars -> "56c" (exact; a sub-penny price shows its fraction, "5.5c")
    if value is None:
        return "-"
    cents = value * 100
    return f"{cents:.0f}c" if cents == cents.to_integral_value() else f"{cents.normalize()}c"


def _count(value: Decimal | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if value == value.to_integral_value() else str(value)


def markets(
    series: str | None = typer.Option(None, "--series", help="Series ticker, e.g. KXHIGHNY."),
    status: MarketStatus | None = typer.Option(None, "--status", help="open, closed or settled."),
    max_rows: int = typer.Option(500, "--max", min=0, help="Stop after this many (0 = all)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List markets with bid, ask, last and volume."""
    with _client(require_auth=False) as client:
        pages = client.iter_markets(series_ticker=series, status=status.value if status else None,
                                    limit=min(max_rows, 1000) or 1000)
        found = list(islice(pages, max_rows or None))
    if as_json:
        _emit_json(found)
        return
    rows = [[m.ticker, _price(m.yes_bid), _price(m.yes_ask), _price(m.last_price),
             _count(m.volume), m.status] for m in found]
    _table(["ticker", "bid", "ask", "last", "volume", "status"], rows)


def book(ticker: str = typer.Argument(..., help="Market ticker."),
         as_json: bool = JSON_OPTION) -> None:
    """Show a market's order book (bids on YES and on NO)."""
    with _client(require_auth=False) as client:
        market = client.get_market(ticker)
        found = client.get_orderbook(ticker, grid=market.price_grid)
    if as_json:
        _emit_json({"ticker": ticker, "yes": found.yes, "no": found.no,
                    "best_yes_bid": found.best_yes_bid, "best_yes_ask": found.best_yes_ask})
        return
    typer.echo(f"{ticker}  best yes bid {_price(found.best_yes_bid)}  "
               f"best yes ask {_price(found.best_yes_ask)}")
    rows = [["yes", _price(lvl.price), _count(lvl.count)] for lvl in reversed(found.yes)]
    rows += [["no", _price(lvl.price), _count(lvl.count)] for lvl in reversed(found.no)]
    _table(["side", "price", "size"], rows)


def balance(as_json: bool = JSON_OPTION) -> None:
    """Show the available balance."""
    with _client(require_auth=True) as client:
        found = client.get_balance()
    if as_json:
        _emit_json(found)
        return
    value = "" if found.portfolio_value_cents is None else (
        f"  portfolio value {format_cents(found.portfolio_value_cents)}"
    )
    typer.echo(f"balance {format_cents(found.balance_cents)}{value}")


def positions(as_json: bool = JSON_OPTION) -> None:
    """List open market positions (+ YES, - NO)."""
    with _client(require_auth=True) as client:
        found, events = client.get_positions()
    if as_json:
        _emit_json({"market_positions": found, "event_positions": events})
        return
    rows = [[p.ticker, _count(p.position), f"${p.market_exposure}", f"${p.realized_pnl}",
             f"${p.fees_paid}"] for p in found]
    _table(["ticker", "position", "exposure", "realized", "fees"], rows)


def orders(
    status: OrderStatus | None = typer.Option(None, "--status",
                                              help="resting, canceled or executed."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List our orders."""
    with _client(require_auth=True) as client:
        found = list(client.iter_orders(status=status.value if status else None))
    if as_json:
        _emit_json(found)
        return
    rows = [[o.order_id, o.ticker, o.book_side, _price(o.yes_price), _count(o.fill_count),
             _count(o.remaining_count), o.status, o.client_order_id] for o in found]
    _table(["order_id", "ticker", "side", "price", "filled", "remaining", "status",
            "client_order_id"], rows)


def fills(as_json: bool = JSON_OPTION) -> None:
    """List our fills."""
    with _client(require_auth=True) as client:
        found = list(client.iter_fills())
    if as_json:
        _emit_json(found)
        return
    rows = [[f.fill_id, f.ticker, f.book_side, _price(f.yes_price), _count(f.count),
             "taker" if f.is_taker else "maker",
             "-" if f.fee_cost is None else f"${f.fee_cost}"] for f in found]
    _table(["fill_id", "ticker", "side", "price", "count", "role", "fee"], rows)


_COMMANDS: list[Callable[..., None]] = [markets, book, balance, positions, orders, fills]


def register(app: typer.Typer) -> None:
    """Add the market and portfolio commands to the root app."""
    for command in _COMMANDS:
        app.command()(command)
