"""Fixed-horizon sample size per variant for a two-sided test with equal allocation.

Power of the two-sided z-test with standardized effect d = delta / sigma and n visitors
per arm is Phi(d sqrt(n/2) - z) + Phi(-d sqrt(n/2) - z), z = z_{1 - alpha/2} (both tails,
as statsmodels' ``NormalIndPower``); the smallest n reaching the target power is solved
numerically and rounded up. For rates sigma^2 = (p1 q1 + p2 q2) / 2 with p2 = p1 + delta
(unpooled variances); for means sigma is the given standard deviation of both arms.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import optimize
from scipy import stats as scipy_stats

from webapp.experiments.stats.validation import (
    require_count,
    require_finite,
    require_non_negative,
    require_open_unit,
)

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8


@dataclass(frozen=True)
class SampleSizePlan:
    """Visitors needed per variant; ``ready`` once every variant has at least that many."""

    per_variant: int
    absolute_effect: float
    standardized_effect: float
    alpha: float
    power: float
    observed_min_n: int | None
    ready: bool
    progress: float


def sample_size_for_proportion(
    baseline_rate: float,
    mde: float,
    *,
    relative: bool = True,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    observed_n: Sequence[int] = (),
) -> SampleSizePlan:
    """Per-variant n to detect a rate shift of mde (absolute) or mde * baseline_rate."""
    rate = require_open_unit(baseline_rate, "baseline_rate")
    delta = _absolute_effect(mde, rate, relative)
    treated = rate + delta
    if not 0.0 < treated < 1.0:
        raise ValueError(f"baseline_rate + effect must stay inside (0, 1), got {treated}")
    sigma = math.sqrt((rate * (1 - rate) + treated * (1 - treated)) / 2)
    return _plan(delta, delta / sigma, alpha, power, observed_n)


def sample_size_for_mean(
    baseline_mean: float,
    standard_deviation: float,
    mde: float,
    *,
    relative: bool = True,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    observed_n: Sequence[int] = (),
) -> SampleSizePlan:
    """Per-variant n to detect a shift of the mean by mde (or mde * |baseline_mean|)."""
    mean = require_finite(baseline_mean, "baseline_mean")
    sigma = require_non_negative(standard_deviation, "standard_deviation")
    if sigma == 0:
        raise ValueError("standard_deviation must be > 0")
    delta = _absolute_effect(mde, abs(mean), relative)
    return _plan(delta, delta / sigma, alpha, power, observed_n)


def two_sided_power(standardized_effect: float, n_per_variant: float, alpha: float) -> float:
    """Power of the two-sided z-test with n per arm (both rejection tails)."""
    critical = float(scipy_stats.norm.ppf(1 - alpha / 2))
    shift = standardized_effect * math.sqrt(n_per_variant / 2)
    return float(scipy_stats.norm.cdf(shift - critical) + scipy_stats.norm.cdf(-shift - critical))


def _plan(
    delta: float, effect: float, alpha: float, power: float, observed_n: Sequence[int]
) -> SampleSizePlan:
    require_open_unit(alpha, "alpha")
    require_open_unit(power, "power")
    if power <= alpha:
        raise ValueError(f"power ({power}) must exceed alpha ({alpha})")
    required = max(2, math.ceil(_solve_n(effect, alpha, power)))
    counts = [require_count(n, f"observed_n[{index}]") for index, n in enumerate(observed_n)]
    observed_min = min(counts) if counts else None
    progress = 0.0 if observed_min is None else min(1.0, observed_min / required)
    ready = observed_min is not None and observed_min >= required
    return SampleSizePlan(required, delta, effect, alpha, power, observed_min, ready, progress)


def _solve_n(effect: float, alpha: float, power: float) -> float:
    one_tail = (scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(power)) / effect
    upper = 2 * float(one_tail) ** 2 * 1.01 + 1
    root = optimize.brentq(
        lambda n: two_sided_power(effect, n, alpha) - power, 1e-9, upper, xtol=1e-10
    )
    return float(root)


def _absolute_effect(mde: float, baseline: float, relative: bool) -> float:
    effect = require_finite(mde, "mde")
    if effect <= 0:
        raise ValueError(f"mde must be > 0, got {mde}")
    delta = effect * baseline if relative else effect
    if delta <= 0:
        raise ValueError("a relative mde needs a non-zero baseline")
    return delta
