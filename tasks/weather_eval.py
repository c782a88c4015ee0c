"""Walk-forward evaluation of the weather model against the market on real settled events.

Invariant: for an event on climate day D and a decision time T (local clock time on D), the
model sees only forecasts issued before T and observed highs known before T (both through
`ArchiveView`), the market is the last trade per bracket strictly before T, and model, market
and blend are scored on the same events and the same settled bracket.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from models.brackets import (
    Bracket,
    event_settlement_value,
    parse_bracket,
    partition_problem,
    settle,
)
from models.climate import STATIONS, Station
from models.scoring import (
    ReliabilityBin,
    Scorecard,
    brier,
    crps_integer,
    reliability,
    scorecard,
)
from models.weather import (
    EmosFit,
    Predictive,
    TrainingRow,
    WeatherModelError,
    blend,
    bracket_probabilities,
    fit_blend_weight,
    fit_emos,
    normalise_prices,
    spread_inflation,
)
from tasks.forecast_archive import ArchiveView, event_day

__all__ = [
    "FEATURE_SETS",
    "ModelRunner",
    "Prediction",
    "EvaluationResult",
    "SettledEvent",
    "TradeIndex",
    "decision_instant",
    "evaluate",
    "load_events",
    "settlement_audit",
]

# predictor sets, richest first; a set is used when the day has all of them and enough history
FEATURE_SETS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("nws-gridpoint", "tmax_f"), ("nws-gridpoint", "hourly_max_f")),  # recorded live snapshots
    (("ndfd", "tmax_f"), ("open-meteo", "tmax_f"), ("open-meteo", "hourly_max_f")),
    (("open-meteo", "tmax_f"), ("open-meteo", "hourly_max_f")),
    (("ndfd", "tmax_f"),),
    (("open-meteo", "tmax_f"),),
)
MIN_TRAINING_ROWS = 20
RECENT_DAYS = 60  # always train on the last 60 days ...
SEASON_HALF_WIDTH_DAYS = 45  # ... and on the same season of earlier years
TRAINING_YEARS = 4
REFIT_EVERY_DAYS = 7
CALIBRATION_DAYS = 60


@dataclass(frozen=True)
class SettledEvent:
    """One settled event: its day, brackets (in market order) and the winning index."""

    series: str
    event_ticker: str
    day: date
    brackets: tuple[Bracket, ...]
    outcome: int
    value: int


def load_events(folder: Path, series: str) -> tuple[list[SettledEvent], int, int]:
    """Read a series' events; return settled ones, and (settled, reproduced) audit counts."""
    events, settled, reproduced = [], 0, 0
    with gzip.open(folder / f"{series}_events.jsonl.gz", "rt") as fh:
        for line in fh:
            doc = json.loads(line)
            markets = doc["markets"]
            if not all(m.get("result") in ("yes", "no") for m in markets):
                continue
            settled += 1
            brackets = tuple(parse_bracket(m) for m in markets)
            value = event_settlement_value(markets)
            if value is None or partition_problem(brackets) is not None:
                continue
            results = [settle(b, value.value) for b in brackets]
            if results != [m["result"] for m in markets]:
                continue
            reproduced += 1
            events.append(SettledEvent(series, doc["event"]["event_ticker"],
                                       event_day(doc["event"]["event_ticker"]), brackets,
                                       results.index("yes"), value.value))
    events.sort(key=lambda e: e.day)
    return events, settled, reproduced


def settlement_audit(folder: Path, series: Sequence[str]) -> tuple[int, int]:
    """Return (settled events, events whose every market result the bracket rule reproduces)."""
    settled = reproduced = 0
    for s in series:
        _events, n, ok = load_events(folder, s)
        settled, reproduced = settled + n, reproduced + ok
    return settled, reproduced


class TradeIndex:
    """Last trade price per ticker before an instant, from the recorded public trades."""

    def __init__(self, trades: pd.DataFrame) -> None:
        self._by_ticker: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        ordered = trades.sort_values("created_time", kind="stable")
        ts = ordered["created_time"].astype("int64").to_numpy() // 1000  # us -> ms
        prices = ordered["yes_price"].to_numpy()
        tickers = ordered["ticker"].to_numpy()
        for ticker, idx in pd.Series(range(len(ordered))).groupby(tickers).groups.items():
            rows = np.asarray(list(idx))
            self._by_ticker[str(ticker)] = (ts[rows], prices[rows])

    @classmethod
    def from_parquet(cls, path: Path) -> TradeIndex:
        """Load `{SERIES}_trades.parquet` (created_time UTC, yes_price cents)."""
        frame = pd.read_parquet(path, columns=["ticker", "created_time", "yes_price"])
        frame["created_time"] = frame["created_time"].dt.tz_convert("UTC").dt.as_unit("us")
        return cls(frame)

    def last_price_before(self, ticker: str, instant: datetime) -> int | None:
        """Return the last YES trade price (cents) strictly before `instant`, or None."""
        found = self._by_ticker.get(ticker)
        if found is None:
            return None
        ts, prices = found
        cutoff = int(instant.timestamp() * 1000)
        i = int(np.searchsorted(ts, cutoff, side="left"))
        return int(prices[i - 1]) if i > 0 else None


