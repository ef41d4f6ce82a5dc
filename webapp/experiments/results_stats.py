"""One metric of an experiment's results: per-variant summaries, lifts, tests, plan.

Used by `results.experiment_results` (see its module docstring for the methods).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from webapp.experiments.metrics import Metric, MetricKind, PersonValue
from webapp.experiments.stats import (
    Comparison,
    GuardrailResult,
    Interval,
    SampleSizePlan,
    VariantSummary,
    compare_means,
    compare_proportions,
    confidence_sequence,
    cuped_adjust,
    cuped_sums,
    guardrail_check,
    mean_summary,
    mean_summary_from_moments,
    proportion_summary,
    sample_size_for_mean,
    sample_size_for_proportion,
)
from webapp.experiments.stats.sequential import DEFAULT_EXPECTED_N
from webapp.experiments.stats.summaries import z_critical

ALPHA = 0.05
# Relative drop a guardrail tolerates before its alarm may fire (0: any significant drop).
GUARDRAIL_TOLERANCE = 0.0


@dataclass(frozen=True)
class VariantMetric:
    """One variant on one metric: n persons analysed, the numerator's total, mean and CI."""

    variant: str
    n: int
    conversions: float
    denominator: float
    mean: float
    ci: Interval


@dataclass(frozen=True)
class CupedInfo:
    theta: float
    variance_reduction: tuple[float, float]  # (control, treatment)


@dataclass(frozen=True)
class Lift:
    """A treatment against control on one metric (p-values two-sided)."""

    variant: str
    absolute: float
    absolute_ci: Interval
    relative: float | None
    relative_ci: Interval | None
    p_value: float
    p_value_adjusted: float | None  # None for guardrails (never corrected)
    probability_to_beat_control: float
    test: str
    sequential: bool
    cuped: CupedInfo | None
    significant: bool
    verdict: str
    guardrail: GuardrailResult | None = None

    @property
    def relative_text(self) -> str:
        """Like "+12.3 % [+4.5, +20.1]"; "-" without a relative lift."""
        if self.relative is None or self.relative_ci is None:
            return "-"
        ci = self.relative_ci
        return f"{self.relative:+.1%} [{ci.lower * 100:+.1f}, {ci.upper * 100:+.1f}]"


@dataclass(frozen=True)
class MetricResult:
    key: str
    label: str
    kind: str  # "proportion", "mean" or "ratio"
    role: str  # "primary", "secondary" or "guardrail"
    variants: tuple[VariantMetric, ...]
    lifts: tuple[Lift, ...]
    plan: SampleSizePlan | None

    @property
    def guardrail_alarm(self) -> bool:
        return any(lift.guardrail is not None and lift.guardrail.alarm for lift in self.lifts)


def metric_result(
    metric: Metric,
    role: str,
    persons: Sequence[PersonValue],
    variant_keys: Sequence[str],
    control: str,
    *,
    mde: float,
    sequential: bool,
) -> MetricResult:
    """`metric` per variant and each treatment against `control` (p-values uncorrected)."""
    kind = _kind(metric)
    by_variant = {
        key: _analysed(metric, [p for p in persons if p.variant == key]) for key in variant_keys
    }
    summaries = {key: _summary(kind, rows) for key, rows in by_variant.items()}
    rows = tuple(_variant_metric(key, by_variant[key], summaries[key]) for key in variant_keys)
    base = summaries.get(control)
    plan = _plan(kind, base, [len(rows) for rows in by_variant.values()], mde)
    lifts = tuple(
        _lift(key, kind, role, pair, (by_variant[control], by_variant[key]), plan, sequential)
        for key, summary in summaries.items()
        if key != control and (pair := _comparable(base, summary)) is not None
    )
    return MetricResult(metric.key, metric.label, kind, role, rows, lifts, plan)


def _comparable(
    control: VariantSummary | None, treatment: VariantSummary | None
) -> tuple[VariantSummary, VariantSummary] | None:
    """Both arms, unless one lacks data or both hold the same constant (e.g. nobody
    bought anything yet): such a comparison tests nothing and would dilute the correction."""
    if control is None or treatment is None:
        return None
    if control.variance == 0 == treatment.variance and control.mean == treatment.mean:
        return None
    return control, treatment


def _kind(metric: Metric) -> str:
    if metric.kind == MetricKind.RATE:
        return "ratio"
    return "proportion" if metric.binary else "mean"


def _analysed(metric: Metric, persons: list[PersonValue]) -> list[PersonValue]:
    """A ratio metric's persons without a denominator add nothing to it."""
    if metric.kind == MetricKind.RATE:
        return [p for p in persons if p.denominator > 0]
    return persons


def _summary(kind: str, persons: Sequence[PersonValue]) -> VariantSummary | None:
    n = len(persons)
    if n < 2:
        return None
    y = np.array([p.numerator for p in persons])
    if kind == "proportion":
        return proportion_summary(int(np.count_nonzero(y)), n)
    if kind == "mean":
        return mean_summary(n, float(y.sum()), float(y @ y))
    x = np.array([p.denominator for p in persons])
    ratio = float(y.sum() / x.sum())
    linearised = (y - ratio * x) / x.mean()
    return mean_summary_from_moments(n, ratio, float(linearised.var(ddof=1)))


