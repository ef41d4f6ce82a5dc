"""The weakly supervised matcher: labeling functions → label model → classifier.

`WeakMatcher.fit` votes on candidate pairs with the labeling functions, turns the votes
into probabilistic labels with the Dawid-Skene label model (gold labels from reviewers
clamped), then trains a logistic regression on the pairs' similarity features with those
probabilities as sample weights (each pair appears once as a match with weight p and once
as a non-match with weight 1 - p). The classifier generalises beyond the pairs that the
identifiers cover: it learns what a match looks like from titles, brands and prices.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from scraper.matching.features import (
    PairView,
    ProductRecord,
    TitleSpace,
    feature_matrix,
    normalize_gtin,
    pair_views,
)
from scraper.matching.label_model import UNKNOWN, DawidSkeneLabelModel
from scraper.matching.labeling import ABSTAIN, LABELING_FUNCTIONS, majority_vote, vote_matrix

Pair = tuple[ProductRecord, ProductRecord]
PairKey = tuple[int, int]
GOLD_WEIGHT = 5.0  # a reviewer's label counts as much as five confident weak labels


@dataclass(frozen=True, slots=True)
class MatchScore:
    """The best candidate item for one competitor product."""

    product_key: int
    item_key: int
    probability: float


@dataclass
class WeakMatcher:
    """Fit on candidate pairs (+ optional gold), then score pairs with `predict_proba`."""

    label_model: DawidSkeneLabelModel = field(default_factory=DawidSkeneLabelModel)
    classifier: Pipeline | None = None
    space: TitleSpace | None = None
    training_pairs: int = 0
    # "dawid_skene" (the label model) or "majority" (the baseline the benchmark compares).
    labels: str = "dawid_skene"
    _groups: np.ndarray | None = None

    def fit(
        self, pairs: Sequence[Pair], gold: Mapping[PairKey, int] | None = None
    ) -> "WeakMatcher":
        """Learn from the labeling functions' votes on `pairs` and the reviewers' `gold`."""
        if not pairs:
            raise ValueError("cannot fit the matcher on zero candidate pairs")
        gold = gold or {}
        titles = {r.key: r.title for a, b in pairs for r in (a, b)}
        self.space = TitleSpace([*titles.values()])
        views = pair_views(pairs, self.space)
        votes = vote_matrix(views)
        known = np.array([gold.get((a.key, b.key), UNKNOWN) for a, b in pairs], dtype=np.int64)
        # One competitor product matches at most one of its candidate items.
        self._groups = np.array([a.key for a, _ in pairs], dtype=np.int64)
        probabilities = self._weak_labels(votes, known)
        probabilities = np.where(known >= 0, known, probabilities)
        # Pairs on which every function abstains carry no label, only the prior.
        labelled = (votes != ABSTAIN).any(axis=1) | (known >= 0)
        self.training_pairs = int(labelled.sum())
        self.classifier = _train(
            feature_matrix(views)[labelled], probabilities[labelled], (known >= 0)[labelled]
        )
        return self

    def _weak_labels(self, votes: np.ndarray, known: np.ndarray) -> np.ndarray:
        if self.labels == "majority":
            return majority_vote(votes)
        if self.labels != "dawid_skene":
            raise ValueError(f"labels must be 'dawid_skene' or 'majority', not {self.labels!r}")
        groups = self._groups
        return self.label_model.fit(votes, known, groups).predict_proba(votes, groups)

    def predict_proba(self, pairs: Sequence[Pair]) -> np.ndarray:
        """P(same product) per pair; contradicting GTINs veto a match outright."""
        if self.space is None:
            raise RuntimeError("the matcher is not fitted; call fit() first")
        if not pairs:
            return np.zeros(0)
        views = pair_views(pairs, self.space)
        if self.classifier is None and self.labels == "majority":
            scores = majority_vote(vote_matrix(views))
        elif self.classifier is None:
            groups = np.array([a.key for a, _ in pairs], dtype=np.int64)
            scores = self.label_model.predict_proba(vote_matrix(views), groups)
        else:
            scores = self.classifier.predict_proba(feature_matrix(views))[:, 1]
        return np.where(_gtins_differ(views), 0.0, scores)


def _train(features: np.ndarray, probabilities: np.ndarray, is_gold: np.ndarray) -> Pipeline | None:
    """Logistic regression on soft labels; None when the labels hold only one class."""
    if features.shape[0] == 0 or probabilities.max() < 0.5 or probabilities.min() >= 0.5:
        return None
    x = np.vstack([features, features])
    y = np.concatenate([np.ones(len(features)), np.zeros(len(features))])
    boost = np.where(is_gold, GOLD_WEIGHT, 1.0)
    weights = np.concatenate([probabilities * boost, (1 - probabilities) * boost])
    keep = weights > 1e-6
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(x[keep], y[keep], logisticregression__sample_weight=weights[keep])
    return model


def _gtins_differ(views: Sequence[PairView]) -> np.ndarray:
    flags = []
    for view in views:
        a, b = normalize_gtin(view.left.gtin), normalize_gtin(view.right.gtin)
        flags.append(bool(a and b and a != b))
    return np.asarray(flags, dtype=bool)


def best_per_product(pairs: Sequence[Pair], probabilities: np.ndarray) -> list[MatchScore]:
    """The most probable item of each competitor product (ties: the lower item key)."""
    best: dict[int, MatchScore] = {}
    for (product, item), probability in zip(pairs, probabilities, strict=True):
        current = best.get(product.key)
        score = MatchScore(product.key, item.key, float(probability))
        if current is None or (score.probability, -score.item_key) > (
            current.probability,
            -current.item_key,
        ):
            best[product.key] = score
    return list(best.values())


__all__ = ["LABELING_FUNCTIONS", "MatchScore", "WeakMatcher", "best_per_product"]
