"""Fixed-horizon sample sizes against statsmodels' NormalIndPower."""

import math

import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower, zt_ind_solve_power

from webapp.experiments.stats import sample_size_for_mean, sample_size_for_proportion


@pytest.mark.parametrize(
    ("baseline", "mde", "relative", "alpha", "power"),
    [
        (0.10, 0.10, True, 0.05, 0.8),
        (0.03, 0.20, True, 0.05, 0.9),
        (0.50, 0.02, False, 0.01, 0.8),
        (0.20, 0.05, False, 0.10, 0.95),
    ],
)
def test_proportion_matches_normal_ind_power(
    baseline: float, mde: float, relative: bool, alpha: float, power: float
) -> None:
    treated = baseline * (1 + mde) if relative else baseline + mde
    delta = treated - baseline
    effect = delta / math.sqrt((baseline * (1 - baseline) + treated * (1 - treated)) / 2)
    reference = NormalIndPower().solve_power(
        effect_size=effect, alpha=alpha, power=power, ratio=1.0
    )

    plan = sample_size_for_proportion(baseline, mde, relative=relative, alpha=alpha, power=power)

    assert plan.per_variant == math.ceil(reference)
    assert plan.absolute_effect == pytest.approx(delta)
    textbook = (
        (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) ** 2
        * (baseline * (1 - baseline) + treated * (1 - treated))
        / delta**2
    )
    assert abs(plan.per_variant - math.ceil(textbook)) <= 1


@pytest.mark.parametrize(
    ("mean", "sd", "mde", "relative"),
    [(50.0, 20.0, 0.05, True), (3.0, 1.5, 0.1, False), (-8.0, 4.0, 0.1, True)],
)
def test_mean_matches_zt_ind_solve_power(
    mean: float, sd: float, mde: float, relative: bool
) -> None:
    delta = mde * abs(mean) if relative else mde
    reference = zt_ind_solve_power(effect_size=delta / sd, alpha=0.05, power=0.8, ratio=1.0)

    plan = sample_size_for_mean(mean, sd, mde, relative=relative)

    assert plan.per_variant == math.ceil(reference)


def test_ready_once_every_variant_reaches_the_target() -> None:
    required = sample_size_for_proportion(0.1, 0.1).per_variant

    waiting = sample_size_for_proportion(0.1, 0.1, observed_n=[required + 50, required - 1])
    ready = sample_size_for_proportion(0.1, 0.1, observed_n=[required, required + 3])
    unknown = sample_size_for_proportion(0.1, 0.1)

    assert not waiting.ready
    assert waiting.progress == pytest.approx((required - 1) / required)
    assert ready.ready and ready.progress == 1.0
    assert not unknown.ready and unknown.observed_min_n is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline_rate": 0.0, "mde": 0.1}, "baseline_rate"),
        ({"baseline_rate": 0.1, "mde": 0.0}, "mde must be > 0"),
        ({"baseline_rate": 0.9, "mde": 0.2}, "inside"),
        ({"baseline_rate": 0.1, "mde": 0.1, "power": 0.04}, "must exceed alpha"),
        ({"baseline_rate": 0.1, "mde": 0.1, "alpha": 1.0}, "alpha"),
        ({"baseline_rate": 0.1, "mde": 0.1, "observed_n": [10, -1]}, "observed_n"),
    ],
)
def test_bad_proportion_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_size_for_proportion(**kwargs)  # type: ignore[arg-type]


def test_bad_mean_input() -> None:
    with pytest.raises(ValueError, match="standard_deviation"):
        sample_size_for_mean(10.0, 0.0, 0.1)
    with pytest.raises(ValueError, match="non-zero baseline"):
        sample_size_for_mean(0.0, 1.0, 0.1)
