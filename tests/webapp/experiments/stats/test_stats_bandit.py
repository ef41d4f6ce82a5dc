"""Thompson-sampling allocation: floors, normalisation, gating and posteriors."""

import pytest
from scipy import stats

from webapp.experiments.stats import arm_posterior, probability_beta_greater, thompson_allocation


def test_weights_sum_to_one_and_respect_the_floor() -> None:
    allocation = thompson_allocation([300, 120, 100], [1000, 1000, 1000], min_share=0.1)

    assert allocation.updated
    assert sum(allocation.weights) == pytest.approx(1.0)
    assert min(allocation.weights) >= 0.1 - 1e-12
    assert allocation.weights[0] == pytest.approx(0.8, abs=1e-9)  # floor + (1 - 3 floor) * 1


def test_probability_best_matches_the_exact_two_arm_value() -> None:
    allocation = thompson_allocation([52, 60], [500, 500], min_share=0.0, draws=40_000, seed=3)

    exact = probability_beta_greater(61, 441, 53, 449)
    assert allocation.probability_best[1] == pytest.approx(exact, abs=0.01)
    assert allocation.weights == pytest.approx(allocation.probability_best)


def test_seeded_and_deterministic() -> None:
    first = thompson_allocation([10, 12, 9], [100, 100, 100], seed=42)
    second = thompson_allocation([10, 12, 9], [100, 100, 100], seed=42)

    assert first == second


def test_not_updated_until_every_arm_has_enough_trials() -> None:
    kept = thompson_allocation([5, 40], [50, 400], current_weights=[3, 1], min_trials=100)
    equal = thompson_allocation([5, 40], [50, 400], min_trials=100)

    assert not kept.updated
    assert kept.weights == pytest.approx((0.75, 0.25))
    assert equal.weights == (0.5, 0.5)
    assert len(kept.arms) == 2


def test_posterior_summary_matches_scipy_beta() -> None:
    posterior = arm_posterior(30, 200)

    reference = stats.beta(31, 171)
    assert posterior.mean == pytest.approx(reference.mean())
    assert posterior.credible_interval.lower == pytest.approx(reference.ppf(0.025))
    assert posterior.credible_interval.upper == pytest.approx(reference.ppf(0.975))
    assert arm_posterior(0, 0).mean == 0.5


@pytest.mark.parametrize(
    ("successes", "trials", "kwargs", "message"),
    [
        ([5, 3], [4, 10], {}, "cannot exceed"),
        ([1, 2, 3], [10, 10], {}, "same length"),
        ([1], [10], {}, "at least 2 arms"),
        ([1, 2], [10, 10], {"min_share": 0.6}, "exceeds 1"),
        ([1, 2], [10, 10], {"current_weights": [1.0, -1.0]}, "current_weights"),
        ([1, 2], [10, 10], {"current_weights": [1.0]}, "one weight per arm"),
        ([1, 2], [10, 10], {"draws": 0}, "draws"),
        ([-1, 2], [10, 10], {}, "successes"),
    ],
)
def test_bad_input(
    successes: list[int], trials: list[int], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        thompson_allocation(successes, trials, **kwargs)  # type: ignore[arg-type]
