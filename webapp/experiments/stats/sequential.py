"""Always-valid inference for continuous monitoring ("peeking").

Asymptotic confidence sequence of Waudby-Smith, Pekoz, Arnold, Ramdas and Howard,
"Time-uniform central limit theory and asymptotic confidence sequences" (arXiv
2103.06476), the two-sided normal-mixture boundary GrowthBook uses. With n the total
exposures (both arms), sigma^2 = se^2 * n and

    rho^2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / N*        (N*: expected total n)
    half-width = sigma * sqrt(2 (n rho^2 + 1) ln(sqrt(n rho^2 + 1) / alpha) / (n rho)^2)

The interval is tightest near n = N* and stays valid (coverage >= 1 - alpha
simultaneously over all n, asymptotically) whenever it is looked at.
"""

import math
from dataclasses import dataclass

from webapp.experiments.stats.comparison import Comparison
from webapp.experiments.stats.summaries import Interval
from webapp.experiments.stats.validation import (
    require_finite,
    require_non_negative,
    require_open_unit,
    require_positive_count,
)

DEFAULT_EXPECTED_N = 5000


@dataclass(frozen=True)
class SequentialResult:
    """A confidence sequence for the absolute lift at the current total n."""

    estimate: float
    ci: Interval
    p_value: float
    excludes_zero: bool
    rho: float
    n_total: int
    alpha: float


def sequential_rho(alpha: float, expected_n: float) -> float:
    """Mixture tuning parameter rho that makes the boundary tightest near ``expected_n``."""
    log_alpha = math.log(require_open_unit(alpha, "alpha"))
    if expected_n <= 0:
        raise ValueError(f"expected_n must be > 0, got {expected_n}")
    return math.sqrt((-2 * log_alpha + math.log(1 - 2 * log_alpha)) / expected_n)


def confidence_sequence(
    comparison: Comparison, *, alpha: float = 0.05, expected_n: float = DEFAULT_EXPECTED_N
) -> SequentialResult:
    """Always-valid interval and p-value for a comparison's absolute lift."""
    return confidence_sequence_from_estimate(
        comparison.absolute_lift,
        comparison.absolute_se,
        comparison.n_total,
        alpha=alpha,
        expected_n=expected_n,
    )


def confidence_sequence_from_estimate(
    estimate: float,
    standard_error: float,
    n_total: int,
    *,
    alpha: float = 0.05,
    expected_n: float = DEFAULT_EXPECTED_N,
) -> SequentialResult:
    """Always-valid interval for an estimate with standard error ``se`` after n_total units."""
    value = require_finite(estimate, "estimate")
    se = require_non_negative(standard_error, "standard_error")
    n = require_positive_count(n_total, "n_total")
    rho = sequential_rho(alpha, expected_n)
    spread = n * rho * rho + 1
    sigma = se * math.sqrt(n)
    half_width = sigma * math.sqrt(
        2 * spread * math.log(math.sqrt(spread) / alpha) / (n * rho) ** 2
    )
    ci = Interval(value - half_width, value + half_width)
    p_value = _always_valid_p_value(value, se, n, rho)
    return SequentialResult(value, ci, p_value, ci.excludes_zero, rho, n, alpha)


def _always_valid_p_value(estimate: float, standard_error: float, n: int, rho: float) -> float:
    """1 / e-value of the normal mixture martingale (eq. 155 of arXiv 2103.06476v7)."""
    if standard_error == 0:
        return 1.0 if estimate == 0 else 0.0
    spread = n * rho * rho + 1
    squared_z = (estimate / standard_error) ** 2
    log_e_value = rho * rho * n * squared_z / (2 * spread) - 0.5 * math.log(spread)
    return min(1.0, math.exp(-log_e_value))
