"""Sample ratio mismatch against scipy.stats.chisquare."""

import pytest
from scipy import stats

from webapp.experiments.stats import sample_ratio_mismatch


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ([1000, 1000], [50, 50]),
        ([1000, 667], [1, 1]),
        ([510, 240, 250], [0.5, 0.25, 0.25]),
        ([90, 12], [80, 20]),
    ],
)
def test_matches_scipy_chisquare(observed: list[int], weights: list[float]) -> None:
    total = sum(observed)
    expected = [w / sum(weights) * total for w in weights]
    reference = stats.chisquare(observed, expected)

    result = sample_ratio_mismatch(observed, weights)

    assert result.chi_square == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)
    assert result.expected == pytest.approx(tuple(expected))


def test_warning_for_a_one_third_drop_of_one_arm_at_2000_visitors() -> None:
    result = sample_ratio_mismatch([1200, 800], [50, 50])

    assert result.p_value < 1e-10
    assert result.warning


def test_no_warning_for_a_fair_split() -> None:
    result = sample_ratio_mismatch([1012, 988], [50, 50])

    assert result.p_value > 0.5
    assert not result.warning


def test_no_warning_below_the_minimum_sample() -> None:
    result = sample_ratio_mismatch([60, 10], [1, 1], min_total=100)

    assert result.p_value < 0.001
    assert not result.warning


def test_uneven_configured_weights_are_respected() -> None:
    assert not sample_ratio_mismatch([1800, 200], [90, 10]).warning
    assert sample_ratio_mismatch([1000, 1000], [90, 10]).warning


def test_zero_weight_arm() -> None:
    paused_and_empty = sample_ratio_mismatch([500, 480, 0], [1, 1, 0])
    leaking = sample_ratio_mismatch([500, 480, 3], [1, 1, 0])

    assert paused_and_empty.df == 1
    assert paused_and_empty.p_value == pytest.approx(stats.chisquare([500, 480]).pvalue)
    assert leaking.p_value == 0.0
    assert leaking.warning


def test_no_exposures_yet_is_not_a_mismatch() -> None:
    result = sample_ratio_mismatch([0, 0], [1, 1])

    assert (result.p_value, result.warning) == (1.0, False)
