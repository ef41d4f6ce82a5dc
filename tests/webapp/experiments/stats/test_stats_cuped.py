"""CUPED: matches a direct numpy computation, reduces variance, stays unbiased."""

import numpy as np
import pytest
from scipy import stats

from webapp.experiments.stats import compare_means, cuped_adjust, cuped_sums


def _arms(rng: np.random.Generator, n: int, effect: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pre-period X and metric Y = 2 + 0.8 X + noise (corr ~0.8), effect added to arm 1."""
    arms = []
    for lift in (0.0, effect):
        x = rng.normal(10.0, 3.0, size=n)
        y = 2.0 + 0.8 * x + rng.normal(0.0, 1.8, size=n) + lift
        arms.append((y, x))
    return arms


def test_matches_direct_numpy_adjustment_and_scipy_welch() -> None:
    arms = _arms(np.random.default_rng(8), 400, 0.3)
    y_all = np.concatenate([y for y, _ in arms])
    x_all = np.concatenate([x for _, x in arms])
    theta = np.cov(y_all, x_all)[0, 1] / np.var(x_all, ddof=1)
    adjusted_arrays = [y - theta * (x - x_all.mean()) for y, x in arms]

    result = cuped_adjust([cuped_sums(y, x) for y, x in arms])

    assert result.theta == pytest.approx(theta)
    for summary, values in zip(result.adjusted, adjusted_arrays, strict=True):
        assert summary.mean == pytest.approx(values.mean())
        assert summary.variance == pytest.approx(values.var(ddof=1))
    comparison = compare_means(*result.adjusted)
    reference = stats.ttest_ind(adjusted_arrays[1], adjusted_arrays[0], equal_var=False)
    assert comparison.p_value == pytest.approx(reference.pvalue)


def test_reduces_variance_on_correlated_data() -> None:
    arms = _arms(np.random.default_rng(9), 2000, 0.0)

    result = cuped_adjust([cuped_sums(y, x) for y, x in arms])

    for reduction in result.variance_reduction:
        assert reduction == pytest.approx(0.64, abs=0.05)  # corr(Y, X)^2
    for after, before in zip(result.adjusted, result.unadjusted, strict=True):
        assert after.variance < before.variance


def test_estimate_stays_unbiased_with_smaller_spread() -> None:
    rng = np.random.default_rng(10)
    adjusted_lifts, raw_lifts = [], []
    for _ in range(200):
        arms = _arms(rng, 200, 0.5)
        result = cuped_adjust([cuped_sums(y, x) for y, x in arms])
        adjusted_lifts.append(result.adjusted[1].mean - result.adjusted[0].mean)
        raw_lifts.append(result.unadjusted[1].mean - result.unadjusted[0].mean)

    spread = float(np.std(adjusted_lifts))
    assert float(np.mean(adjusted_lifts)) == pytest.approx(0.5, abs=4 * spread / np.sqrt(200))
    assert spread < 0.7 * float(np.std(raw_lifts))


def test_constant_covariate_means_no_adjustment() -> None:
    rng = np.random.default_rng(12)
    arms = [(rng.normal(size=50), np.full(50, 0.1)) for _ in range(2)]

    result = cuped_adjust([cuped_sums(y, x) for y, x in arms])

    assert result.theta == 0.0
    assert result.adjusted == result.unadjusted
    assert result.variance_reduction == (0.0, 0.0)


@pytest.mark.parametrize(
    ("metric", "covariate", "message"),
    [([1.0, 2.0, 3.0], [1.0, 2.0], "same length"), ([1.0, float("inf")], [1.0, 2.0], "finite")],
)
def test_bad_arrays(metric: list[float], covariate: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cuped_sums(metric, covariate)


def test_variants_need_two_observations() -> None:
    with pytest.raises(ValueError, match="n must be >= 2"):
        cuped_adjust([cuped_sums([1.0], [2.0]), cuped_sums([1.0, 2.0], [2.0, 3.0])])
    with pytest.raises(ValueError, match="at least one variant"):
        cuped_adjust([])
