"""Guardrail alarms: is the treatment significantly worse than control beyond a tolerance?

Semantics: the *degradation* is the lift in the harmful direction (``-lift`` when higher
is better, ``+lift`` when lower is better), relative (a fraction of the control mean) or
absolute. The alarm is a one-sided test of H0: degradation <= tolerance against
H1: degradation > tolerance at level ``alpha``; equivalently, it fires when the lower
bound of the one-sided (1 - alpha) interval of the degradation exceeds the tolerance.
Relative checks use the normal delta-method standard error, absolute checks the unpooled
standard error with the comparison's df (normal for rates, Welch t for means). Guardrail
p-values are never multiplicity-adjusted: an alarm should err on the side of firing.
"""

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats

from webapp.experiments.stats.comparison import Comparison
from webapp.experiments.stats.validation import require_non_negative, require_open_unit


@dataclass(frozen=True)
class GuardrailResult:
    """Outcome of a guardrail check; ``relative`` is False when it fell back to absolute."""

    alarm: bool
    degradation: float
    degradation_lower_bound: float
    tolerance: float
    relative: bool
    p_value: float


def guardrail_check(
    comparison: Comparison,
    *,
    higher_is_better: bool,
    tolerance: float = 0.0,
    relative: bool = True,
    alpha: float = 0.05,
) -> GuardrailResult:
    """One-sided alarm for a guardrail metric (see the module docstring).

    When a relative check is asked for but the control mean is 0, any increase in the
    harmful direction is infinitely large relatively, so the check falls back to the
    absolute difference with tolerance 0.
    """
    require_non_negative(tolerance, "tolerance")
    require_open_unit(alpha, "alpha")
    if relative and comparison.relative_lift is not None and comparison.relative_se is not None:
        lift, standard_error, df = comparison.relative_lift, comparison.relative_se, math.inf
    else:
        if relative:
            tolerance = 0.0
        relative = False
        lift, standard_error, df = comparison.absolute_lift, comparison.absolute_se, comparison.df
    degradation = -lift if higher_is_better else lift
    p_value, lower_bound = _one_sided(degradation, standard_error, tolerance, df, alpha)
    return GuardrailResult(
        alarm=p_value < alpha,
        degradation=degradation,
        degradation_lower_bound=lower_bound,
        tolerance=tolerance,
        relative=relative,
        p_value=p_value,
    )


def _one_sided(
    degradation: float, standard_error: float, tolerance: float, df: float, alpha: float
) -> tuple[float, float]:
    if standard_error == 0:
        return (0.0 if degradation > tolerance else 1.0), degradation
    statistic = (degradation - tolerance) / standard_error
    p_value = float(scipy_stats.t.sf(statistic, df))
    lower_bound = degradation - float(scipy_stats.t.ppf(1 - alpha, df)) * standard_error
    return p_value, lower_bound
