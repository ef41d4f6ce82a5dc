"""A Dawid-Skene label model: EM estimates of each labeling function's confusion matrix.

The true label y (match or not) is latent; every labeling function j emits one of three
outcomes (abstain, non-match, match) with probabilities theta[j, y, outcome], independent
across functions given y. EM alternates the posterior P(y | votes) (E-step) and the class
prior and confusion matrices that maximise the expected likelihood (M-step). Unlike
majority vote, a function that is often wrong gets little weight, and one-sided functions
(which only ever vote one way) are informative through how often they vote under each
class. Known (gold) labels are clamped in the E-step, so reviewed matches steer the fit.
"""

from dataclasses import dataclass

import numpy as np

from scraper.matching.labeling import ABSTAIN, MATCH, NON_MATCH, majority_vote

OUTCOMES = 3  # index 0 abstain, 1 non-match, 2 match
UNKNOWN = -1
SMOOTHING = 1.0  # Dirichlet pseudo-count per outcome, keeps probabilities off 0 and 1
PRIOR_BOUNDS = (1e-3, 1 - 1e-3)


def _outcomes(votes: np.ndarray) -> np.ndarray:
    """Map ABSTAIN / NON_MATCH / MATCH votes to outcome indices 0 / 1 / 2."""
    if votes.ndim != 2:
        raise ValueError(f"votes must be a 2-d (pairs, functions) matrix, got shape {votes.shape}")
    allowed = np.isin(votes, (ABSTAIN, NON_MATCH, MATCH))
    if not allowed.all():
        bad = votes[~allowed][0]
        raise ValueError(f"votes must be -1, 0 or 1; found {bad}")
    return (votes.astype(np.int64) + 1).astype(np.int64)


@dataclass
class DawidSkeneLabelModel:
    """Fit with `fit(votes, gold)`; then `predict_proba(votes)` gives P(match) per pair."""

    max_iter: int = 200
    tol: float = 1e-6
    prior: float = 0.5
    theta: np.ndarray | None = None  # (functions, 2 classes, 3 outcomes)
    iterations: int = 0

    def fit(
        self, votes: np.ndarray, gold: np.ndarray | None = None, groups: np.ndarray | None = None
    ) -> "DawidSkeneLabelModel":
        """Estimate the class prior and each function's confusion matrix by EM.

        `groups` (optional, one id per pair) says which pairs compete: at most one pair of
        a group is a match (one competitor product, its candidate items), so the E-step
        shares one unit of probability among a group's candidates and "none of them"."""
        outcomes = _outcomes(votes)
        n = outcomes.shape[0]
        if n == 0:
            raise ValueError("cannot fit a label model on zero pairs")
        known = self._gold_mask(gold, n)
        one_hot = np.eye(OUTCOMES)[outcomes]  # (n, m, 3)
        # Majority vote starts EM on the side where functions are better than chance.
        posterior = majority_vote(votes)
        posterior = np.where(known >= 0, known, posterior)
        previous = -np.inf
        for iteration in range(1, self.max_iter + 1):
            self.iterations = iteration
            self._m_step(one_hot, posterior)
            log_joint = self._log_joint(outcomes)
            likelihood = float(np.logaddexp(log_joint[:, 0], log_joint[:, 1]).sum())
            posterior = np.where(known >= 0, known, _posterior(log_joint, groups))
            if abs(likelihood - previous) < self.tol * max(1.0, abs(likelihood)):
                break
            previous = likelihood
        return self

    @staticmethod
    def _gold_mask(gold: np.ndarray | None, n: int) -> np.ndarray:
        if gold is None:
            return np.full(n, UNKNOWN, dtype=np.float64)
        if gold.shape != (n,):
            raise ValueError(f"gold must have one entry per pair ({n}), got shape {gold.shape}")
        if not np.isin(gold, (UNKNOWN, 0, 1)).all():
            raise ValueError("gold labels must be -1 (unknown), 0 or 1")
        return gold.astype(np.float64)

    def _m_step(self, one_hot: np.ndarray, posterior: np.ndarray) -> None:
        weights = np.stack([1 - posterior, posterior], axis=1)  # (n, 2)
        self.prior = float(np.clip(posterior.mean(), *PRIOR_BOUNDS))
        counts = np.einsum("nc,nmo->mco", weights, one_hot) + SMOOTHING
        self.theta = counts / counts.sum(axis=2, keepdims=True)

    def _log_joint(self, outcomes: np.ndarray) -> np.ndarray:
        """log P(y=c) + sum_j log P(outcome_j | y=c), shape (n, 2)."""
        theta = self._fitted_theta()
        if outcomes.shape[1] != theta.shape[0]:
            raise ValueError(
                f"votes have {outcomes.shape[1]} functions, the model was fit on {theta.shape[0]}"
            )
        log_theta = np.log(theta)  # (m, 2, 3)
        columns = np.arange(outcomes.shape[1])
        per_class = [log_theta[columns, c, outcomes].sum(axis=1) for c in (0, 1)]
        log_prior = np.log([1 - self.prior, self.prior])
        return np.stack(per_class, axis=1) + log_prior

    def _fitted_theta(self) -> np.ndarray:
        if self.theta is None:
            raise RuntimeError("the label model is not fitted; call fit() first")
        return self.theta

    def predict_proba(self, votes: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """P(match | votes) for each pair (competing within `groups` when given)."""
        return _posterior(self._log_joint(_outcomes(votes)), groups)

    @property
    def accuracies(self) -> np.ndarray:
        """Per function: P(its vote is right | it votes), under the fitted prior."""
        theta = self._fitted_theta()
        prior = np.array([1 - self.prior, self.prior])
        right = prior[0] * theta[:, 0, 1] + prior[1] * theta[:, 1, 2]
        voted = prior[0] * (1 - theta[:, 0, 0]) + prior[1] * (1 - theta[:, 1, 0])
        return np.asarray(right / np.maximum(voted, 1e-12))

    @property
    def coverages(self) -> np.ndarray:
        """Per function: P(it votes), under the fitted prior."""
        theta = self._fitted_theta()
        return np.asarray(
            (1 - self.prior) * (1 - theta[:, 0, 0]) + self.prior * (1 - theta[:, 1, 0])
        )


def _posterior(log_joint: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """P(match) per pair: independent pairs, or one-match-at-most within each group."""
    log_odds = log_joint[:, 1] - log_joint[:, 0]
    if groups is None:
        return _sigmoid(log_odds)
    if groups.shape != log_odds.shape:
        raise ValueError(f"groups must have one id per pair, got shape {groups.shape}")
    _, group = np.unique(groups, return_inverse=True)
    # log(1 + sum of exp(log_odds)) per group, computed stably around the group maximum.
    peak = np.zeros(group.max() + 1)
    np.maximum.at(peak, group, log_odds)
    total = np.exp(-peak)
    np.add.at(total, group, np.exp(log_odds - peak[group]))
    return np.asarray(np.exp(log_odds - peak[group] - np.log(total[group])))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -500, 500))))
