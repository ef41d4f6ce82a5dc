"""Always-valid confidence sequences: formula, width and time-uniform coverage."""

import math

import numpy as np
import pytest

from webapp.experiments.stats import (
    compare_proportions,
    confidence_sequence,
    confidence_sequence_from_estimate,
    proportion_summary,
)
from webapp.experiments.stats.sequential import sequential_rho


def test_half_width_follows_the_normal_mixture_boundary() -> None:
    # Waudby-Smith et al. (arXiv 2103.06476) Eq. 9 with rho^2 tuned for N* (Eq. 161).
    alpha, expected_n, n, se = 0.05, 5000, 3000, 0.02
    rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / expected_n
    sigma2 = se * se * n
    half = math.sqrt(
        sigma2 * 2 * (n * rho2 + 1) * math.log(math.sqrt(n * rho2 + 1) / alpha) / (n * n * rho2)
    )

    result = confidence_sequence_from_estimate(0.05, se, n, alpha=alpha, expected_n=expected_n)

    assert sequential_rho(alpha, expected_n) ** 2 == pytest.approx(rho2)
    assert result.ci.upper - 0.05 == pytest.approx(half)
    assert 0.05 - result.ci.lower == pytest.approx(half)


@pytest.mark.parametrize("n_per_arm", [50, 500, 2500, 20000, 500000])
def test_wider_than_the_fixed_horizon_interval(n_per_arm: int) -> None:
    comparison = compare_proportions(
        proportion_summary(n_per_arm // 10, n_per_arm),
        proportion_summary(n_per_arm // 9, n_per_arm),
    )

    sequential = confidence_sequence(comparison)

    assert sequential.ci.lower < comparison.absolute_ci.lower
    assert sequential.ci.upper > comparison.absolute_ci.upper


def test_p_value_agrees_with_the_interval() -> None:
    for estimate in np.linspace(0.0, 0.2, 41):
        result = confidence_sequence_from_estimate(float(estimate), 0.04, 4000)
        assert (result.p_value < 0.05) == result.excludes_zero


def test_time_uniform_coverage_in_simulation() -> None:
    """Peeking every 100 visitors per arm up to 2000: the sequence keeps >= 95% coverage."""
    rng = np.random.default_rng(2024)
    reps, horizon, truth = 300, 2000, 0.3
    control = rng.normal(0.0, 1.0, size=(reps, horizon))
    treatment = rng.normal(truth, 1.5, size=(reps, horizon))
    covered_always = np.ones(reps, dtype=bool)
    fixed_always = np.ones(reps, dtype=bool)
    for n in range(100, horizon + 1, 100):
        estimate = treatment[:, :n].mean(axis=1) - control[:, :n].mean(axis=1)
        se = np.sqrt(
            (treatment[:, :n].var(axis=1, ddof=1) + control[:, :n].var(axis=1, ddof=1)) / n
        )
        for rep in range(reps):
            result = confidence_sequence_from_estimate(
                float(estimate[rep]), float(se[rep]), 2 * n, expected_n=4000
            )
            covered_always[rep] &= result.ci.contains(truth)
        fixed_always &= np.abs(estimate - truth) <= 1.959964 * se

    assert covered_always.mean() >= 0.95
    assert fixed_always.mean() < covered_always.mean()  # naive peeking loses coverage


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"standard_error": -1.0}, "standard_error"),
        ({"n_total": 0}, "n_total"),
        ({"alpha": 0.0}, "alpha"),
        ({"expected_n": 0}, "expected_n"),
    ],
)
def test_bad_input(kwargs: dict[str, float], message: str) -> None:
    arguments: dict[str, float] = {"estimate": 0.1, "standard_error": 0.05, "n_total": 100} | kwargs
    with pytest.raises(ValueError, match=message):
        confidence_sequence_from_estimate(**arguments)  # type: ignore[arg-type]
