"""Backtest I/O: load recorded trades and markets, build as-of forecast inputs, write the report.

Invariants: the tape and markets are read from a data directory exactly as recorded (Parquet /
JSONL), every excluded row is reported by ``models.backtest`` as an ``Issue``; a decision's
probabilities come from ``tasks.weather_eval.ModelRunner``, which reads the archive only through
``ArchiveView.forecasts_before``/``observed_before`` (issued/known strictly before the decision);
the report (HTML + PNGs) is written next to a ``metrics.json`` in one output folder.
"""

from __future__ import annotations

import gzip
import html
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from models.backtest import (
    BacktestConfig,
    BacktestResult,
    DecisionInput,
    DecisionRecord,
    Issue,
    MarketRecord,
    Tape,
    build_tape,
    run_backtest,
)
from models.backtest_metrics import Metrics, compute_metrics, equity_curve
from models.backtest_walkforward import WalkForwardResult, walk_forward
from models.climate import STATIONS
from models.forecast_archive import ms_from_datetime
from models.scoring import reliability
from models.weather import bracket_probabilities
from tasks.forecast_archive import ArchiveView, event_day
from tasks.weather_eval import ModelRunner, SettledEvent, decision_instant, load_events

__all__ = [
    "EVENTS_FOLDER",
    "BacktestRun",
    "backtest_weather",
    "open_view",
    "publish_backtest",
    "run_backtest_task",
    "settled_events",
    "summary_rows",
    "STRATEGIES",
    "ForecastInputs",
    "forecast_decisions",
    "load_markets",
    "load_tape",
    "read_trades",
    "tape_from_frame",
    "metrics_record",
    "write_report",
]

EVENTS_FOLDER = "kalshi/weather-events-2024-25"
STRATEGIES = ("weather",)  # EMOS model probabilities from the forecast archive


def _ms(text: str) -> int:
    return ms_from_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))


TRADE_COLUMNS = ["trade_id", "ticker", "count", "created_time", "yes_price", "taker_side"]


