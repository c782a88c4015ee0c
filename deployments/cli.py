"""The `eventdesk` command line: the single CLI entry point.

Each area registers its commands from its own module (``cli_market``, ``cli_exchange``,
``cli_weather``...), so this file only wires them together.
"""

from __future__ import annotations

import typer

from deployments import (
    cli_backtest,
    cli_exchange,
    cli_market,
    cli_news,
    cli_ops,
    cli_safety,
    cli_tax,
    cli_trade,
    cli_weather,
)

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
cli_trade.register(app)
cli_safety.register(app)
cli_news.register(app)
cli_ops.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
