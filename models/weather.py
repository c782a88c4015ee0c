"""Predictive distributions of the whole-degree CLI maximum and their bracket probabilities.

Invariant: bracket probabilities come from one predictive distribution F of the latent maximum
via P(a <= X <= b) = F(b + 0.5) - F(a - 0.5) and sum to 1 over an event's partition; EMOS
parameters are fitted only on training rows the caller passes (walk-forward: rows known before
the decision), and on the day the distribution is truncated below the observed running maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from models.brackets import Bracket

__all__ = [
    "EmosFit",
    "Predictive",
    "TrainingRow",
    "WeatherModelError",
    "blend",
    "bracket_probabilities",
    "fit_blend_weight",
    "fit_emos",
    "fit_trace_uplift",
    "normalise_prices",
    "rain_probability",
    "spread_inflation",
    "truncate_below",
]

MIN_SIGMA_F = 0.5
T_DF_CHOICES: tuple[float | None, ...] = (None, 8.0, 4.0)  # Gaussian, then heavier tails


class WeatherModelError(ValueError):
    """No probabilities can be produced; the message says why (recorded, never traded)."""


@dataclass(frozen=True)
class Predictive:
    """Location-scale distribution (Gaussian, or Student-t with `df`) in °F, optionally
    truncated below at `lower` (the running maximum minus half a degree)."""

    mu: float
    sigma: float
    df: float | None = None
    lower: float | None = None

    def _raw_cdf(self, x: float) -> float:
        z = (x - self.mu) / self.sigma
        return float(special.ndtr(z) if self.df is None else special.stdtr(self.df, z))

    def cdf(self, x: float) -> float:
        """Return P(X <= x) after truncation."""
        if self.lower is None:
            return self._raw_cdf(x)
        if x <= self.lower:
            return 0.0
        base = self._raw_cdf(self.lower)
        tail = 1.0 - base
        if tail <= 1e-12:  # the whole mass sits below the observed max: it is the max
            return 1.0
        return (self._raw_cdf(x) - base) / tail


def truncate_below(pred: Predictive, running_max_f: float) -> Predictive:
    """Condition on the day's observed running maximum: the report cannot be below it."""
    whole = math.floor(running_max_f + 0.5)
    return Predictive(pred.mu, pred.sigma, pred.df, whole - 0.5)


def bracket_probabilities(pred: Predictive, brackets: Sequence[Bracket]) -> list[float]:
    """Return P(bracket) for each bracket, in order, renormalised to sum to 1."""
    raw = []
    for b in brackets:
        upper = 1.0 if b.hi is None else pred.cdf(b.hi + 0.5)
        lower = 0.0 if b.lo is None else pred.cdf(b.lo - 0.5)
        raw.append(max(upper - lower, 0.0))
    total = sum(raw)
    if total <= 0:
        raise WeatherModelError(f"predictive N({pred.mu:.1f}, {pred.sigma:.1f}) puts no mass on "
                                "the event's brackets")
    return [p / total for p in raw]


@dataclass(frozen=True)
class TrainingRow:
    """One past day: predictor values (°F) and the settled whole-degree maximum."""

    features: tuple[float, ...]
    observed_f: int


@dataclass(frozen=True)
class EmosFit:
    """mu = intercept + coefs . x ; sigma constant; Student-t when the training PIT needs it."""

    intercept: float
    coefs: tuple[float, ...]
    sigma: float
    df: float | None
    rows: int

    def predict(self, features: Sequence[float]) -> Predictive:
        """Return the predictive distribution for one set of predictor values."""
        if len(features) != len(self.coefs):
            raise WeatherModelError(f"{len(features)} predictors given, model has "
                                    f"{len(self.coefs)}")
        mu = self.intercept + sum(c * x for c, x in zip(self.coefs, features, strict=True))
        return Predictive(mu, self.sigma, self.df)


def _discrete_nll(params: np.ndarray, x: np.ndarray, y: np.ndarray, df: float | None) -> float:
    k = x.shape[1]
    mu = params[0] + x @ params[1:k + 1]
    sigma = max(math.exp(params[k + 1]), MIN_SIGMA_F)
    hi, lo = (y + 0.5 - mu) / sigma, (y - 0.5 - mu) / sigma
    p = special.ndtr(hi) - special.ndtr(lo) if df is None else special.stdtr(df, hi) - \
        special.stdtr(df, lo)
    return float(-np.sum(np.log(np.clip(p, 1e-12, None))))