def read_trades(paths: Sequence[Path]) -> pd.DataFrame:
    """Read trade Parquet files as one frame; ticker and taker_side dictionary-encoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(p, columns=TRADE_COLUMNS, read_dictionary=["ticker", "taker_side"])
              for p in paths]
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TRADE_COLUMNS})
    return pa.concat_tables(tables).to_pandas()


def _fixed_width_ids(ids: pd.Series) -> pd.Series | np.ndarray:
    # Trade ids of one length (Kalshi's are UUIDs) as a numpy ``S<n>`` view of the Arrow bytes,
    # which ``build_tape`` screens for repeats without hashing 1.5 M Python strings; ids of
    # mixed lengths, with nulls or not strings stay a Series (the exact pandas check).
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(ids) < 2:
        return ids
    try:
        converted = pa.array(ids)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return ids
    arr = converted if isinstance(converted, pa.ChunkedArray) else pa.chunked_array([converted])
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return ids
    lengths = pc.min_max(pc.binary_length(arr))
    width = lengths["min"].as_py()
    if not width or width != lengths["max"].as_py():
        return ids
    fixed = arr.combine_chunks().cast(pa.binary(width))
    return np.frombuffer(fixed.buffers()[1], dtype=f"S{width}", count=len(fixed),
                         offset=fixed.offset * width)


def tape_from_frame(frame: pd.DataFrame) -> Tape:
    """Validate a trades frame (``TRADE_COLUMNS``) into a ``Tape``."""
    ts = frame["created_time"]
    ts_ms = (ts.dt.tz_convert("UTC").dt.as_unit("ms").astype("int64").to_numpy()
             if len(frame) else np.array([], dtype=np.int64))
    return build_tape(_fixed_width_ids(frame["trade_id"]), frame["ticker"], ts_ms,
                      frame["yes_price"].to_numpy(), frame["count"].to_numpy(),
                      frame["taker_side"])


def load_tape(data_dir: Path, series: Sequence[str], *, since: date | None = None,
              until: date | None = None) -> Tape:
    """Read ``{SERIES}_trades.parquet`` for each series (optionally a UTC date window)."""
    folder = data_dir / EVENTS_FOLDER
    paths = []
    for s in series:
        path = folder / f"{s}_trades.parquet"
        if not path.exists():
            raise FileNotFoundError(f"--series {s!r}: no {path.name} in {folder}")
        paths.append(path)
    frame = read_trades(paths)
    if len(frame) and (since is not None or until is not None):
        ts = frame["created_time"]
        keep = pd.Series(True, index=frame.index)
        if since is not None:  # two days early: the first events' quotes and 24 h volumes
            keep &= ts >= pd.Timestamp(since, tz="UTC") - pd.Timedelta(days=2)
        if until is not None:
            # trades of the last day's events run into the next UTC day
            keep &= ts < pd.Timestamp(until, tz="UTC") + pd.Timedelta(days=2)
        frame = frame[keep.to_numpy()]
    return tape_from_frame(frame)


def load_markets(data_dir: Path, series: Sequence[str]) -> list[MarketRecord]:
    """Read every market of ``{SERIES}_events.jsonl.gz``: times, recorded result ('' if none).

    Settlement happens at ``expected_expiration_time`` (the morning after the climate day),
    falling back to ``close_time``.
    """
    out: list[MarketRecord] = []
    for s in series:
        path = data_dir / EVENTS_FOLDER / f"{s}_events.jsonl.gz"
        with gzip.open(path, "rt") as fh:
            for line in fh:
                doc = json.loads(line)
                category = doc["event"].get("category") or "Climate and Weather"
                for m in doc["markets"]:
                    close = _ms(m["close_time"])
                    settle = _ms(m.get("expected_expiration_time") or m["close_time"])
                    result = m.get("result") if m.get("result") in ("yes", "no") else ""
                    out.append(MarketRecord(m["ticker"], m["event_ticker"], s,
                                            _ms(m["open_time"]), close, max(settle, close),
                                            result, category))
    return out


@dataclass(frozen=True)
class ForecastInputs:
    """Decisions with their as-of probabilities, and why other events got none."""

    decisions: tuple[DecisionInput, ...]
    skipped: tuple[Issue, ...]
    events: int


def forecast_decisions(view: ArchiveView, events: Sequence[SettledEvent], hhmm: str,
                       progress: Callable[[int, int], None] | None = None) -> ForecastInputs:
    """Probabilities per event at local clock time ``hhmm`` on its climate day, as known then.

    Walk-forward EMOS (``ModelRunner``): forecasts issued and observations known strictly before
    the decision instant only; an event without them is skipped with the reason.
    """
    runners: dict[str, ModelRunner] = {}
    reasons: Counter[str] = Counter()
    out: list[DecisionInput] = []
    for i, ev in enumerate(sorted(events, key=lambda e: (e.day, e.series))):
        station = STATIONS[ev.series]
        runner = runners.setdefault(ev.series, ModelRunner(view, station, hhmm))
        instant = decision_instant(ev.day, hhmm, station.time_zone)
        predicted = runner.predict(ev.day, instant)
        if progress is not None:
            progress(i + 1, len(events))
        if isinstance(predicted, str):
            reasons[predicted] += 1
            continue
        probs = bracket_probabilities(predicted.predictive, ev.brackets)
        out.append(DecisionInput(ev.event_ticker, ms_from_datetime(instant),
                                 tuple((b.ticker, float(p))
                                       for b, p in zip(ev.brackets, probs, strict=True))))
    skipped = tuple(Issue("no_forecast", n, r) for r, n in sorted(reasons.items()))
    return ForecastInputs(tuple(out), skipped, len(events))


def settled_events(data_dir: Path, series: Sequence[str], since: date | None,
                   until: date | None) -> tuple[list[SettledEvent], list[Issue]]:
    """Events whose recorded results the bracket rule reproduces, in the date window."""
    events: list[SettledEvent] = []
    issues: list[Issue] = []
    for s in series:
        evs, settled, reproduced = load_events(data_dir / EVENTS_FOLDER, s)
        if settled != reproduced:
            issues.append(Issue("unreproduced_settlement", settled - reproduced,
                                f"{s}: settled events whose results the bracket rule does not "
                                f"reproduce (or without a settlement value), excluded"))
        events += [e for e in evs if (since is None or e.day >= since)
                   and (until is None or e.day <= until)]
    return events, issues


# ------------------------------------------------------------------------------- reporting
def _dollars(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def metrics_record(m: Metrics) -> dict[str, Any]:
    """The metrics as a JSON-able dict (cents stay integers, days ISO strings)."""
    record = asdict(m)
    record["daily_pnl_cents"] = [[d.isoformat(), v] for d, v in m.daily_pnl_cents]
    record["pnl_by_edge_bucket"] = [list(x) for x in m.pnl_by_edge_bucket]
    record["pnl_by_series"] = [list(x) for x in m.pnl_by_series]
    return record


def _plots(out: Path, metrics: Metrics, starting_cash_cents: int,
           decisions: Sequence[DecisionRecord]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    curve = equity_curve(metrics.daily_pnl_cents, starting_cash_cents)
    days = [d for d, _, _ in curve]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax1.plot(days, [e / 100 for _, e, _ in curve])
    ax1.set_ylabel("equity ($)")
    ax1.set_title("Equity curve (P&L booked at settlement)")
    ax2.fill_between(days, [-dd / 100 for _, _, dd in curve], 0, color="tab:red")
    ax2.set_ylabel("drawdown ($)")
    fig.tight_layout()
    fig.savefig(out / "equity.png", dpi=90)
    plt.close(fig)
    names.append("equity.png")
    pairs = [(d.prob_yes, d.result == "yes") for d in decisions if d.result in ("yes", "no")]
    bins = reliability(pairs, bins=10)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--")
    ax.plot([b.mean_forecast for b in bins], [b.observed_frequency for b in bins], marker="o")
    ax.set_xlabel("forecast P(YES)")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"Reliability ({len(pairs)} market decisions)")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=90)
    plt.close(fig)
    names.append("reliability.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [b[0] for b in metrics.pnl_by_edge_bucket]
    ax.bar(labels, [b[2] / 100 for b in metrics.pnl_by_edge_bucket])
    ax.set_xlabel("decision edge per contract")
    ax.set_ylabel("P&L ($)")
    ax.set_title("P&L by edge bucket")
    fig.tight_layout()
    fig.savefig(out / "edge_buckets.png", dpi=90)
    plt.close(fig)
    names.append("edge_buckets.png")
    return names


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def summary_rows(m: Metrics) -> list[tuple[str, str]]:
    """Human-readable (name, value) lines of the headline metrics."""
    def opt(v: float | None, fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    return [
        ("total P&L", _dollars(m.total_pnl_cents)),
        ("daily Sharpe (annualised, 365 d)", opt(m.sharpe_daily_annualised, ".2f")),
        ("win rate (markets)", opt(m.win_rate, ".1%")),
        ("markets traded", str(m.markets_traded)),
        ("average edge per contract", opt(m.avg_edge_cents, ".2f") + "c"),
        ("max drawdown", _dollars(m.max_drawdown_cents)),
        ("limit orders / fill rate", f"{m.limit_orders} / {opt(m.limit_fill_rate, '.1%')}"),
        ("taker orders", str(m.taker_orders)),
        ("contracts", str(m.contracts)),
        ("turnover", _dollars(m.turnover_cents)),
        ("fees", _dollars(m.fees_cents)),
    ]


def write_report(out: Path, result: BacktestResult, metrics: Metrics, *,
                 title: str, walk: WalkForwardResult | None = None,
                 walk_metrics: Metrics | None = None,
                 extra_issues: Sequence[Issue] = ()) -> Path:
    """Write ``report.html``, its PNGs and ``metrics.json`` into ``out``; return the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    images = _plots(out, metrics, result.starting_cash_cents, result.decisions)
    issues = list(result.issues) + list(extra_issues)
    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             "<style>body{font-family:sans-serif;max-width:60em}td,th{padding:2px 8px;"
             "border-bottom:1px solid #ddd;text-align:left}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             _table(("metric", "value"), summary_rows(metrics)),
             "<h2>P&amp;L by edge bucket</h2>",
             _table(("edge", "contracts", "P&L"),
                    [(b, c, _dollars(p)) for b, c, p in metrics.pnl_by_edge_bucket]),
             "<h2>P&amp;L by series</h2>",
             _table(("series", "contracts", "P&L"),
                    [(s, c, _dollars(p)) for s, c, p in metrics.pnl_by_series])]
    parts += [f"<p><img src='{name}' alt='{name}'></p>" for name in images]
    if walk is not None and walk_metrics is not None:
        rows = []
        for f in walk.folds:
            fold_m = compute_metrics(f.test.fills, f.test.orders,
                                     starting_cash_cents=f.test.starting_cash_cents)
            best_train = f.train_pnl_cents[f.chosen_min_edge_cents]
            rows.append((f.index, len(f.train_events), len(f.test_events),
                         f"{f.test_events[0]} .. {f.test_events[-1]}" if f.test_events else "",
                         f.chosen_min_edge_cents, _dollars(best_train),
                         _dollars(fold_m.total_pnl_cents),
                         "n/a" if fold_m.sharpe_daily_annualised is None
                         else f"{fold_m.sharpe_daily_annualised:.2f}"))
        parts += ["<h2>Walk-forward (min edge fitted on the past, tested on the next block)</h2>",
                  _table(("fold", "train events", "test events", "test range",
                          "chosen min edge (c)", "train P&L", "test P&L", "test Sharpe"), rows),
                  "<h3>Aggregate of the test blocks (out of sample)</h3>",
                  _table(("metric", "value"), summary_rows(walk_metrics))]
    parts += ["<h2>Excluded or unusable input</h2>",
              _table(("kind", "count", "detail"), [(i.kind, i.count, i.detail) for i in issues]),
              "<h2>Assumptions</h2><ul>",
              f"<li>Taking orders fill in full at the last recorded trade before the decision "
              f"plus {result.config.fill.spread_cost_cents}c spread cost.</li>",
              f"<li>Resting orders fill only from later recorded trades that sold into their "
              f"side at or through their price; prints exactly at our price first consume "
              f"{result.config.fill.queue_ahead_contracts} contracts assumed queued ahead.</li>",
              "<li>Fees exact (models.fees via the matching engine); settlement from the "
              "recorded market result; P&amp;L booked on the UTC day of settlement.</li>",
              "</ul></body></html>"]
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    record = {"metrics": metrics_record(metrics),
              "issues": [asdict(i) for i in issues],
              "events_replayed": result.events_replayed,
              "engine_fills": result.engine_fills,
              "final_cash_cents": result.final_cash_cents,
              "starting_cash_cents": result.starting_cash_cents}
    if walk is not None and walk_metrics is not None:
        record["walk_forward"] = {
            "folds": [{"fold": f.index, "chosen_min_edge_cents": f.chosen_min_edge_cents,
                       "train_pnl_cents": {str(k): v for k, v in f.train_pnl_cents.items()},
                       "test_pnl_cents": f.test.final_cash_cents - f.test.starting_cash_cents,
                       "test_events": len(f.test_events)} for f in walk.folds],
            "aggregate": metrics_record(walk_metrics)}
    (out / "metrics.json").write_text(json.dumps(record, indent=1, default=str),
                                      encoding="utf-8")
    return path


