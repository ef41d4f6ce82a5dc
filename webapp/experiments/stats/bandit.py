"""Thompson-sampling allocation for a K-armed Bernoulli bandit with Beta(1, 1) priors.

Each arm's weight is its posterior probability of being the best arm, estimated by
seeded Monte-Carlo (``draws`` joint posterior samples, argmax counted). A floor keeps
exploring every arm: weight = floor + (1 - K floor) * P(best), which respects the floor
exactly and still sums to 1. Until every arm has ``min_trials`` trials the weights are
not updated: the current weights (normalised) or an equal split are returned.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from webapp.experiments.stats.summaries import Interval
from webapp.experiments.stats.validation import (
    require_count,
    require_non_negative,
    require_open_unit,
    require_positive_count,
    require_same_length,
    require_weights,
)

DEFAULT_DRAWS = 10_000
DEFAULT_MIN_SHARE = 0.05
DEFAULT_MIN_TRIALS = 100
PRIOR_ALPHA = 1.0
PRIOR_BETA = 1.0


@dataclass(frozen=True)
class ArmPosterior:
    """Beta posterior of one arm: parameters, mean and equal-tailed credible interval."""

    successes: int
    trials: int
    alpha: float
    beta: float
    mean: float
    credible_interval: Interval


@dataclass(frozen=True)
class BanditAllocation:
    """New traffic weights (sum to 1), P(best) per arm and per-arm posteriors."""

    weights: tuple[float, ...]
    probability_best: tuple[float, ...]
    arms: tuple[ArmPosterior, ...]
    updated: bool


def arm_posterior(successes: int, trials: int, *, credibility: float = 0.95) -> ArmPosterior:
    """Beta(1 + successes, 1 + failures) posterior summary (trials may be 0: the prior)."""
    converted = require_count(successes, "successes")
    total = require_count(trials, "trials")
    if converted > total:
        raise ValueError(f"successes ({converted}) cannot exceed trials ({total})")
    alpha, beta = PRIOR_ALPHA + converted, PRIOR_BETA + total - converted
    tail = (1 - require_open_unit(credibility, "credibility")) / 2
    lower, upper = scipy_stats.beta.ppf([tail, 1 - tail], alpha, beta)
    return ArmPosterior(
        converted, total, alpha, beta, alpha / (alpha + beta), Interval(float(lower), float(upper))
    )


def thompson_allocation(
    successes: Sequence[int],
    trials: Sequence[int],
    *,
    current_weights: Sequence[float] | None = None,
    min_share: float = DEFAULT_MIN_SHARE,
    min_trials: int = DEFAULT_MIN_TRIALS,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> BanditAllocation:
    """Traffic weights for the next period from successes / trials per arm."""
    require_same_length(successes, trials, "successes and trials")
    if len(trials) < 2:
        raise ValueError("a bandit needs at least 2 arms")
    arms = tuple(arm_posterior(s, t) for s, t in zip(successes, trials, strict=True))
    floor = _floor(min_share, len(arms))
    fallback = _fallback(current_weights, len(arms))
    probability_best = _probability_best(arms, require_positive_count(draws, "draws"), seed)
    if min(arm.trials for arm in arms) < require_count(min_trials, "min_trials"):
        return BanditAllocation(fallback, probability_best, arms, False)
    weights = tuple(floor + (1 - len(arms) * floor) * p for p in probability_best)
    return BanditAllocation(weights, probability_best, arms, True)


def _probability_best(arms: Sequence[ArmPosterior], draws: int, seed: int) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    alphas = np.array([arm.alpha for arm in arms])
    betas = np.array([arm.beta for arm in arms])
    samples = rng.beta(alphas, betas, size=(draws, len(arms)))
    wins = np.bincount(samples.argmax(axis=1), minlength=len(arms))
    return tuple(float(count) / draws for count in wins)


def _floor(min_share: float, arm_count: int) -> float:
    floor = require_non_negative(min_share, "min_share")
    if floor * arm_count > 1:
        raise ValueError(f"min_share ({floor}) times the number of arms ({arm_count}) exceeds 1")
    return floor


def _fallback(current_weights: Sequence[float] | None, arm_count: int) -> tuple[float, ...]:
    if current_weights is None:
        return tuple(1 / arm_count for _ in range(arm_count))
    if len(current_weights) != arm_count:
        raise ValueError(
            f"current_weights needs one weight per arm ({arm_count}), got {len(current_weights)}"
        )
    return tuple(require_weights(current_weights, "current_weights"))
