"""`eventdesk trace CLIENT_ORDER_ID` and `eventdesk run FLOW [--param key=value ...]`.

Invariant: ``run`` executes the registered flow through Prefect (a recorded flow run against the
configured Prefect API, exactly as a UI-triggered run would be), with parameters validated by the
flow's own signature; a bad name, key or value exits non-zero naming it. ``trace`` only reads the
ledger.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

__all__ = ["parse_params", "register"]


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """Turn ``key=value`` strings into parameters (JSON values where they parse, else text)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--param {pair!r}: expected key=value")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params[key.strip()] = value
    return params


def _fail(message: str) -> None:
    typer.echo(f"eventdesk: {message}", err=True)
    raise typer.Exit(code=1)


def trace(client_order_id: Annotated[str, typer.Argument(help="The order's client_order_id.")],
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print decision -> intent -> order -> fills -> settlement -> realized P&L of one order."""
    from tasks.trading import ledger, order_trace

    chain = order_trace(ledger(), client_order_id)
    if chain is None:
        _fail(f"client_order_id {client_order_id!r} is not in the ledger")
        return
    if as_json:
        typer.echo(json.dumps(chain, indent=2, default=str))
        return
    decision, order = chain["decision"], chain["order"]
    if decision is None:
        typer.echo("decision: none recorded")
    else:
        typer.echo(f"decision #{decision['id']} at {decision['at']}: {decision['market']} "
                   f"p={decision['prob_yes']:.4f} bid={decision['yes_bid_cents']} "
                   f"ask={decision['yes_ask_cents']} edge={decision['edge_cents']}c "
                   f"{decision['action']} ({decision['reason']}) model={decision['model']}")
    typer.echo(f"order {order['client_order_id']} ({order['exchange_order_id']}): buy "
               f"{order['count']} {order['side']} {order['market']} at {order['price_cents']}c "
               f"{order['time_in_force']} expires {order['expires']} -> {order['status']}, "
               f"filled {order['filled']}")
    for event in chain["events"]:
        typer.echo(f"  {event['at']} {event['status']} {event['detail'] or ''}".rstrip())
    for fill in chain["fills"]:
        typer.echo(f"fill {fill['id']} at {fill['at']}: {fill['count']} at "
                   f"{fill['price_cents']}c fee {fill['fee_cents']}c"
                   f"{' taker' if fill['taker'] else ' maker'}")
    settlement = chain["settlement"]
    typer.echo("settlement: none yet" if settlement is None else
               f"settlement: {settlement['result']} at {settlement['at']}")
    pnl = chain["realized_pnl_cents"]
    typer.echo("realized P&L: open" if pnl is None else f"realized P&L: {pnl}c")


def run(flow_name: Annotated[str, typer.Argument(help="Registered flow, e.g. trade-weather.")],
        param: Annotated[list[str] | None, typer.Option(
            "--param", "-p", help="key=value (JSON values parse: 3, true, [\"KXHIGHNY\"]).")
        ] = None) -> None:
    """Run a registered flow once through Prefect (recorded like a UI-triggered run)."""
    from prefect.exceptions import ParameterTypeError

    from flows.registry import UnknownFlowError, get_flow

    try:
        flow = get_flow(flow_name)
    except UnknownFlowError as exc:
        _fail(str(exc))
        return
    params = parse_params(param or [])
    try:
        params = flow.validate_parameters(params)
    except ParameterTypeError as exc:
        _fail(f"{flow_name}: {exc}")
        return
    state = flow(**params, return_state=True)
    result = state.result(raise_on_failure=False)
    typer.echo(json.dumps({"flow": flow_name, "state": state.type.value,
                           "result": result if not isinstance(result, BaseException)
                           else repr(result)}, indent=2, default=str))
    if not state.is_completed():
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``trace`` and ``run`` to the root CLI."""
    app.command("trace")(trace)
    app.command("run")(run)
