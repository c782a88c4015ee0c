"""Weather commands: `eventdesk forecast SERIES` and `eventdesk evaluate --data-dir DIR`.

Invariant: `forecast` prints probabilities only for a series whose settlement source and market
rules match the station registry and whose brackets partition the integers (otherwise one line
naming the reason and exit 2: no probabilities, nothing to trade); `evaluate` scores only with
what was known at each decision time, prints the settlement audit line, and ends with exactly
one JSON object on the last line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer

from models.brackets import BracketError, parse_bracket, partition_problem
from models.climate import (
    StationError,
    check_market_rules,
    check_series,
    climate_day_of,
    station_for,
)
from models.fees import FeeSchedule, fee_per_contract_ceiling_cents
from models.money import MoneyError, price_cents_from_dollars
from models.weather import WeatherModelError, bracket_probabilities, truncate_below

__all__ = ["register"]

HIGH_SERIES = ("KXHIGHNY", "KXHIGHCHI", "KXHIGHMIA", "KXHIGHAUS", "KXHIGHDEN")


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"eventdesk: {message}", err=True)
    return typer.Exit(code)


def _archive(archive: Path | None, data_dir: Path | None) -> Any:
    from tasks.forecast_archive import import_all, load_view, open_archive
    from tasks.settings import load_settings

    path = archive or load_settings().resolved_data_dir / "forecast_archive.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = open_archive(f"sqlite:///{path}")
    if data_dir is not None:
        import_all(engine, data_dir, datetime.now(UTC))
    return load_view(engine)


def _quote_cents(market: Mapping[str, Any], side: str) -> int | None:
    # current wire: "yes_bid_dollars": "0.5600"; recorded 2024-25 data: "yes_bid": 56 (cents)
    dollars = market.get(f"yes_{side}_dollars")
    if dollars is not None:
        return int(price_cents_from_dollars(dollars, field=f"yes_{side}_dollars"))
    cents = market.get(f"yes_{side}")
    if cents is None:
        return None
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise MoneyError("legacy price must be integer cents", field=f"yes_{side}", value=cents)
    return cents


def _load_markets(markets_file: Path | None, series: str, day: date) -> list[dict[str, Any]]:
    if markets_file is not None:
        doc = json.loads(markets_file.read_text())
        markets = doc.get("markets", doc) if isinstance(doc, dict) else doc
        if isinstance(doc, dict) and "event" in doc and "markets" in doc:
            markets = doc["markets"]
        if not isinstance(markets, list) or not markets:
            raise _fail(f"{markets_file}: no markets list")
        return [dict(m) for m in markets]
    from tasks.forecast_archive import event_day
    from tasks.kalshi_client import kalshi_client
    from tasks.settings import load_settings

    with kalshi_client(load_settings(), require_auth=False) as client:
        found = [m for m in client.get_markets(series_ticker=series)
                 if event_day(m.event_ticker) == day]
    return [{"ticker": m.ticker, "event_ticker": m.event_ticker, "strike_type": m.strike_type,
             "floor_strike": m.floor_strike, "cap_strike": m.cap_strike,
             "yes_sub_title": m.yes_sub_title, "rules_primary": m.rules_primary,
             "yes_bid_dollars": str(m.yes_bid), "yes_ask_dollars": str(m.yes_ask)}
            for m in found]


def _load_series(series_file: Path | None, markets_file: Path | None,
                 series: str) -> dict[str, Any] | None:
    # the series' settlement sources: from a saved GET /series body, or from the exchange
    if series_file is not None:
        doc = json.loads(series_file.read_text())
        return dict(doc.get("series", doc))
    if markets_file is not None:
        return None  # offline run without a series body: only the market rules are checked
    from tasks.kalshi_client import kalshi_client
    from tasks.settings import load_settings

    with kalshi_client(load_settings(), require_auth=False) as client:
        found = client.get_series(series)
    return {"ticker": found.ticker, "settlement_sources": [
        {"name": s.name, "url": s.url or ""} for s in (found.settlement_sources or ())]}


def _edge(prob: float, price_cents: int | None) -> str:
    # expected value per contract of buying at `price_cents`, after the taker fee
    if price_cents is None or not 1 <= price_cents <= 99:
        return "-"
    fee = fee_per_contract_ceiling_cents(1, price_cents, FeeSchedule())
    return f"{prob * 100 - price_cents - fee:+.1f}"


def forecast(
    series: str = typer.Argument(..., help="Series ticker, e.g. KXHIGHNY."),
    day: str | None = typer.Option(None, "--date", help="Climate day (YYYY-MM-DD); default today."),
    markets_file: Path | None = typer.Option(
        None, "--markets-file", help="JSON of the event's markets (else read from the exchange)."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Import this real-data directory into the archive first."),
    archive: Path | None = typer.Option(None, "--archive", help="Forecast archive SQLite file."),
    as_of: str | None = typer.Option(None, "--as-of", help="Decision instant (ISO); default now."),
    running_max: float | None = typer.Option(
        None, "--running-max", help="Observed running max so far today (°F), truncates below."),
    series_file: Path | None = typer.Option(
        None, "--series-file", help="Saved GET /series body to check settlement_sources."),
) -> None:
    """Bracket table: model probability, market bid/ask and edge after fees, inputs used."""
    from tasks.weather_eval import ModelRunner

    try:
        station = station_for(series)
    except StationError as exc:
        raise _fail(str(exc)) from None
    now = datetime.fromisoformat(as_of) if as_of else datetime.now(UTC)
    if now.tzinfo is None:
        raise _fail(f"--as-of {as_of!r} needs a UTC offset")
    target = date.fromisoformat(day) if day else climate_day_of(now, station.standard_offset_hours)
    series_doc = _load_series(series_file, markets_file, station.series)
    if series_doc is not None and (alarm := check_series(series_doc)) is not None:
        raise _fail(f"ALARM {alarm.reason}; no probabilities", 2)
    markets = _load_markets(markets_file, station.series, target)
    for m in markets:
        alarm = check_market_rules(station.series, str(m.get("ticker")),
                                   str(m.get("rules_primary")))
        if alarm is not None:
            raise _fail(f"ALARM {alarm.reason}; no probabilities", 2)
    try:
        brackets = [parse_bracket(m) for m in markets]
    except BracketError as exc:
        raise _fail(f"{exc}; no probabilities", 2) from None
    if (problem := partition_problem(brackets)) is not None:
        raise _fail(f"brackets do not partition the integers: {problem}; no probabilities", 2)
    view = _archive(archive, data_dir)
    local = now.astimezone(ZoneInfo(station.time_zone))
    runner = ModelRunner(view, station, f"{local.hour:02d}:{local.minute:02d}")
    predicted = runner.predict(target, now)
    if isinstance(predicted, str):
        raise _fail(f"{station.series} {target}: {predicted}; no probabilities", 2)
    fit, dist = predicted.fit, predicted.predictive
    if running_max is not None:
        dist = truncate_below(dist, running_max)
    try:
        probs = bracket_probabilities(dist, brackets)
    except WeatherModelError as exc:
        raise _fail(f"{exc}; no probabilities", 2) from None
    typer.echo(f"{station.series} {target} ({station.name}, CLI{station.cli_id}) as of "
               f"{now.astimezone(UTC).isoformat()}")
    typer.echo(f"{'bracket':<16}{'model':>7}{'bid':>5}{'ask':>5}{'edge YES':>10}{'edge NO':>9}")
    for b, p, m in zip(brackets, probs, markets, strict=True):
        bid, ask = _quote_cents(m, "bid"), _quote_cents(m, "ask")
        no_price = None if bid is None else 100 - bid
        typer.echo(f"{b.label:<16}{p:>7.3f}{bid if bid is not None else '-':>5}"
                   f"{ask if ask is not None else '-':>5}{_edge(p, ask):>10}"
                   f"{_edge(1 - p, no_price):>9}")
    typer.echo("inputs:")
    for (source, quantity), point in sorted(runner.view.forecasts_before(
            station.icao, target, now).items()):
        issued = datetime.fromtimestamp(point.issue_ts_ms / 1000, UTC).isoformat()
        typer.echo(f"  {source} {quantity} = {point.value:.1f} issued {issued}")
    tails = "normal" if fit.df is None else f"student-t df={fit.df:g}"
    typer.echo(f"  EMOS: mu={dist.mu:.2f} sigma={dist.sigma:.2f} {tails}, {fit.rows} training "
               f"days, spread widened x{predicted.spread_factor:.2f} by recent out-of-sample errors"
               + (f", truncated below {dist.lower}" if dist.lower is not None else ""))


def _fmt(card: Any) -> str:
    return f"{card.brier:>7.3f}{card.log_loss:>9.3f}{card.accuracy:>9.3f}{card.events:>7d}"


def evaluate(
    data_dir: Path = typer.Option(..., "--data-dir", exists=True, file_okay=False,
                                  help="The real data directory (../shared/data)."),
    decision_time: list[str] = typer.Option(  # noqa: B006
        ["10:00"], "--decision-time", help="Local clock time on the climate day (repeatable)."),
    series: list[str] = typer.Option(  # noqa: B006
        list(HIGH_SERIES), "--series", help="Series to score (repeatable)."),
    since: str | None = typer.Option(None, "--since", help="Score events from this day."),
    until: str | None = typer.Option(None, "--until", help="Score events up to this day."),
    archive: Path | None = typer.Option(None, "--archive", help="Forecast archive SQLite file."),
) -> None:
    """Walk-forward skill of model, market and blend on the real settled events."""
    from tasks.weather_eval import TradeIndex, load_events
    from tasks.weather_eval import evaluate as run

    for hhmm in decision_time:
        parts = hhmm.split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[0]) > 23 \
                or int(parts[1]) > 59:
            raise _fail(f"--decision-time {hhmm!r} is not HH:MM")
    folder = data_dir / "kalshi/weather-events-2024-25"
    events, trades, settled, reproduced = [], {}, 0, 0
    for s in series:
        if not (folder / f"{s}_events.jsonl.gz").exists():
            raise _fail(f"--series {s!r}: no {s}_events.jsonl.gz in {folder}")
        evs, n, ok = load_events(folder, s)
        settled, reproduced = settled + n, reproduced + ok
        lo = date.fromisoformat(since) if since else date.min
        hi = date.fromisoformat(until) if until else date.max
        events += [e for e in evs if lo <= e.day <= hi]
        trades[s] = TradeIndex.from_parquet(folder / f"{s}_trades.parquet")
    events.sort(key=lambda e: (e.day, e.series))
    view = _archive(archive, data_dir)
    result = run(events, trades, view, decision_time)
    typer.echo(f"settlement: {reproduced}/{settled} events reproduced")
    summary: dict[str, Any] = {"settled_events": settled, "settlement_reproduced": reproduced,
                               "decision_times": {}}
    for hhmm in decision_time:
        cards = result.cards[hhmm]
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(result.skipped[hhmm].items()))
        typer.echo(f"\ndecision {hhmm} local: {cards['model'].events} events scored"
                   + (f" (skipped: {skipped})" if skipped else ""))
        typer.echo(f"{'':<18}{'brier':>7}{'logloss':>9}{'accuracy':>9}{'events':>7}")
        for name in ("model", "market", "blend"):
            typer.echo(f"{name:<18}{_fmt(cards[name])}")
        for (t, s), by in sorted(result.by_series.items()):
            if t != hhmm:
                continue
            for name in ("model", "market", "blend"):
                typer.echo(f"{s + ' ' + name:<18}{_fmt(by[name])}")
            sigma = result.sigma_f[(t, s)]
            typer.echo(f"{s + ' sigma':<18}{sigma:>7.2f} °F (mean predictive sigma)")
        for who in ("model", "blend"):
            diff, se = result.vs_market[(hhmm, who)]
            typer.echo(f"{who} - market Brier: {diff:+.4f} ± {se:.4f} (paired s.e.; negative "
                       f"means better than the market)")
        typer.echo(f"model CRPS {result.model_crps[hhmm]:.3f} °F; market brackets never traded "
                   f"before the decision (priced at 1c): {result.floor_brackets[hhmm]}")
        typer.echo("reliability (bin: mean forecast -> observed frequency, n)")
        for name in ("model", "market", "blend"):
            cells = " ".join(f"{b.mean_forecast:.2f}->{b.observed_frequency:.2f}({b.count})"
                             for b in result.reliability[hhmm][name])
            typer.echo(f"  {name:<7}{cells}")
        summary["decision_times"][hhmm] = {
            "events_scored": cards["model"].events,
            **{name: {"brier": _num(cards[name].brier), "log_loss": _num(cards[name].log_loss),
                      "accuracy": _num(cards[name].accuracy)}
               for name in ("model", "market", "blend")},
        }
    typer.echo(json.dumps(summary, sort_keys=True))


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("forecast")(forecast)
    app.command("evaluate")(evaluate)
