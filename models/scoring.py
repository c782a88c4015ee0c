"""Proper scores and calibration for bracket probabilities and continuous forecasts.

Invariant: every score is computed on the same realised bracket for every forecaster (model,
market, blend); Brier is the multi-category sum over an event's brackets; log loss clips a
probability at `LOG_LOSS_FLOOR` so that a single overconfident zero is heavily but finitely
penalised, identically for every forecaster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy import stats

__all__ = [
    "LOG_LOSS_FLOOR",
    "ReliabilityBin",
    "Scorecard",
    "brier",
    "crps_gaussian",
    "crps_integer",
    "log_loss",
    "reliability",
    "scorecard",
]

LOG_LOSS_FLOOR = 1e-3


def _check(probs: Sequence[float], outcome: int) -> None:
    if not probs:
        raise ValueError("no probabilities")
    if not 0 <= outcome < len(probs):
        raise ValueError(f"outcome index {outcome} outside 0..{len(probs) - 1}")
    if any(p < -1e-9 or p > 1 + 1e-9 for p in probs):
        raise ValueError(f"probabilities outside [0, 1]: {list(probs)}")


def brier(probs: Sequence[float], outcome: int) -> float:
    """Return the multi-category Brier score sum_i (p_i - o_i)^2 (0 best, 2 worst)."""
    _check(probs, outcome)
    return sum((p - (1.0 if i == outcome else 0.0)) ** 2 for i, p in enumerate(probs))


def log_loss(probs: Sequence[float], outcome: int, floor: float = LOG_LOSS_FLOOR) -> float:
    """Return -ln p(realised bracket), with p clipped below at `floor`."""
    _check(probs, outcome)
    return -math.log(max(probs[outcome], floor))


def crps_gaussian(x: float, mu: float, sigma: float) -> float:
    """Return the closed-form CRPS of N(mu, sigma^2) at the observation x."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    z = (x - mu) / sigma
    cdf, pdf = float(stats.norm.cdf(z)), float(stats.norm.pdf(z))
    return sigma * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def crps_integer(pmf: Sequence[tuple[int, float]], observed: int) -> float:
    """Return the CRPS (ranked probability score over unit steps) of an integer distribution."""
    if not pmf:
        raise ValueError("empty pmf")
    support = sorted(pmf)
    lo, hi = min(support[0][0], observed) - 1, max(support[-1][0], observed) + 1
    mass = dict(support)
    total, cdf = 0.0, 0.0
    for k in range(lo, hi + 1):
        cdf += mass.get(k, 0.0)
        total += (cdf - (1.0 if k >= observed else 0.0)) ** 2
    return total


@dataclass(frozen=True)
class ReliabilityBin:
    """Forecasts with probability in [lo, hi): how many, mean forecast, observed frequency."""

    lo: float
    hi: float
    count: int
    mean_forecast: float
    observed_frequency: float


def reliability(pairs: Iterable[tuple[float, bool]], bins: int = 10) -> list[ReliabilityBin]:
    """Bin (probability, happened) pairs into `bins` equal-width bins; empty bins are omitted."""
    sums = [[0, 0.0, 0] for _ in range(bins)]
    for p, happened in pairs:
        i = min(int(p * bins), bins - 1)
        sums[i][0] += 1
        sums[i][1] += p
        sums[i][2] += int(happened)
    return [ReliabilityBin(i / bins, (i + 1) / bins, int(n), s / n, h / n)
            for i, (n, s, h) in enumerate(sums) if n]


def _argmax(probs: Sequence[float]) -> int:
    return max(range(len(probs)), key=probs.__getitem__)


@dataclass(frozen=True)
class Scorecard:
    """Mean scores of one forecaster over a set of events."""

    events: int
    brier: float
    log_loss: float
    accuracy: float


def scorecard(forecasts: Sequence[tuple[Sequence[float], int]]) -> Scorecard:
    """Average Brier, log loss and argmax accuracy over (probabilities, outcome) pairs."""
    n = len(forecasts)
    if n == 0:
        return Scorecard(0, math.nan, math.nan, math.nan)
    b = sum(brier(p, o) for p, o in forecasts) / n
    ll = sum(log_loss(p, o) for p, o in forecasts) / n
    acc = sum(_argmax(p) == o for p, o in forecasts) / n
    return Scorecard(n, b, ll, acc)
