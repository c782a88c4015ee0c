"""The `eventdesk` command line: the single CLI entry point.

Each area registers its commands from its own module (``cli_market``, ``cli_exchange``,
``cli_weather``...), so this file only wires them together.
"""

from __future__ import annotations

import typer

from deployments import cli_backtest, cli_exchange, cli_market, cli_tax, cli_weather

app = typer.Typer(
    name="eventdesk",
    help="Systematic, risk-gated trading of Kalshi event contracts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

cli_market.register(app)
cli_exchange.register(app)
cli_weather.register(app)
cli_tax.register(app)
cli_backtest.register(app)


@app.command()
def up() -> None:
    """Start the desk on embedded defaults (paper exchange, SQLite, local Prefect server)."""
    from tasks.settings import load_settings

    settings = load_settings()
    typer.echo(f"eventdesk: environment={settings.env} exchange={settings.base_url}")
    typer.echo(f"eventdesk: data directory {settings.resolved_data_dir}")
    typer.echo(
        "eventdesk up: the full stack (Prefect server + serve + paper exchange) is not yet built;"
    )
    typer.echo(
        "             run `eventdesk exchange serve` to start the paper exchange on its own."
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
