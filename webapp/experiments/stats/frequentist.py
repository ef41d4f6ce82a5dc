"""Frequentist tests of a treatment against control: pooled z for rates, Welch t for means."""

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats

from webapp.experiments.stats.summaries import MetricKind, VariantSummary


@dataclass(frozen=True)
class HypothesisTest:
    """A two-sided test of equal means; ``df`` is ``math.inf`` for a z-test."""

    statistic: float
    p_value: float
    df: float


@dataclass(frozen=True)
class LiftEstimate:
    """A lift (absolute or relative) with its standard error."""

    estimate: float
    standard_error: float


def require_kind(control: VariantSummary, treatment: VariantSummary, kind: MetricKind) -> None:
    """Both summaries must describe the expected kind of metric."""
    for role, summary in (("control", control), ("treatment", treatment)):
        if summary.kind != kind:
            raise ValueError(f"{role} summary is a {summary.kind} metric, expected {kind}")


def two_proportion_z_test(control: VariantSummary, treatment: VariantSummary) -> HypothesisTest:
    """Two-sided two-proportion z-test with the pooled rate under H0 (as statsmodels)."""
    require_kind(control, treatment, "proportion")
    pooled = (control.total + treatment.total) / (control.n + treatment.n)
    variance = pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n)
    difference = treatment.mean - control.mean
    return _normal_test(difference, math.sqrt(variance))


def welch_t_test(control: VariantSummary, treatment: VariantSummary) -> HypothesisTest:
    """Two-sided Welch t-test (unequal variances, Welch-Satterthwaite df)."""
    require_kind(control, treatment, "mean")
    df = welch_df(control, treatment)
    difference = treatment.mean - control.mean
    standard_error = difference_standard_error(control, treatment)
    if standard_error == 0:
        return HypothesisTest(0.0, _degenerate_p_value(difference), df)
    statistic = difference / standard_error
    return HypothesisTest(statistic, float(2 * scipy_stats.t.sf(abs(statistic), df)), df)


def welch_df(control: VariantSummary, treatment: VariantSummary) -> float:
    """Welch-Satterthwaite degrees of freedom (n_c + n_t - 2 when both variances are 0)."""
    control_part = control.variance / control.n
    treatment_part = treatment.variance / treatment.n
    denominator = control_part**2 / (control.n - 1) + treatment_part**2 / (treatment.n - 1)
    if denominator == 0:
        return float(control.n + treatment.n - 2)
    return (control_part + treatment_part) ** 2 / denominator


def difference_standard_error(control: VariantSummary, treatment: VariantSummary) -> float:
    """Unpooled standard error of ``treatment.mean - control.mean``."""
    return math.sqrt(control.variance / control.n + treatment.variance / treatment.n)


def absolute_lift(control: VariantSummary, treatment: VariantSummary) -> LiftEstimate:
    """``treatment.mean - control.mean`` with its unpooled standard error."""
    return LiftEstimate(
        treatment.mean - control.mean, difference_standard_error(control, treatment)
    )


def relative_lift(control: VariantSummary, treatment: VariantSummary) -> LiftEstimate | None:
    """``treatment.mean / control.mean - 1`` with a delta-method standard error.

    Var(T/C) ~ se_t^2 / C^2 + T^2 se_c^2 / C^4 for independent arms. ``None`` when the
    control mean is 0 (the ratio is undefined).
    """
    if control.mean == 0:
        return None
    control_se2 = control.variance / control.n
    treatment_se2 = treatment.variance / treatment.n
    ratio = treatment.mean / control.mean
    variance = (treatment_se2 + ratio * ratio * control_se2) / control.mean**2
    return LiftEstimate(ratio - 1, math.sqrt(variance))


def _normal_test(difference: float, standard_error: float) -> HypothesisTest:
    if standard_error == 0:
        return HypothesisTest(0.0, _degenerate_p_value(difference), math.inf)
    statistic = difference / standard_error
    return HypothesisTest(statistic, float(2 * scipy_stats.norm.sf(abs(statistic))), math.inf)


def _degenerate_p_value(difference: float) -> float:
    # No sampling variance at all: identical constant arms are equal, different ones are not.
    return 1.0 if difference == 0 else 0.0
