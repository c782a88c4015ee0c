"""`eventdesk backtest`: replay the weather strategy over recorded history and write the report.

Invariant: bad arguments fail before any work with one line naming the option and the value
(exit 2); a run prints the headline metrics, every excluded-input line (nothing is dropped
silently), the report path, and ends with exactly one JSON object on the last line.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import typer

__all__ = ["register"]

HIGH_SERIES = ("KXHIGHNY", "KXHIGHCHI", "KXHIGHMIA", "KXHIGHAUS", "KXHIGHDEN")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"eventdesk backtest: {message}", err=True)
    return typer.Exit(2)


def _day(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option} {text!r} is not a YYYY-MM-DD date") from None


class _Progress:
    """One typer progress bar per stage (forecasts, replay, walk-forward)."""

    def __init__(self) -> None:
        self.stage = ""
        self.bar: Any = None
        self.done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage, self.done = stage, 0
            self.bar = typer.progressbar(length=max(total, 1), label=f"{stage:13}",
                                         file=sys.stderr)
            self.bar.__enter__()
        if self.bar is not None and done > self.done:
            self.bar.update(done - self.done)
            self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def backtest(
    data_dir: Path = typer.Option(..., "--data-dir", exists=True, file_okay=False,
                                  help="The real data directory (with kalshi/weather-events-"
                                       "2024-25 and the forecast history)."),
    series: list[str] = typer.Option(  # noqa: B006
        list(HIGH_SERIES), "--series", help="Series to trade (repeatable)."),
    since: str | None = typer.Option(None, "--from", help="First climate day (YYYY-MM-DD)."),
    until: str | None = typer.Option(None, "--to", help="Last climate day (YYYY-MM-DD)."),
    strategy: str = typer.Option("weather", "--strategy",
                                 help="Strategy: weather (EMOS probabilities from the "
                                      "forecast archive)."),
    decision_time: list[str] = typer.Option(  # noqa: B006
        ["10:00"], "--decision-time",
        help="Local clock time on the climate day (repeatable: one decision per time)."),
    folds: int = typer.Option(5, "--folds", help="Walk-forward blocks (0: no walk-forward)."),
    out: Path = typer.Option(Path("backtest-report"), "--out", file_okay=False,
                             help="Folder for report.html, PNGs and metrics.json."),
    archive: Path | None = typer.Option(None, "--archive",
                                        help="Forecast archive SQLite file (default: in --out)."),
    spread_cost_cents: int = typer.Option(1, "--spread-cost-cents",
                                          help="Taker cost over the last recorded price."),
    queue_ahead: int = typer.Option(100, "--queue-ahead",
                                    help="Contracts assumed queued ahead at our price."),
    starting_cash_cents: int = typer.Option(1_000_000, "--starting-cash-cents",
                                            help="Desk capital at the start, in cents."),
    refresh_archive: bool = typer.Option(True, "--archive-refresh/--no-archive-refresh",
                                         help="Re-import the data directory into the archive "
                                              "first (skip to reuse an existing archive)."),
    forecast_source: list[str] = typer.Option(  # noqa: B006
        [], "--forecast-source",
        help="Use only forecasts from this archive source (repeatable: ndfd, open-meteo)."),
) -> None:
    """Backtest a strategy on recorded trades and settlements (walk-forward included)."""
    from models.backtest import BacktestConfig, FillModel
    from tasks.backtest import STRATEGIES, backtest_weather, metrics_record, summary_rows

    first, last = _day("--from", since), _day("--to", until)
    if first and last and first > last:
        raise _fail(f"--from {since} is after --to {until}")
    if strategy not in STRATEGIES:
        raise _fail(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    for hhmm in decision_time:
        parts = hhmm.split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) > 23 \
                or int(parts[1]) > 59:
            raise _fail(f"--decision-time {hhmm!r} is not HH:MM")
    times = ",".join(sorted(set(decision_time)))
    if folds == 1 or folds < 0:
        raise _fail(f"--folds {folds}: expected 0 or at least 2")
    folder = data_dir / "kalshi/weather-events-2024-25"
    for s in series:
        if not (folder / f"{s}_events.jsonl.gz").exists() or \
                not (folder / f"{s}_trades.parquet").exists():
            raise _fail(f"--series {s!r}: no {s}_events.jsonl.gz / {s}_trades.parquet in "
                        f"{folder}")
    try:
        config = BacktestConfig(fill=FillModel(spread_cost_cents=spread_cost_cents,
                                               queue_ahead_contracts=queue_ahead),
                                starting_cash_cents=starting_cash_cents)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    progress = _Progress()
    try:
        run = backtest_weather(data_dir, out, series=series, since=first, until=last,
                               strategy=strategy, decision_time=times, config=config,
                               folds=folds, archive=archive,
                               sources=forecast_source or None,
                               refresh_archive=refresh_archive, progress=progress)
    finally:
        progress.close()
    typer.echo(f"backtest {strategy} {', '.join(series)} {first or 'start'}..{last or 'end'} "
               f"at {times} local")
    for name, value in summary_rows(run.metrics):
        typer.echo(f"  {name:34} {value}")
    if run.walk is not None and run.walk_metrics is not None:
        typer.echo("walk-forward (min edge fitted on the past, tested on the next block):")
        for f in run.walk.folds:
            typer.echo(f"  fold {f.index}: {len(f.test_events)} events, min edge "
                       f"{f.chosen_min_edge_cents}c, test P&L "
                       f"{f.test.final_cash_cents - f.test.starting_cash_cents}c")
        for name, value in summary_rows(run.walk_metrics):
            typer.echo(f"  out-of-sample {name:20} {value}")
    typer.echo("excluded or unusable input:")
    for issue in list(run.result.issues) + list(run.issues):
        typer.echo(f"  {issue.kind}: {issue.count} ({issue.detail})")
    typer.echo(f"report: {run.report}")
    record = {k: v for k, v in metrics_record(run.metrics).items() if k != "daily_pnl_cents"}
    record["report"] = str(run.report)
    record["events_replayed"] = run.result.events_replayed
    if run.walk_metrics is not None:
        record["walk_forward_pnl_cents"] = run.walk_metrics.total_pnl_cents
    typer.echo(json.dumps(record))


def register(app: typer.Typer) -> None:
    """Add `backtest` to the root CLI."""
    app.command(name="backtest")(backtest)