def _variant_metric(
    key: str, persons: Sequence[PersonValue], summary: VariantSummary | None
) -> VariantMetric:
    conversions = float(sum(p.numerator for p in persons))
    denominator = float(sum(p.denominator for p in persons))
    if summary is None:
        mean = conversions / denominator if denominator else math.nan
        return VariantMetric(
            key, len(persons), conversions, denominator, mean, Interval(math.nan, math.nan)
        )
    return VariantMetric(key, summary.n, conversions, denominator, summary.mean, summary.ci)


def _plan(
    kind: str, control: VariantSummary | None, observed: list[int], mde: float
) -> SampleSizePlan | None:
    """Sample size per variant to detect a relative lift of `mde` on the control's mean."""
    if control is None or control.mean <= 0:
        return None
    try:
        if kind == "proportion":
            return sample_size_for_proportion(control.mean, mde, observed_n=observed)
        if control.variance <= 0:
            return None
        return sample_size_for_mean(
            control.mean, math.sqrt(control.variance), mde, observed_n=observed
        )
    except ValueError:  # e.g. the lifted rate would pass 1: no plan to show
        return None


def _lift(
    key: str,
    kind: str,
    role: str,
    summaries: tuple[VariantSummary, VariantSummary],
    persons: tuple[Sequence[PersonValue], Sequence[PersonValue]],
    plan: SampleSizePlan | None,
    sequential: bool,
) -> Lift:
    """`key` (treatment) against control: (control, treatment) summaries and persons."""
    control, treatment = summaries
    cuped = _cuped(kind, *persons)
    if cuped is not None:
        (comparison, info), test = cuped, "Welch t-test (CUPED)"
    elif kind == "proportion":
        comparison, info, test = (
            compare_proportions(control, treatment),
            None,
            "two-proportion z-test",
        )
    else:
        comparison, info = compare_means(control, treatment), None
        test = "Welch t-test" if kind == "mean" else "Welch t-test (delta method)"
    absolute_ci, relative_ci, p_value = (
        comparison.absolute_ci,
        comparison.relative_ci,
        comparison.p_value,
    )
    if sequential:
        absolute_ci, relative_ci, p_value = _always_valid(comparison, plan)
        test = f"confidence sequence ({test})"
    guardrail = (
        guardrail_check(
            comparison, higher_is_better=True, tolerance=GUARDRAIL_TOLERANCE, alpha=ALPHA
        )
        if role == "guardrail"
        else None
    )
    ready = sequential or plan is None or plan.ready
    verdict = lift_verdict(comparison.absolute_lift, p_value, ready, plan, guardrail)
    return Lift(
        variant=key,
        absolute=comparison.absolute_lift,
        absolute_ci=absolute_ci,
        relative=comparison.relative_lift,
        relative_ci=relative_ci,
        p_value=p_value,
        p_value_adjusted=None,
        probability_to_beat_control=comparison.probability_to_beat_control,
        test=test,
        sequential=sequential,
        cuped=info,
        significant=ready and p_value < ALPHA and guardrail is None,
        verdict=verdict,
        guardrail=guardrail,
    )


def _cuped(
    kind: str, control: Sequence[PersonValue], treatment: Sequence[PersonValue]
) -> tuple[Comparison, CupedInfo] | None:
    """The CUPED comparison of a mean metric, when persons have pre-exposure values."""
    if kind == "ratio":
        return None
    pre = [p.pre_numerator for p in (*control, *treatment)]
    if np.var(pre) <= 0:
        return None
    sums = [
        cuped_sums([p.numerator for p in persons], [p.pre_numerator for p in persons])
        for persons in (control, treatment)
    ]
    adjusted = cuped_adjust(sums)
    comparison = compare_means(adjusted.adjusted[0], adjusted.adjusted[1])
    reduction = (adjusted.variance_reduction[0], adjusted.variance_reduction[1])
    return comparison, CupedInfo(adjusted.theta, reduction)


def _always_valid(
    comparison: Comparison, plan: SampleSizePlan | None
) -> tuple[Interval, Interval | None, float]:
    """Confidence sequence tuned to the planned total n; the relative CI widened alike."""
    expected = 2 * plan.per_variant if plan is not None else DEFAULT_EXPECTED_N
    result = confidence_sequence(comparison, alpha=ALPHA, expected_n=expected)
    relative_ci = comparison.relative_ci
    fixed_half = comparison.absolute_se * z_critical(1 - ALPHA)
    if relative_ci is not None and comparison.relative_lift is not None and fixed_half > 0:
        scale = (result.ci.upper - result.ci.lower) / 2 / fixed_half
        half = (relative_ci.upper - relative_ci.lower) / 2 * scale
        relative_ci = Interval(comparison.relative_lift - half, comparison.relative_lift + half)
    return result.ci, relative_ci, result.p_value


def lift_verdict(
    lift: float,
    p_value: float,
    ready: bool,
    plan: SampleSizePlan | None,
    guardrail: GuardrailResult | None,
) -> str:
    if guardrail is not None:
        return "ALARM: significantly worse" if guardrail.alarm else "ok"
    if not ready and plan is not None:
        return f"not yet ({plan.observed_min_n or 0} of {plan.per_variant} per variant)"
    if p_value >= ALPHA:
        return "no significant difference"
    return "significantly better" if lift > 0 else "significantly worse"
