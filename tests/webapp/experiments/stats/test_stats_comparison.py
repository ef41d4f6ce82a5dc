"""Treatment vs control against statsmodels' z-test and scipy's Welch t-test."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from webapp.experiments.stats import (
    compare_means,
    compare_proportions,
    mean_summary,
    mean_summary_from_moments,
    proportion_summary,
)
from webapp.experiments.stats.summaries import VariantSummary


def _summary_of(values: np.ndarray) -> VariantSummary:
    return mean_summary(values.size, values.sum(), (values**2).sum())


@pytest.mark.parametrize(
    ("control", "treatment"),
    [
        ((120, 2400), (151, 2390)),
        ((50, 1000), (50, 1000)),
        ((3, 40), (11, 38)),
        ((900, 1000), (860, 1000)),
    ],
)
def test_proportion_p_value_matches_statsmodels_pooled_z_test(
    control: tuple[int, int], treatment: tuple[int, int]
) -> None:
    statistic, p_value = proportions_ztest(
        [treatment[0], control[0]], [treatment[1], control[1]], alternative="two-sided"
    )

    result = compare_proportions(proportion_summary(*control), proportion_summary(*treatment))

    assert result.statistic == pytest.approx(statistic, abs=1e-12)
    assert result.p_value == pytest.approx(p_value, rel=1e-9, abs=1e-15)
    assert result.df == math.inf


def test_proportion_absolute_ci_is_unpooled_wald() -> None:
    result = compare_proportions(proportion_summary(120, 2400), proportion_summary(151, 2390))

    p_c, p_t = 120 / 2400, 151 / 2390
    se = math.sqrt(p_c * (1 - p_c) / 2400 + p_t * (1 - p_t) / 2390)
    z = stats.norm.ppf(0.975)
    assert result.absolute_lift == pytest.approx(p_t - p_c)
    assert result.absolute_ci.lower == pytest.approx(p_t - p_c - z * se)
    assert result.absolute_ci.upper == pytest.approx(p_t - p_c + z * se)


def test_welch_matches_scipy_p_value_and_confidence_interval() -> None:
    rng = np.random.default_rng(3)
    control = rng.normal(10.0, 2.0, size=300)
    treatment = rng.normal(10.4, 3.5, size=180)

    result = compare_means(_summary_of(control), _summary_of(treatment))

    reference = stats.ttest_ind(treatment, control, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.df == pytest.approx(reference.df)
    assert result.absolute_ci.lower == pytest.approx(interval.low)
    assert result.absolute_ci.upper == pytest.approx(interval.high)


def test_relative_ci_is_the_delta_method_with_a_numeric_gradient() -> None:
    control = mean_summary_from_moments(500, 4.0, 9.0)
    treatment = mean_summary_from_moments(450, 4.6, 12.0)

    result = compare_means(control, treatment)

    # Independent check: gradient of g(c, t) = t / c - 1 by central differences.
    step = 1e-6
    grad_c = ((4.6 / (4.0 + step)) - (4.6 / (4.0 - step))) / (2 * step)
    grad_t = (((4.6 + step) / 4.0) - ((4.6 - step) / 4.0)) / (2 * step)
    se = math.sqrt(grad_c**2 * 9.0 / 500 + grad_t**2 * 12.0 / 450)
    z = stats.norm.ppf(0.975)
    assert result.relative_lift == pytest.approx(0.15)
    assert result.relative_se == pytest.approx(se, rel=1e-6)
    assert result.relative_ci is not None
    assert result.relative_ci.lower == pytest.approx(0.15 - z * se, rel=1e-6)
    assert result.relative_ci.upper == pytest.approx(0.15 + z * se, rel=1e-6)


def test_relative_lift_is_none_when_control_mean_is_zero() -> None:
    result = compare_proportions(proportion_summary(0, 500), proportion_summary(4, 500))

    assert (result.relative_lift, result.relative_se, result.relative_ci) == (None, None, None)
    assert result.absolute_lift == pytest.approx(0.008)


def test_constant_arms_give_degenerate_but_defined_results() -> None:
    same = compare_proportions(proportion_summary(0, 100), proportion_summary(0, 120))
    different = compare_means(
        mean_summary_from_moments(10, 1.0, 0.0), mean_summary_from_moments(10, 2.0, 0.0)
    )

    assert same.p_value == 1.0
    assert different.p_value == 0.0
    assert different.probability_to_beat_control == 1.0


def test_mixing_metric_kinds_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected mean"):
        compare_means(proportion_summary(1, 10), mean_summary_from_moments(10, 1.0, 1.0))
