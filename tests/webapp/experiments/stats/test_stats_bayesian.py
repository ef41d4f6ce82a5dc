"""Probability to beat control: exact Beta-binomial sum against numerical integration."""

import numpy as np
import pytest
from scipy import integrate, stats

from webapp.experiments.stats import (
    bayesian,
    compare_proportions,
    mean_summary_from_moments,
    probability_beta_greater,
    probability_to_beat_mean,
    probability_to_beat_proportion,
    proportion_summary,
)


def _integrated(a_t: int, b_t: int, a_c: int, b_c: int) -> float:
    """P(X_t > X_c) = E[F_c(Q_t(U))], integrated over the treatment's quantiles."""
    treatment, control = stats.beta(a_t, b_t), stats.beta(a_c, b_c)
    value, _ = integrate.quad(
        lambda u: control.cdf(treatment.ppf(u)), 0, 1, epsabs=1e-11, limit=200
    )
    return float(value)


# Each row makes a different one of the four parameters the smallest (all branches).
@pytest.mark.parametrize(
    "params",
    [
        (3, 50, 9, 40),
        (12, 30, 5, 60),
        (80, 25, 70, 9),
        (60, 6, 50, 30),
        (2, 2, 2, 2),
        (400, 9600, 460, 9540),
    ],
)
def test_exact_probability_matches_numerical_integration(params: tuple[int, int, int, int]) -> None:
    assert probability_beta_greater(*params) == pytest.approx(_integrated(*params), abs=1e-8)


def test_exact_probability_is_antisymmetric() -> None:
    forward = probability_beta_greater(31, 970, 45, 956)
    backward = probability_beta_greater(45, 956, 31, 970)

    assert forward + backward == pytest.approx(1.0, abs=1e-12)


def test_identical_arms_are_a_coin_flip_and_a_clear_winner_is_certain() -> None:
    same = probability_to_beat_proportion(
        proportion_summary(100, 1000), proportion_summary(100, 1000)
    )
    better = probability_to_beat_proportion(
        proportion_summary(100, 1000), proportion_summary(200, 1000)
    )
    worse = probability_to_beat_proportion(
        proportion_summary(200, 1000), proportion_summary(100, 1000)
    )

    assert same == pytest.approx(0.5, abs=1e-9)
    assert better > 0.999999
    assert worse < 1e-6


def test_comparison_uses_beta_1_1_prior() -> None:
    result = compare_proportions(proportion_summary(7, 90), proportion_summary(12, 95))

    expected = _integrated(1 + 12, 1 + 83, 1 + 7, 1 + 83)
    assert result.probability_to_beat_control == pytest.approx(expected, abs=1e-8)


def test_seeded_monte_carlo_agrees_with_exact_value() -> None:
    rng = np.random.default_rng(11)
    draws = 400_000
    treatment = rng.beta(56, 945, size=draws)
    control = rng.beta(45, 956, size=draws)

    exact = probability_beta_greater(56, 945, 45, 956)

    assert exact == pytest.approx(float(np.mean(treatment > control)), abs=0.004)


def test_normal_fallback_for_huge_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    exact = probability_beta_greater(5_000, 95_000, 4_850, 95_150)
    monkeypatch.setattr(bayesian, "EXACT_TERMS_LIMIT", 10)

    approximate = probability_beta_greater(5_000, 95_000, 4_850, 95_150)

    assert approximate == pytest.approx(exact, abs=2e-3)


def test_mean_probability_is_normal_approximation() -> None:
    control = mean_summary_from_moments(400, 10.0, 16.0)
    treatment = mean_summary_from_moments(400, 10.5, 25.0)

    probability = probability_to_beat_mean(control, treatment)

    assert probability == pytest.approx(stats.norm.cdf(0.5 / np.sqrt(16 / 400 + 25 / 400)))
    assert probability_to_beat_mean(control, control) == pytest.approx(0.5)
