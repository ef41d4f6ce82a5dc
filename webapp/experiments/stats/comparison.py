"""A treatment against control: lifts with intervals, p-value and probability to beat."""

from dataclasses import dataclass

from scipy import stats as scipy_stats

from webapp.experiments.stats.bayesian import (
    probability_to_beat_mean,
    probability_to_beat_proportion,
)
from webapp.experiments.stats.frequentist import (
    HypothesisTest,
    LiftEstimate,
    absolute_lift,
    relative_lift,
    two_proportion_z_test,
    welch_t_test,
)
from webapp.experiments.stats.summaries import Interval, VariantSummary, z_critical
from webapp.experiments.stats.validation import require_open_unit


@dataclass(frozen=True)
class Comparison:
    """Treatment vs control on one metric.

    ``absolute_ci`` uses the unpooled standard error with the test's distribution
    (normal for rates, Student t with Welch df for means); ``relative_ci`` is a normal
    delta-method interval. Relative fields are ``None`` when the control mean is 0.
    ``p_value`` is two-sided and unadjusted (see ``corrections.adjust_p_values``).
    """

    control_mean: float
    treatment_mean: float
    n_total: int
    absolute_lift: float
    absolute_se: float
    absolute_ci: Interval
    relative_lift: float | None
    relative_se: float | None
    relative_ci: Interval | None
    statistic: float
    df: float
    p_value: float
    probability_to_beat_control: float


def compare_proportions(
    control: VariantSummary, treatment: VariantSummary, *, confidence: float = 0.95
) -> Comparison:
    """Rates: pooled two-proportion z-test, Wald lift CI, exact Beta-binomial P(beat)."""
    test = two_proportion_z_test(control, treatment)
    probability = probability_to_beat_proportion(control, treatment)
    return _comparison(control, treatment, test, probability, confidence)


def compare_means(
    control: VariantSummary, treatment: VariantSummary, *, confidence: float = 0.95
) -> Comparison:
    """Means: Welch t-test and t interval for the lift, normal-approximation P(beat)."""
    test = welch_t_test(control, treatment)
    probability = probability_to_beat_mean(control, treatment)
    return _comparison(control, treatment, test, probability, confidence)


def _comparison(
    control: VariantSummary,
    treatment: VariantSummary,
    test: HypothesisTest,
    probability: float,
    confidence: float,
) -> Comparison:
    absolute = absolute_lift(control, treatment)
    relative = relative_lift(control, treatment)
    critical = float(
        scipy_stats.t.ppf(0.5 + require_open_unit(confidence, "confidence") / 2, test.df)
    )
    return Comparison(
        control_mean=control.mean,
        treatment_mean=treatment.mean,
        n_total=control.n + treatment.n,
        absolute_lift=absolute.estimate,
        absolute_se=absolute.standard_error,
        absolute_ci=_symmetric(absolute, critical),
        relative_lift=None if relative is None else relative.estimate,
        relative_se=None if relative is None else relative.standard_error,
        relative_ci=None if relative is None else _symmetric(relative, z_critical(confidence)),
        statistic=test.statistic,
        df=test.df,
        p_value=test.p_value,
        probability_to_beat_control=probability,
    )


def _symmetric(lift: LiftEstimate, critical: float) -> Interval:
    half_width = critical * lift.standard_error
    return Interval(lift.estimate - half_width, lift.estimate + half_width)
