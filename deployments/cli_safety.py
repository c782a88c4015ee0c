"""`eventdesk kill`, `eventdesk resume`, `eventdesk status`: the kill switch from a terminal.

Invariant: the commands run the same functions as the ``kill-switch``, ``resume-trading`` and
``guard`` flows, directly (no Prefect server needed, so the kill switch works when Prefect is
down). ``kill`` halts first and then cancels everything (``--strategy NAME``: only that
strategy's orders, through its exchange order group); ``resume`` needs ``--reason``, is refused
(exit code 1) while a breaker trips or, after a drift halt, while a fresh reconciliation finds an
unexplained difference (``--accept-drift`` acknowledges them, recorded), and resets the order
groups once the halts are cleared. Exit codes: 0 done, 1 refused or incomplete, 2 bad input or
settings.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

__all__ = ["register"]


def _by() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _context() -> tuple[Any, Any]:
    from tasks.safety import safety_engine
    from tasks.settings import load_settings

    settings = load_settings()
    return settings, safety_engine(settings)


def kill(
    reason: Annotated[str, typer.Option(help="Why trading stops (recorded with the halt).")]
    = "manual kill switch",
    strategy: Annotated[str | None, typer.Option(
        help="Cancel only this strategy's orders (one call to its exchange order group); the "
             "halt names it and, like every halt, blocks all new orders until resume.")] = None,
) -> None:
    """Halt trading and cancel every resting order now (or one strategy's)."""
    from tasks.safety import exchange_client
    from tasks.safety import kill as kill_now

    if strategy is not None and not strategy.strip():
        typer.echo("--strategy: a strategy name is required (got an empty string)", err=True)
        raise typer.Exit(2)
    settings, engine = _context()
    with exchange_client(settings, engine) as client:
        halt_id, report = kill_now(client, engine, reason, by=_by(), as_of=datetime.now(UTC),
                                   webhook=settings.alert_webhook_url, strategy=strategy)
    record: dict[str, Any] = {"halt_id": halt_id, "exchange_reached": report is not None,
                              "strategy": strategy}
    if report is not None:
        record.update(canceled=len(report.canceled), still_resting=list(report.still_resting),
                      errors=list(report.errors))
    typer.echo(f"halted (#{halt_id}); " + (
        f"{len(report.canceled)} orders cancelled, {len(report.still_resting)} still resting"
        if report is not None else "exchange unreachable: orders expire at their TTL"))
    typer.echo(json.dumps(record, sort_keys=True))
    if report is None or not report.complete:
        raise typer.Exit(1)


def resume(
    reason: Annotated[str, typer.Option(help="Why it is safe to trade again (required).")],
    accept_drift: Annotated[bool, typer.Option(
        "--accept-drift", help="After a drift halt: acknowledge every difference the fresh "
        "reconciliation finds, recorded with who and why (an order placed outside the bot "
        "is imported as external). Only once you have explained them.")] = False,
) -> None:
    """Clear every halt, unless a breaker still trips or unexplained drift remains."""
    from models.breakers import BreakerLimits
    from tasks.safety import ResumeRefused, evaluate, exchange_client, resume_checked

    settings, engine = _context()
    now = datetime.now(UTC)
    try:
        with exchange_client(settings, engine) as client:
            breakers = evaluate(client, engine, now=now, limits=BreakerLimits(
                daily_loss_fraction=settings.daily_loss_fraction))
            cleared = resume_checked(client, engine, reason, by=_by(), as_of=now,
                                     breakers=breakers, accept_drift=accept_drift,
                                     webhook=settings.alert_webhook_url)
    except ResumeRefused as exc:
        typer.echo(str(exc), err=True)
        typer.echo(json.dumps({"resumed": False, "error": str(exc)}))
        raise typer.Exit(1) from None
    from tasks.safety import reset_order_groups

    with exchange_client(settings, engine) as client:  # after the halts are cleared
        groups = reset_order_groups(client, engine, as_of=now, reason=f"resume by {_by()}: "
                                    f"{reason}", webhook=settings.alert_webhook_url)
    typer.echo(f"order groups reset: {list(groups)}")
    typer.echo(f"resumed: cleared halts {cleared}")
    typer.echo(json.dumps({"resumed": True, "cleared": cleared}))


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object only.")] = False,
) -> None:
    """Show halts, each breaker, resting orders, positions, today's P&L and order groups."""
    from models.breakers import BreakerLimits
    from tasks.safety import exchange_client, status_report

    settings, engine = _context()
    with exchange_client(settings, engine) as client:
        report = status_report(client, engine, now=datetime.now(UTC),
                               limits=BreakerLimits(
                                   daily_loss_fraction=settings.daily_loss_fraction))
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    typer.echo("HALTED" if report["halted"] else "trading allowed")
    for halt in report["halts"]:
        typer.echo(f"  halt #{halt['id']} at {halt['set_at']} by {halt['set_by']}: "
                   f"{halt['reason']}")
    typer.echo("breakers:")
    for breaker in report["breakers"]:
        mark = "TRIPPED" if breaker["tripped"] else "ok"
        typer.echo(f"  {breaker['name']:<28} {mark:<8} {breaker['reason']}")
    if report["exchange_error"]:
        typer.echo(f"exchange: {report['exchange_error']}")
    typer.echo(f"resting orders: {len(report['resting_orders'])}")
    for order in report["resting_orders"]:
        typer.echo(f"  {order['ticker']} {order['book_side']} {order['remaining']} @ "
                   f"{order['yes_price_cents']}c ({order['client_order_id']})")
    typer.echo(f"positions (ledger): {report['positions']['ledger']}")
    pnl = report["pnl_today_cents"]
    typer.echo("today's P&L: " + ("unknown" if pnl is None else f"{pnl}c") +
               f" (equity {report['equity_cents']}c, start of day "
               f"{report['start_of_day_equity_cents']}c)")
    for group in report["order_groups"]:
        state = ("TRIGGERED since " + group["triggered_at"]) if group["triggered_at"] else "open"
        typer.echo(f"order group {group['strategy']}: {group['order_group_id']} limit "
                   f"{group['contracts_limit']}/15s, {state}")


def register(app: typer.Typer) -> None:
    """Add ``kill``, ``resume`` and ``status`` to the root app."""
    app.command("kill")(kill)
    app.command("resume")(resume)
    app.command("status")(status)
