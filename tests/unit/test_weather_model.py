"""Predictive distributions, bracket probabilities, EMOS fitting, blending, rain, scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from models.brackets import Bracket
from models.scoring import (
    brier,
    crps_gaussian,
    crps_integer,
    log_loss,
    reliability,
    scorecard,
)
from models.weather import (
    Predictive,
    TrainingRow,
    WeatherModelError,
    blend,
    bracket_probabilities,
    fit_blend_weight,
    fit_emos,
    fit_trace_uplift,
    normalise_prices,
    rain_probability,
    truncate_below,
)

EVENT = [Bracket(-10_000 + 79, "T80", None, 79), Bracket(80, "B80.5", 80, 81),
         Bracket(82, "B82.5", 82, 83), Bracket(84, "B84.5", 84, 85), Bracket(86, "T85", 86, None)]


def test_bracket_probabilities_follow_half_degree_rule():
    pred = Predictive(82.3, 2.1)
    probs = bracket_probabilities(pred, EVENT)
    cdf = stats.norm(82.3, 2.1).cdf
    assert probs[0] == pytest.approx(cdf(79.5))
    assert probs[2] == pytest.approx(cdf(83.5) - cdf(81.5))
    assert probs[4] == pytest.approx(1 - cdf(85.5))
    assert sum(probs) == pytest.approx(1.0)


@given(st.floats(20, 110), st.floats(0.5, 8), st.sampled_from([None, 4.0, 8.0]))
def test_bracket_probabilities_always_sum_to_one(mu, sigma, df):
    probs = bracket_probabilities(Predictive(mu, sigma, df), EVENT)
    assert sum(probs) == pytest.approx(1.0)
    assert all(p >= 0 for p in probs)


def test_truncation_below_running_max_zeroes_lower_brackets():
    pred = truncate_below(Predictive(81.0, 2.0), running_max_f=82.4)  # observed 82 so far
    probs = bracket_probabilities(pred, EVENT)
    assert probs[0] == 0.0
    assert probs[1] == 0.0
    assert probs[2] > 0.5
    assert sum(probs) == pytest.approx(1.0)


def test_truncation_far_above_forecast_puts_all_mass_on_running_max_bracket():
    probs = bracket_probabilities(truncate_below(Predictive(70.0, 1.0), 86.0), EVENT)
    assert probs[4] == pytest.approx(1.0)


def test_emos_recovers_bias_and_spread_from_synthetic_history():
    rng = np.random.default_rng(7)
    x = rng.normal(60, 15, 600)
    y = np.round(2.0 + 0.95 * x + rng.normal(0, 3.0, 600)).astype(int)
    fit = fit_emos([TrainingRow((float(a),), int(b)) for a, b in zip(x, y, strict=True)])
    assert fit.coefs[0] == pytest.approx(0.95, abs=0.03)
    assert fit.intercept == pytest.approx(2.0, abs=1.5)
    assert fit.sigma == pytest.approx(3.0, abs=0.3)
    assert fit.df is None


def test_emos_heavy_tailed_errors_choose_student_t():
    rng = np.random.default_rng(11)
    x = rng.normal(60, 15, 800)
    y = np.round(x + 2.0 * rng.standard_t(2.5, 800)).astype(int)
    fit = fit_emos([TrainingRow((float(a),), int(b)) for a, b in zip(x, y, strict=True)])
    assert fit.df is not None


def test_emos_too_few_rows_is_refused():
    with pytest.raises(WeatherModelError, match="training rows"):
        fit_emos([TrainingRow((60.0,), 61)] * 5)


def test_emos_predict_with_wrong_predictor_count_is_refused():
    fit = fit_emos([TrainingRow((float(v),), v + 1) for v in range(40, 80)])
    with pytest.raises(WeatherModelError, match="predictors"):
        fit.predict((1.0, 2.0))


def test_normalise_prices_untraded_bracket_gets_minimum_tick():
    assert normalise_prices([None, 30, 50, 19]) == pytest.approx([0.01, 0.3, 0.5, 0.19])
    with pytest.raises(WeatherModelError, match="outside"):
        normalise_prices([101, 2])


def test_blend_weight_prefers_the_better_forecaster():
    good = [([0.8, 0.1, 0.1], [0.34, 0.33, 0.33], 0)] * 30
    bad = [([0.1, 0.8, 0.1], [0.6, 0.2, 0.2], 0)] * 30
    assert fit_blend_weight(good) == 1.0
    assert fit_blend_weight(bad) == 0.0
    assert fit_blend_weight(good[:5]) == 0.5  # too few events: the default
    assert sum(blend([0.8, 0.1, 0.1], [0.2, 0.3, 0.5], 0.3)) == pytest.approx(1.0)


def test_rain_probability_trace_counts_so_it_exceeds_pop():
    assert rain_probability([20, 40, 10], 0.0) == pytest.approx(0.4)
    assert rain_probability([20, 40, 10], 0.2) == pytest.approx(1 - 0.6 * 0.8)
    with pytest.raises(WeatherModelError):
        rain_probability([], 0.1)


def test_trace_uplift_fit_recovers_rate():
    rng = np.random.default_rng(3)
    pops = rng.uniform(0, 100, 3000)
    wet = rng.uniform(0, 1, 3000) < 1 - (1 - pops / 100) * (1 - 0.15)
    assert fit_trace_uplift(list(zip(pops, wet, strict=True))) == pytest.approx(0.15, abs=0.03)


def test_scores_perfect_and_worst_cases():
    assert brier([0, 1, 0], 1) == 0.0
    assert brier([1, 0, 0], 1) == 2.0
    assert log_loss([0.5, 0.5], 0) == pytest.approx(math.log(2))
    assert log_loss([0.0, 1.0], 0) == pytest.approx(-math.log(1e-3))
    with pytest.raises(ValueError, match="outcome index"):
        brier([0.5, 0.5], 2)


def test_crps_gaussian_matches_known_value():
    assert crps_gaussian(0.0, 0.0, 1.0) == pytest.approx(0.2337, abs=1e-4)


def test_crps_integer_point_mass_on_truth_is_zero_and_grows_with_error():
    assert crps_integer([(70, 1.0)], 70) == 0.0
    assert crps_integer([(70, 1.0)], 73) == pytest.approx(3.0)


def test_reliability_bins_count_and_frequency():
    bins = reliability([(0.05, False), (0.05, True), (0.95, True)], bins=10)
    assert [(b.count, b.observed_frequency) for b in bins] == [(2, 0.5), (1, 1.0)]


def test_scorecard_averages_over_events():
    card = scorecard([([0.7, 0.3], 0), ([0.7, 0.3], 1)])
    assert card.events == 2
    assert card.accuracy == 0.5
    assert card.brier == pytest.approx((0.18 + 0.98) / 2)