def _in_window(m: MarketRecord, since: date | None, until: date | None) -> bool:
    day = event_day(m.event_ticker)
    return (since is None or day >= since) and (until is None or day <= until)


@dataclass(frozen=True)
class BacktestRun:
    """One complete run: the full-period backtest, its walk-forward, metrics and report."""

    result: BacktestResult
    metrics: Metrics
    walk: WalkForwardResult | None
    walk_metrics: Metrics | None
    issues: tuple[Issue, ...]
    report: Path


def open_view(data_dir: Path, archive: Path, sources: Sequence[str] | None = None, *,
              refresh: bool = True) -> ArchiveView:
    """Import the data directory's forecast/observation history into ``archive``; read it.

    ``refresh=False`` reads an existing archive as it is (the import is skipped only when the
    file exists; a missing archive is always imported).

    ``sources`` keeps only forecasts from those archive sources (e.g. ``["ndfd"]``); observed
    values are always all kept (they are the training targets, known after each day).
    """
    from sqlmodel import Session, select

    from models.forecast_archive import ForecastRecord, ObservedValue
    from tasks.forecast_archive import ForecastPoint, import_all, load_view, open_archive

    archive.parent.mkdir(parents=True, exist_ok=True)
    existed = archive.exists()
    engine = open_archive(f"sqlite:///{archive}")
    if refresh or not existed:
        import_all(engine, data_dir, datetime.now(UTC))
    if sources is None:
        return load_view(engine)
    with Session(engine) as session:
        forecasts = [(r.station, ForecastPoint(r.source, r.quantity,
                                               date.fromisoformat(r.valid_date), r.value,
                                               r.issue_ts_ms))
                     for r in session.exec(select(ForecastRecord))
                     if r.source in sources]
        observed = [(r.source, r.station, date.fromisoformat(r.valid_date), r.value,
                     r.known_ts_ms) for r in session.exec(select(ObservedValue))]
    return ArchiveView(forecasts, observed)


