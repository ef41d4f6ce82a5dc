"""Sample ratio mismatch: do exposure counts match the configured traffic weights?"""

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats

from webapp.experiments.stats.validation import (
    require_count,
    require_open_unit,
    require_same_length,
    require_weights,
)

SRM_THRESHOLD = 0.001
SRM_MIN_TOTAL = 100


@dataclass(frozen=True)
class SrmResult:
    """Chi-square goodness of fit of exposures against the configured weights.

    ``warning`` is raised only when ``p_value < threshold`` and at least ``min_total``
    visitors were exposed, so tiny early samples never alarm.
    """

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    total: int
    chi_square: float
    df: int
    p_value: float
    warning: bool


def sample_ratio_mismatch(
    observed: Sequence[int],
    weights: Sequence[float],
    *,
    threshold: float = SRM_THRESHOLD,
    min_total: int = SRM_MIN_TOTAL,
) -> SrmResult:
    """Test exposure counts per variant against the configured weights (any positive scale).

    Variants with weight 0 and no exposures are left out of the test; exposures in a
    variant with weight 0 are a mismatch by definition (p = 0).
    """
    require_same_length(observed, weights, "observed and weights")
    if len(observed) < 2:
        raise ValueError("sample ratio mismatch needs at least 2 variants")
    counts = tuple(
        require_count(count, f"observed[{index}]") for index, count in enumerate(observed)
    )
    shares = require_weights(weights)
    require_open_unit(threshold, "threshold")
    total = sum(counts)
    expected = tuple(share * total for share in shares)
    chi_square, df, p_value = _goodness_of_fit(counts, expected)
    warning = p_value < threshold and total >= require_count(min_total, "min_total")
    return SrmResult(counts, expected, total, chi_square, df, p_value, warning)


def _goodness_of_fit(
    counts: tuple[int, ...], expected: tuple[float, ...]
) -> tuple[float, int, float]:
    if sum(counts) == 0:
        return 0.0, len(counts) - 1, 1.0
    if any(count > 0 and share == 0 for count, share in zip(counts, expected, strict=True)):
        return float("inf"), len(counts) - 1, 0.0
    pairs = [(count, share) for count, share in zip(counts, expected, strict=True) if share > 0]
    if len(pairs) < 2:
        return 0.0, 0, 1.0
    chi_square = sum((count - share) ** 2 / share for count, share in pairs)
    df = len(pairs) - 1
    return chi_square, df, float(scipy_stats.chi2.sf(chi_square, df))