@dataclass
class _Scores:
    model: list[tuple[list[float], int]] = field(default_factory=list)
    market: list[tuple[list[float], int]] = field(default_factory=list)
    blend: list[tuple[list[float], int]] = field(default_factory=list)
    crps: list[float] = field(default_factory=list)
    floor_brackets: int = 0


@dataclass(frozen=True)
class EvaluationResult:
    """Scores per decision time (pooled and per series) and the reasons events were skipped."""

    cards: dict[str, dict[str, Scorecard]]  # decision time -> forecaster -> card (pooled)
    by_series: dict[tuple[str, str], dict[str, Scorecard]]  # (time, series) -> forecaster
    model_crps: dict[str, float]
    reliability: dict[str, dict[str, list[ReliabilityBin]]]
    skipped: dict[str, dict[str, int]]  # decision time -> reason -> count
    floor_brackets: dict[str, int]
    sigma_f: dict[tuple[str, str], float]  # (time, series) -> mean fitted sigma
    # (time, "model"|"blend") -> mean Brier difference to the market, its paired standard error
    vs_market: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)


def decision_instant(day: date, hhmm: str, zone: str) -> datetime:
    hour, minute = (int(v) for v in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _in_training_window(day: date, target: date) -> bool:
    age = (target - day).days
    if age <= 0 or age > 365 * TRAINING_YEARS:
        return False
    if age <= RECENT_DAYS:
        return True
    doy_gap = abs(day.timetuple().tm_yday - target.timetuple().tm_yday)
    return min(doy_gap, 365 - doy_gap) <= SEASON_HALF_WIDTH_DAYS


@dataclass(frozen=True)
class Prediction:
    """A walk-forward prediction: the fit, the predictors used and the (widened) distribution."""

    fit: EmosFit
    feature_set: tuple[tuple[str, str], ...]
    features: tuple[float, ...]
    predictive: Predictive
    spread_factor: float


class ModelRunner:
    """Walk-forward EMOS for one station and decision time, refitted weekly."""

    def __init__(self, view: ArchiveView, station: Station, hhmm: str) -> None:
        self.view, self.station, self.hhmm = view, station, hhmm
        self._features: dict[date, dict[tuple[str, str], float]] = {}
        self._fits: dict[tuple[Any, ...], EmosFit | None] = {}
        self._raw_cache: dict[date, Prediction | str] = {}

    def features(self, day: date) -> dict[tuple[str, str], float]:
        # forecasts for `day` as known at that day's own decision time (same lead every day)
        if day not in self._features:
            instant = decision_instant(day, self.hhmm, self.station.time_zone)
            found = self.view.forecasts_before(self.station.icao, day, instant)
            self._features[day] = {k: p.value for k, p in found.items()}
        return self._features[day]

    def _fit_for(self, day: date, observed: dict[date, int]) -> Prediction | str:
        today = self.features(day)
        candidates = [fs for fs in FEATURE_SETS if all(k in today for k in fs)]
        if not candidates:
            return "no forecast issued before the decision time"
        refit_day = day - timedelta(days=day.toordinal() % REFIT_EVERY_DAYS)
        for fs in candidates:
            key = (fs, refit_day)
            if key not in self._fits:
                rows = []
                for past, high in observed.items():
                    if past >= refit_day or not _in_training_window(past, refit_day):
                        continue
                    known = self.features(past)
                    if all(k in known for k in fs):
                        rows.append(TrainingRow(tuple(known[k] for k in fs), high))
                try:
                    self._fits[key] = fit_emos(rows, min_rows=MIN_TRAINING_ROWS)
                except WeatherModelError:
                    self._fits[key] = None
            fit = self._fits[key]
            if fit is not None:
                feats = tuple(today[k] for k in fs)
                return Prediction(fit, fs, feats, fit.predict(feats), 1.0)
        return "too little training history before the decision time"

    def predict(self, day: date, decision: datetime) -> Prediction | str:
        """Walk-forward predictive distribution for `day` with what was known at `decision`."""
        observed = self.view.observed_before(self.station.icao, decision)
        raw = self._fit_for(day, observed)
        if isinstance(raw, str):
            return raw
        # widen sigma by the RMS of recent out-of-sample z-scores (each from its own earlier fit)
        z_scores = []
        window_start = day - timedelta(days=CALIBRATION_DAYS)
        for past in sorted(d for d in observed if window_start <= d < day):
            if past not in self._raw_cache:
                self._raw_cache[past] = self._fit_for(
                    past, self.view.observed_before(self.station.icao, decision_instant(
                        past, self.hhmm, self.station.time_zone)))
            earlier = self._raw_cache[past]
            if not isinstance(earlier, str):
                z_scores.append((observed[past] - earlier.predictive.mu) / earlier.predictive.sigma)
        factor = spread_inflation(z_scores)
        p = raw.predictive
        return Prediction(raw.fit, raw.feature_set, raw.features,
                          Predictive(p.mu, p.sigma * factor, p.df), factor)


def evaluate(events: Sequence[SettledEvent], trades: dict[str, TradeIndex], view: ArchiveView,
             decision_times: Sequence[str]) -> EvaluationResult:
    """Score model, market and blend on every event at every decision time."""
    cards: dict[str, dict[str, Scorecard]] = {}
    by_series: dict[tuple[str, str], dict[str, Scorecard]] = {}
    crps_out: dict[str, float] = {}
    rel: dict[str, dict[str, list[ReliabilityBin]]] = {}
    skipped: dict[str, dict[str, int]] = {}
    floors: dict[str, int] = {}
    sigmas: dict[tuple[str, str], float] = {}
    vs_market: dict[tuple[str, str], tuple[float, float]] = {}
    for hhmm in decision_times:
        pooled = _Scores()
        per_series: dict[str, _Scores] = defaultdict(_Scores)
        sigma_sum: dict[str, list[float]] = defaultdict(list)
        reasons: dict[str, int] = defaultdict(int)
        runners = {s: ModelRunner(view, STATIONS[s], hhmm) for s in {e.series for e in events}}
        history: dict[str, list[tuple[list[float], list[float], int, date]]] = defaultdict(list)
        for ev in events:
            station = STATIONS[ev.series]
            decision = decision_instant(ev.day, hhmm, station.time_zone)
            prices = [trades[ev.series].last_price_before(b.ticker, decision) for b in ev.brackets]
            if all(p is None for p in prices):
                reasons["no market trade before the decision time"] += 1
                continue
            predicted = runners[ev.series].predict(ev.day, decision)
            if isinstance(predicted, str):
                reasons[predicted] += 1
                continue
            dist = predicted.predictive
            model_p = bracket_probabilities(dist, ev.brackets)
            market_p = normalise_prices(prices)
            known = view.observed_before(station.icao, decision)
            past = [(m, q, o) for m, q, o, d in history[ev.series] if d in known]
            weight = fit_blend_weight(past)
            blend_p = blend(model_p, market_p, weight)
            history[ev.series].append((model_p, market_p, ev.outcome, ev.day))
            lo, hi = math.floor(dist.mu - 8 * dist.sigma), math.ceil(dist.mu + 8 * dist.sigma)
            pmf = [(k, dist.cdf(k + 0.5) - dist.cdf(k - 0.5)) for k in range(lo, hi + 1)]
            floor_count = sum(p is None for p in prices)
            for bucket in (pooled, per_series[ev.series]):
                bucket.model.append((model_p, ev.outcome))
                bucket.market.append((market_p, ev.outcome))
                bucket.blend.append((blend_p, ev.outcome))
                bucket.crps.append(crps_integer(pmf, ev.value))
                bucket.floor_brackets += floor_count
            sigma_sum[ev.series].append(dist.sigma)
        cards[hhmm] = {k: scorecard(getattr(pooled, k)) for k in ("model", "market", "blend")}
        for who in ("model", "blend"):
            vs_market[(hhmm, who)] = _paired_brier_difference(getattr(pooled, who),
                                                              pooled.market)
        for series, sc in per_series.items():
            by_series[(hhmm, series)] = {k: scorecard(getattr(sc, k))
                                         for k in ("model", "market", "blend")}
            sigmas[(hhmm, series)] = float(np.mean(sigma_sum[series]))
        crps_out[hhmm] = float(np.mean(pooled.crps)) if pooled.crps else math.nan
        rel[hhmm] = {k: reliability(_pairs(getattr(pooled, k)))
                     for k in ("model", "market", "blend")}
        skipped[hhmm] = dict(reasons)
        floors[hhmm] = pooled.floor_brackets
    return EvaluationResult(cards, by_series, crps_out, rel, skipped, floors, sigmas, vs_market)


def _paired_brier_difference(ours: Sequence[tuple[Sequence[float], int]],
                             market: Sequence[tuple[Sequence[float], int]]) -> tuple[float, float]:
    # per-event Brier(ours) - Brier(market) on the same events: mean and standard error
    diffs = np.array([brier(p, o) - brier(q, o2)
                      for (p, o), (q, o2) in zip(ours, market, strict=True)])
    if len(diffs) < 2:
        return math.nan, math.nan
    return float(diffs.mean()), float(diffs.std(ddof=1) / math.sqrt(len(diffs)))


def _pairs(forecasts: Sequence[tuple[Sequence[float], int]]) -> Iterator[tuple[float, bool]]:
    for probs, outcome in forecasts:
        for i, p in enumerate(probs):
            yield p, i == outcome
