"""Per-variant summaries against statsmodels (Wilson) and scipy (t interval)."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from webapp.experiments.stats import (
    mean_summary,
    mean_summary_from_moments,
    proportion_summary,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("conversions", "n", "confidence"),
    [
        (0, 10, 0.95),
        (1, 10, 0.95),
        (10, 10, 0.95),
        (37, 1000, 0.95),
        (512, 1000, 0.9),
        (3, 7, 0.99),
    ],
)
def test_wilson_interval_matches_statsmodels(conversions: int, n: int, confidence: float) -> None:
    lower, upper = proportion_confint(conversions, n, alpha=1 - confidence, method="wilson")

    interval = wilson_interval(conversions, n, confidence)

    assert interval.lower == pytest.approx(lower, abs=1e-12)
    assert interval.upper == pytest.approx(upper, abs=1e-12)


def test_proportion_summary_fields() -> None:
    summary = proportion_summary(25, 200)

    assert (summary.kind, summary.n, summary.total, summary.sum_squares) == (
        "proportion",
        200,
        25,
        25,
    )
    assert summary.mean == 0.125
    assert summary.variance == pytest.approx(0.125 * 0.875)
    assert summary.ci.contains(0.125)


def test_mean_summary_matches_numpy_and_scipy_t_interval() -> None:
    values = np.random.default_rng(1).gamma(2.0, 3.0, size=57)

    summary = mean_summary(values.size, values.sum(), (values**2).sum())

    lower, upper = stats.t.interval(
        0.95, values.size - 1, loc=values.mean(), scale=stats.sem(values)
    )
    assert summary.mean == pytest.approx(values.mean())
    assert summary.variance == pytest.approx(values.var(ddof=1))
    assert summary.ci.lower == pytest.approx(lower)
    assert summary.ci.upper == pytest.approx(upper)


def test_mean_summary_round_trips_through_moments() -> None:
    summary = mean_summary_from_moments(40, 2.5, 1.75)

    again = mean_summary(summary.n, summary.total, summary.sum_squares)

    assert again.mean == pytest.approx(2.5)
    assert again.variance == pytest.approx(1.75)


def test_constant_values_have_zero_variance_not_negative() -> None:
    summary = mean_summary(3, 0.3, 0.03)

    assert summary.variance == 0.0
    assert summary.ci.lower == summary.ci.upper == pytest.approx(0.1)