def backtest_weather(data_dir: Path, out: Path, *, series: Sequence[str],
                     since: date | None = None, until: date | None = None,
                     strategy: str = "weather", decision_time: str = "10:00",  # "HH:MM,..."
                     config: BacktestConfig | None = None, folds: int = 5,
                     view: ArchiveView | None = None, archive: Path | None = None,
                     sources: Sequence[str] | None = None, refresh_archive: bool = True,
                     progress: Callable[[str, int, int], None] | None = None) -> BacktestRun:
    """Run the weather strategy over recorded history; write the report into ``out``."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}")
    config = config or BacktestConfig()

    def step(stage: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(stage, done, total)

    if view is None:
        view = open_view(data_dir, archive or out / "forecast_archive.sqlite", sources,
                         refresh=refresh_archive)
    events, issues = settled_events(data_dir, series, since, until)
    decisions: list[DecisionInput] = []
    for hhmm in decision_time.split(","):  # "10:00,14:00": several decisions per event
        inputs = forecast_decisions(view, events, hhmm.strip(), step(f"forecasts {hhmm}"))
        issues += [replace(i, detail=f"{i.detail} (at {hhmm.strip()})") for i in inputs.skipped]
        decisions += inputs.decisions
    wanted = {d.event_ticker for d in decisions}
    markets = [m for m in load_markets(data_dir, series)
               if m.event_ticker in wanted or (m.result == "" and _in_window(m, since, until))]
    tape = load_tape(data_dir, series, since=since, until=until)
    result = run_backtest(tape, markets, decisions, config, progress=step("replay"))
    metrics = compute_metrics(result.fills, result.orders,
                              starting_cash_cents=result.starting_cash_cents)
    walk = walk_metrics = None
    if folds >= 2 and len(wanted) >= folds:
        walk = walk_forward(tape, markets, decisions, config, n_blocks=folds,
                            progress=step("walk-forward"))
        walk_metrics = compute_metrics(walk.test_fills, walk.test_orders,
                                       starting_cash_cents=config.starting_cash_cents)
    elif folds >= 2:
        issues.append(Issue("walk_forward_skipped", len(wanted),
                            f"{len(wanted)} events with decisions, fewer than {folds} blocks"))
    title = (f"Backtest {strategy} {', '.join(series)} "
             f"{since or 'start'}..{until or 'end'} at {decision_time} local"
             + (f", forecasts from {', '.join(sources)} only" if sources else ""))
    report = write_report(out, result, metrics, title=title, walk=walk,
                          walk_metrics=walk_metrics, extra_issues=issues)
    return BacktestRun(result, metrics, walk, walk_metrics, tuple(issues), report)


@task(name="run-backtest", cache_policy=NO_CACHE)
def run_backtest_task(data_dir: str, out: str, series: list[str], since: date | None,
                      until: date | None, strategy: str, decision_time: str, folds: int,
                      spread_cost_cents: int, queue_ahead_contracts: int,
                      archive: str | None = None,
                      refresh_archive: bool = True) -> dict[str, Any]:
    """Run ``backtest_weather``; return a small JSON-able summary (metrics, issues, report)."""
    from models.backtest import FillModel

    config = BacktestConfig(fill=FillModel(spread_cost_cents=spread_cost_cents,
                                           queue_ahead_contracts=queue_ahead_contracts))
    run = backtest_weather(Path(data_dir), Path(out), series=series, since=since, until=until,
                           strategy=strategy, decision_time=decision_time, config=config,
                           folds=folds, archive=Path(archive) if archive else None,
                           refresh_archive=refresh_archive)
    summary: dict[str, Any] = {
        "metrics": {k: v for k, v in metrics_record(run.metrics).items()
                    if k != "daily_pnl_cents"},
        "summary": summary_rows(run.metrics),
        "issues": [asdict(i) for i in list(run.result.issues) + list(run.issues)],
        "report": str(run.report),
        "events_replayed": run.result.events_replayed,
    }
    if run.walk is not None and run.walk_metrics is not None:
        summary["walk_forward"] = {
            "summary": summary_rows(run.walk_metrics),
            "folds": [{"fold": f.index, "test_events": len(f.test_events),
                       "chosen_min_edge_cents": f.chosen_min_edge_cents,
                       "test_pnl_cents": f.test.final_cash_cents - f.test.starting_cash_cents}
                      for f in run.walk.folds]}
    return summary


@task(name="publish-backtest", cache_policy=NO_CACHE)
def publish_backtest(summary: dict[str, Any], title: str) -> None:
    """Leave the metrics as a table artifact and the report's location as a markdown artifact."""
    rows = [{"metric": k, "value": v} for k, v in summary["summary"]]
    if "walk_forward" in summary:
        rows += [{"metric": f"out-of-sample {k}", "value": v}
                 for k, v in summary["walk_forward"]["summary"]]
    create_table_artifact(key="backtest-metrics", table=rows, description=title)
    report = Path(summary["report"])
    issues = "\n".join(f"| {i['kind']} | {i['count']} | {i['detail']} |"
                       for i in summary["issues"])
    create_markdown_artifact(
        key="backtest-report",
        markdown=(f"# {title}\n\nReport: [{report.name}]({report.resolve().as_uri()}) "
                  f"(`{report}`)\n\n| excluded input | count | detail |\n|---|---|---|\n"
                  f"{issues}\n"),
        description="Backtest report location and excluded input")