def fit_emos(rows: Sequence[TrainingRow], *, min_rows: int = 20) -> EmosFit:
    """Fit mean and spread by maximum likelihood of the whole-degree outcome; pick the tail.

    The likelihood is the discretised one, P(y) = F(y + 0.5) - F(y - 0.5), so any half-degree
    offset between forecast and report is learned. Tails: Gaussian unless a Student-t (8 or 4
    degrees of freedom) improves the training log-likelihood by more than 2 (an AIC-like margin).
    """
    if len(rows) < min_rows:
        raise WeatherModelError(f"{len(rows)} training rows, need {min_rows}")
    widths = {len(r.features) for r in rows}
    if len(widths) != 1:
        raise WeatherModelError(f"training rows have different predictor counts: {widths}")
    x = np.array([r.features for r in rows], dtype=float)
    y = np.array([r.observed_f for r in rows], dtype=float)
    k = x.shape[1]
    # least-squares start, then the likelihood
    design = np.column_stack([np.ones(len(y)), x])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    start = np.concatenate([beta, [math.log(max(float(np.std(resid)), MIN_SIGMA_F))]])
    res = optimize.minimize(_discrete_nll, start, args=(x, y, None), method="L-BFGS-B")
    params, best_nll, best_df = np.asarray(res.x, dtype=float), float(res.fun), None
    # heavier tails: same location, scale refitted for each Student-t candidate
    location = params[:k + 1].copy()
    for df in T_DF_CHOICES[1:]:
        def nll_t(log_sigma: float, df: float | None = df) -> float:
            return _discrete_nll(np.concatenate([location, [log_sigma]]), x, y, df)

        scalar = optimize.minimize_scalar(nll_t, bounds=(math.log(MIN_SIGMA_F), math.log(30.0)),
                                          method="bounded")
        if float(scalar.fun) < best_nll - 2.0:
            best_nll, best_df = float(scalar.fun), df
            params = np.concatenate([location, [float(scalar.x)]])
    return EmosFit(float(params[0]), tuple(float(v) for v in params[1:k + 1]),
                   max(math.exp(float(params[k + 1])), MIN_SIGMA_F), best_df, len(rows))


def spread_inflation(z_scores: Sequence[float], *, min_count: int = 10,
                     cap: float = 3.0) -> float:
    """Return the factor by which to widen sigma so past out-of-sample z-scores have unit RMS.

    `z_scores` are (observed - mu) / sigma of earlier walk-forward forecasts; with fewer than
    `min_count` of them the factor is 1. It is never below 1 (never sharpen) nor above `cap`.
    """
    if len(z_scores) < min_count:
        return 1.0
    rms = math.sqrt(sum(z * z for z in z_scores) / len(z_scores))
    return min(max(rms, 1.0), cap)


def normalise_prices(prices_cents: Sequence[int | None], floor_cents: int = 1) -> list[float]:
    """Turn last prices (cents; None = no trade yet) into probabilities summing to 1.

    A bracket nobody has traded is given the minimum tick (`floor_cents`), the price at which a
    YES could at best have been bought; the caller counts how often that happened.
    """
    if not prices_cents:
        raise WeatherModelError("no prices")
    filled = []
    for p in prices_cents:
        if p is not None and not 0 <= p <= 100:
            raise WeatherModelError(f"price {p} cents outside 0..100")
        filled.append(max(p if p is not None else floor_cents, floor_cents))
    total = sum(filled)
    return [p / total for p in filled]


def blend(model: Sequence[float], market: Sequence[float], weight: float) -> list[float]:
    """Return the linear pool weight * model + (1 - weight) * market (sums to 1)."""
    if len(model) != len(market):
        raise WeatherModelError(f"{len(model)} model vs {len(market)} market probabilities")
    if not 0.0 <= weight <= 1.0:
        raise WeatherModelError(f"blend weight {weight} outside [0, 1]")
    return [weight * m + (1 - weight) * q for m, q in zip(model, market, strict=True)]


def fit_blend_weight(history: Sequence[tuple[Sequence[float], Sequence[float], int]],
                     *, min_events: int = 20, default: float = 0.5) -> float:
    """Pick the model weight in 0..1 (step 0.05) minimising past log loss; `default` if few."""
    if len(history) < min_events:
        return default
    best_w, best_ll = default, math.inf
    for step in range(21):
        w = step / 20
        ll = 0.0
        for model, market, outcome in history:
            p = w * model[outcome] + (1 - w) * market[outcome]
            ll -= math.log(max(p, 1e-3))
        if ll < best_ll - 1e-12:
            best_w, best_ll = w, ll
    return best_w


def rain_probability(pops_pct: Sequence[float], trace_uplift: float) -> float:
    """P(CLI precipitation > 0, trace counts) from the day's PoP values (percent).

    PoP is the chance of at least 0.01 in; a trace also settles YES, so the probability is
    raised by `trace_uplift`, the chance of a trace on a day without measurable rain (fit it
    with `fit_trace_uplift`).
    """
    if not pops_pct:
        raise WeatherModelError("no PoP values for the climate day")
    if any(not 0 <= p <= 100 for p in pops_pct) or not 0 <= trace_uplift <= 1:
        raise WeatherModelError(f"PoP {list(pops_pct)} or uplift {trace_uplift} out of range")
    pop = max(pops_pct) / 100.0
    return 1.0 - (1.0 - pop) * (1.0 - trace_uplift)


def fit_trace_uplift(history: Sequence[tuple[float, bool]]) -> float:
    """Maximum-likelihood trace uplift from past (max PoP %, precipitation-or-trace) days."""
    if not history:
        raise WeatherModelError("no rain history")

    def nll(u: float) -> float:
        total = 0.0
        for pop, wet in history:
            p = min(max(rain_probability([pop], u), 1e-9), 1 - 1e-9)
            total -= math.log(p if wet else 1 - p)
        return total

    res = optimize.minimize_scalar(nll, bounds=(0.0, 0.99), method="bounded")
    return float(res.x)
