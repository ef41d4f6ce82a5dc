"""Guardrail alarms: one-sided, beyond a tolerance, in the harmful direction."""

import numpy as np
import pytest
from scipy import stats

from webapp.experiments.stats import (
    compare_means,
    compare_proportions,
    guardrail_check,
    mean_summary,
    mean_summary_from_moments,
    proportion_summary,
)


def test_zero_tolerance_absolute_matches_one_sided_welch() -> None:
    rng = np.random.default_rng(5)
    control = rng.normal(5.0, 1.0, size=200)
    treatment = rng.normal(4.8, 1.2, size=220)
    comparison = compare_means(
        mean_summary(control.size, control.sum(), (control**2).sum()),
        mean_summary(treatment.size, treatment.sum(), (treatment**2).sum()),
    )

    result = guardrail_check(comparison, higher_is_better=True, relative=False)

    reference = stats.ttest_ind(treatment, control, equal_var=False, alternative="less")
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.alarm == (reference.pvalue < 0.05)


def test_clearly_worse_treatment_alarms() -> None:
    comparison = compare_proportions(proportion_summary(300, 3000), proportion_summary(200, 3000))

    result = guardrail_check(comparison, higher_is_better=True, tolerance=0.05)

    assert result.alarm
    assert result.degradation == pytest.approx(1 / 3)
    assert result.degradation_lower_bound > 0.05


def test_small_degradation_within_tolerance_does_not_alarm() -> None:
    comparison = compare_proportions(
        proportion_summary(3000, 30000), proportion_summary(2950, 30000)
    )

    assert not guardrail_check(comparison, higher_is_better=True, tolerance=0.05).alarm


def test_improvement_never_alarms_and_direction_matters() -> None:
    comparison = compare_means(
        mean_summary_from_moments(1000, 2.0, 1.0), mean_summary_from_moments(1000, 2.5, 1.0)
    )

    assert not guardrail_check(comparison, higher_is_better=True).alarm
    assert guardrail_check(comparison, higher_is_better=False).alarm


def test_relative_check_falls_back_to_absolute_when_control_is_zero() -> None:
    comparison = compare_proportions(proportion_summary(0, 2000), proportion_summary(30, 2000))

    result = guardrail_check(comparison, higher_is_better=False, tolerance=0.1)

    assert not result.relative
    assert result.tolerance == 0.0
    assert result.alarm


@pytest.mark.parametrize(("tolerance", "alpha"), [(-0.1, 0.05), (0.0, 0.0), (0.0, 1.5)])
def test_bad_arguments(tolerance: float, alpha: float) -> None:
    comparison = compare_proportions(proportion_summary(10, 100), proportion_summary(12, 100))

    with pytest.raises(ValueError):
        guardrail_check(comparison, higher_is_better=True, tolerance=tolerance, alpha=alpha)
