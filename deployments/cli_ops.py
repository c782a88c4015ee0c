"""`eventdesk up | down | env`: start, stop and address the local stack.

Invariant: every failure to start prints one line naming the problem and what to do, exits 1, and
leaves nothing running (``deployments.stack`` stops whatever it had started).
"""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from deployments.stack import (
    DEFAULT_EXCHANGE_PORT,
    DEFAULT_NWS_PORT,
    DEFAULT_PREFECT_PORT,
    Stack,
    StackError,
    StackPaths,
    StackPorts,
    env_exports,
    read_state,
    stop_stack,
)

__all__ = ["down", "env", "main", "nws_reachable", "register", "up"]


def _data_dir() -> Path:
    from tasks.settings import load_settings

    return load_settings().resolved_data_dir


def nws_reachable(url: str = "https://api.weather.gov/", timeout_s: float = 3.0) -> bool:
    """Return whether the real NWS API answers at all (any HTTP status counts as reachable)."""
    import httpx

    try:
        httpx.get(url, timeout=timeout_s, headers={"User-Agent": "eventdesk (reachability)"})
    except httpx.HTTPError:
        return False
    return True


def _fail(message: str) -> None:
    typer.echo(f"eventdesk: {message}", err=True)
    raise typer.Exit(code=1)


def up(
    offline: Annotated[
        bool, typer.Option(help="Serve simulated NWS forecasts locally (no internet).")
    ] = False,
    prefect_port: Annotated[
        int, typer.Option(help="Port of the local Prefect server/UI.")
    ] = DEFAULT_PREFECT_PORT,
    exchange_port: Annotated[
        int, typer.Option(help="Port of the paper exchange.")
    ] = DEFAULT_EXCHANGE_PORT,
    nws_port: Annotated[
        int, typer.Option(help="Port of the local NWS stand-in.")
    ] = DEFAULT_NWS_PORT,
    liquidity: Annotated[
        str, typer.Option(help="Paper liquidity: synthetic|replay|mirror|none.")
    ] = "synthetic",
    detach: Annotated[
        bool, typer.Option(help="Start and return; stop later with `eventdesk down`.")
    ] = False,
) -> None:
    """Start the desk: Prefect server, paper exchange, and serve with every deployment."""
    if not offline and not nws_reachable():
        typer.echo(
            "eventdesk: api.weather.gov cannot be reached; serving SIMULATED forecasts locally "
            "(as with --offline)",
            err=True,
        )
        offline = True
    stack = Stack(
        _data_dir(),
        StackPorts(prefect_port, exchange_port, nws_port),
        offline=offline,
        liquidity=liquidity,
    )
    try:
        state = stack.start()
    except StackError as exc:
        _fail(str(exc))
        return
    typer.echo(f"eventdesk: Prefect UI      {state.urls['prefect_ui']}")
    typer.echo(f"eventdesk: paper exchange  {state.urls['exchange']}")
    if "nws" in state.urls:
        typer.echo(f"eventdesk: NWS stand-in    {state.urls['nws']}  (SIMULATED forecasts)")
    typer.echo(f"eventdesk: data directory  {stack.paths.data_dir}")
    typer.echo('eventdesk: `eval "$(eventdesk env)"` points the prefect CLI at this stack')
    if detach:
        return
    typer.echo("eventdesk: running; Ctrl-C (or `eventdesk down`) stops everything")

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        for dead in stack.supervise():
            typer.echo(
                f"eventdesk: {dead} exited; stopping the stack (logs in {stack.paths.logs_dir})",
                err=True,
            )
    except KeyboardInterrupt:
        pass
    finally:
        stopped = stack.stop()
        typer.echo(f"eventdesk: stopped {', '.join(stopped) or 'nothing'}")


def down() -> None:
    """Stop a stack started by `eventdesk up` (from another terminal)."""
    paths = StackPaths(_data_dir())
    try:
        stopped = stop_stack(paths)
    except StackError as exc:
        _fail(str(exc))
        return
    typer.echo(
        f"eventdesk: stopped {', '.join(stopped)}" if stopped else "eventdesk: no stack running"
    )


def env() -> None:
    """Print `export` lines for the running stack: eval "$(eventdesk env)"."""
    paths = StackPaths(_data_dir())
    state = read_state(paths)
    if state is None:
        _fail(f"no stack recorded in {paths.data_dir}; run `eventdesk up` first")
        return
    for key, value in env_exports(paths, state).items():
        sys.stdout.write(f"export {key}={shlex.quote(value)}\n")


def register(app: typer.Typer) -> None:
    """Add up/down/env to the root app."""
    app.command()(up)
    app.command()(down)
    app.command()(env)


def main() -> None:
    """``python -m deployments.cli_ops up|down|env`` (the same commands as ``eventdesk``)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app()


if __name__ == "__main__":
    main()
