"""Per-variant summaries: exposures, totals, mean, variance and a confidence interval.

A rate metric is a mean of 0/1 outcomes, so both kinds share ``VariantSummary``: for a
rate, ``total`` is the number of conversions and ``sum_squares == total``.
"""

import math
from dataclasses import dataclass
from typing import Literal

from scipy import stats as scipy_stats

from webapp.experiments.stats.validation import (
    require_conversions,
    require_finite,
    require_non_negative,
    require_open_unit,
    require_positive_count,
)

MetricKind = Literal["proportion", "mean"]
# Centred sums of squares below this fraction of the raw sum of squares are rounding noise.
CANCELLATION_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[lower, upper]``."""

    lower: float
    upper: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (bounds included)."""
        return self.lower <= value <= self.upper

    @property
    def excludes_zero(self) -> bool:
        """Whether the whole interval lies on one side of zero."""
        return not self.contains(0.0)


@dataclass(frozen=True)
class VariantSummary:
    """One variant of one metric: n exposed visitors and the metric's sufficient statistics.

    ``variance`` is the per-visitor variance: p(1 - p) for a rate (the plug-in value the
    z-test uses), the sample variance (ddof=1) for a mean. ``ci`` is the interval for the
    variant's own mean: Wilson score for rates, Student t with n - 1 df for means.
    """

    kind: MetricKind
    n: int
    total: float
    sum_squares: float
    mean: float
    variance: float
    ci: Interval

    @property
    def standard_error(self) -> float:
        """Standard error of the variant mean."""
        return math.sqrt(self.variance / self.n)


def z_critical(confidence: float) -> float:
    """Two-sided normal critical value for a confidence level (1.959964 for 0.95)."""
    return float(scipy_stats.norm.ppf(0.5 + require_open_unit(confidence, "confidence") / 2))


def wilson_interval(conversions: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a binomial proportion (good coverage near 0 and 1)."""
    converted, exposures = require_conversions(conversions, n)
    z = z_critical(confidence)
    denominator = exposures + z * z
    centre = (converted + z * z / 2) / denominator
    spread = (
        z / denominator * math.sqrt(converted * (exposures - converted) / exposures + z * z / 4)
    )
    return Interval(max(0.0, centre - spread), min(1.0, centre + spread))


def proportion_summary(conversions: int, n: int, *, confidence: float = 0.95) -> VariantSummary:
    """Summary of a conversion-rate metric from conversions out of n exposed visitors."""
    converted, exposures = require_conversions(conversions, n)
    rate = converted / exposures
    return VariantSummary(
        kind="proportion",
        n=exposures,
        total=float(converted),
        sum_squares=float(converted),
        mean=rate,
        variance=rate * (1 - rate),
        ci=wilson_interval(converted, exposures, confidence),
    )


def mean_summary(
    n: int, total: float, sum_squares: float, *, confidence: float = 0.95
) -> VariantSummary:
    """Summary of a mean metric from n, the sum and the sum of squares (n >= 2)."""
    count = require_positive_count(n, "n", minimum=2)
    value_sum = require_finite(total, "total")
    squares = require_non_negative(sum_squares, "sum_squares")
    variance = sample_variance(count, value_sum, squares)
    return _mean_variant(count, value_sum / count, variance, confidence)


def sample_variance(n: int, total: float, sum_squares: float) -> float:
    """Sample variance (ddof=1) from sums; float cancellation noise on constant data -> 0."""
    centred = sum_squares - total * (total / n)
    if centred <= CANCELLATION_TOLERANCE * sum_squares:
        return 0.0
    return centred / (n - 1)


def mean_summary_from_moments(
    n: int, mean: float, variance: float, *, confidence: float = 0.95
) -> VariantSummary:
    """Summary of a mean metric from n, the mean and the sample variance (n >= 2)."""
    count = require_positive_count(n, "n", minimum=2)
    return _mean_variant(
        count,
        require_finite(mean, "mean"),
        require_non_negative(variance, "variance"),
        confidence,
    )


def _mean_variant(n: int, mean: float, variance: float, confidence: float) -> VariantSummary:
    critical = float(
        scipy_stats.t.ppf(0.5 + require_open_unit(confidence, "confidence") / 2, n - 1)
    )
    half_width = critical * math.sqrt(variance / n)
    return VariantSummary(
        kind="mean",
        n=n,
        total=n * mean,
        sum_squares=(n - 1) * variance + n * mean * mean,
        mean=mean,
        variance=variance,
        ci=Interval(mean - half_width, mean + half_width),
    )
