"""CUPED variance reduction with a pre-experiment covariate (Deng et al., 2013).

theta = cov(Y, X) / var(X) over all variants pooled; each visitor's metric becomes
Y - theta (X - mean X) with the pooled mean of X. Assignment is independent of X, so the
adjusted means stay unbiased for the treatment effect while the variance drops by the
share of Y explained by X. Everything is computed from per-variant sufficient statistics
so callers can aggregate in SQL; ``cuped_sums`` builds them from arrays.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from webapp.experiments.stats.summaries import (
    VariantSummary,
    mean_summary_from_moments,
    sample_variance,
)
from webapp.experiments.stats.validation import require_finite, require_positive_count


@dataclass(frozen=True)
class CupedSums:
    """Sufficient statistics of one variant: metric Y and pre-period covariate X."""

    n: int
    sum_y: float
    sum_x: float
    sum_y2: float
    sum_x2: float
    sum_xy: float


@dataclass(frozen=True)
class CupedResult:
    """Adjusted and unadjusted summaries per variant (same order as the input).

    ``adjusted`` summaries plug straight into ``compare_means`` (Welch test).
    ``variance_reduction`` is 1 - var(adjusted) / var(unadjusted) per variant.
    """

    theta: float
    adjusted: tuple[VariantSummary, ...]
    unadjusted: tuple[VariantSummary, ...]
    variance_reduction: tuple[float, ...]


def cuped_sums(metric: ArrayLike, covariate: ArrayLike) -> CupedSums:
    """Sufficient statistics from per-visitor metric and covariate arrays."""
    y = np.asarray(metric, dtype=np.float64)
    x = np.asarray(covariate, dtype=np.float64)
    if y.ndim != 1 or x.ndim != 1 or y.shape != x.shape:
        raise ValueError(
            f"metric and covariate must be 1-d of the same length, got {y.shape}, {x.shape}"
        )
    if not (np.isfinite(y).all() and np.isfinite(x).all()):
        raise ValueError("metric and covariate must be finite")
    return CupedSums(
        n=int(y.size),
        sum_y=float(y.sum()),
        sum_x=float(x.sum()),
        sum_y2=float(y @ y),
        sum_x2=float(x @ x),
        sum_xy=float(x @ y),
    )


def cuped_adjust(variants: Sequence[CupedSums], *, confidence: float = 0.95) -> CupedResult:
    """CUPED-adjusted per-variant means and variances (each variant needs n >= 2)."""
    if not variants:
        raise ValueError("cuped_adjust needs at least one variant")
    for index, variant in enumerate(variants):
        _validate(variant, index)
    pooled = _pooled(variants)
    theta = _theta(pooled)
    mean_x = pooled.sum_x / pooled.n
    pairs = [_adjust_variant(variant, theta, mean_x, confidence) for variant in variants]
    adjusted = tuple(pair[0] for pair in pairs)
    unadjusted = tuple(pair[1] for pair in pairs)
    reductions = tuple(
        1 - after.variance / before.variance if before.variance > 0 else 0.0
        for after, before in pairs
    )
    return CupedResult(theta, adjusted, unadjusted, reductions)


def _adjust_variant(
    variant: CupedSums, theta: float, pooled_mean_x: float, confidence: float
) -> tuple[VariantSummary, VariantSummary]:
    """(adjusted, unadjusted) summaries of one variant."""
    moments = _moments(variant)
    variance = moments.var_y + theta**2 * moments.var_x - 2 * theta * moments.cov_xy
    mean = moments.mean_y - theta * (moments.mean_x - pooled_mean_x)
    return (
        mean_summary_from_moments(variant.n, mean, max(0.0, variance), confidence=confidence),
        mean_summary_from_moments(variant.n, moments.mean_y, moments.var_y, confidence=confidence),
    )


@dataclass(frozen=True)
class _Moments:
    mean_y: float
    mean_x: float
    var_y: float
    var_x: float
    cov_xy: float


def _moments(sums: CupedSums) -> _Moments:
    n = sums.n
    mean_y, mean_x = sums.sum_y / n, sums.sum_x / n
    return _Moments(
        mean_y=mean_y,
        mean_x=mean_x,
        var_y=sample_variance(n, sums.sum_y, sums.sum_y2),
        var_x=sample_variance(n, sums.sum_x, sums.sum_x2),
        cov_xy=(sums.sum_xy - sums.sum_x * mean_y) / (n - 1),
    )


def _theta(pooled: CupedSums) -> float:
    moments = _moments(pooled)
    if moments.var_x == 0:  # constant covariate: nothing to adjust with
        return 0.0
    return moments.cov_xy / moments.var_x


def _pooled(variants: Sequence[CupedSums]) -> CupedSums:
    return CupedSums(
        n=sum(v.n for v in variants),
        sum_y=math.fsum(v.sum_y for v in variants),
        sum_x=math.fsum(v.sum_x for v in variants),
        sum_y2=math.fsum(v.sum_y2 for v in variants),
        sum_x2=math.fsum(v.sum_x2 for v in variants),
        sum_xy=math.fsum(v.sum_xy for v in variants),
    )


def _validate(sums: CupedSums, index: int) -> None:
    require_positive_count(sums.n, f"variants[{index}].n", minimum=2)
    for field in ("sum_y", "sum_x", "sum_y2", "sum_x2", "sum_xy"):
        require_finite(getattr(sums, field), f"variants[{index}].{field}")
    if sums.sum_y2 < 0 or sums.sum_x2 < 0:
        raise ValueError(f"variants[{index}] sums of squares must be >= 0")
