"""Full-ranking top-k metrics with RecBole's definitions, plus coverage and novelty.

Per evaluated user with relevant set R and ranked list L of length k:
recall = |L ∩ R| / |R|; NDCG uses binary gains and an ideal DCG over min(|R|, k)
positions; hit = 1 if L ∩ R is non-empty; MRR = 1 / rank of the first hit (0 if none).
Metrics are means over users with at least one relevant item. Coverage@k is the share
of the catalog recommended to anyone; novelty@k the mean self-information
-log2(popularity) of recommended items, popularity being the share of users with the
item in train (an item nobody has counts as one user, to stay finite).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

DEFAULT_KS = (10, 20)
BATCH_USERS = 1024
RANKING_METRICS = ("recall", "ndcg", "hit", "mrr")


class RankingModel(Protocol):
    """Anything that returns top-k item ids per user with excluded items left out."""

    def recommend(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class EvaluationResult:
    """Mean metrics keyed like "ndcg@10" and the number of users they average over."""

    metrics: Mapping[str, float]
    n_users: int


def hit_matrix(top_items: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Boolean (users, k): whether the item at each rank is stored in the user's relevant row."""
    n_items = np.int64(relevant.shape[1])
    rows = np.repeat(np.arange(relevant.shape[0], dtype=np.int64), np.diff(relevant.indptr))
    relevant_keys = rows * n_items + relevant.indices
    ranked_keys = np.arange(len(top_items), dtype=np.int64)[:, None] * n_items + top_items
    return np.isin(ranked_keys, relevant_keys)


def user_metrics(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user recall, NDCG, hit and MRR at cut-off k from a boolean hit matrix."""
    hits_k = hits[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    discounts = discounts[: hits_k.shape[1]]
    any_hit = hits_k.any(axis=1)
    first_rank = np.argmax(hits_k, axis=1) + 1
    return {
        "recall": hits_k.sum(axis=1) / n_relevant,
        "ndcg": (hits_k * discounts).sum(axis=1) / ideal,
        "hit": any_hit.astype(np.float64),
        "mrr": np.where(any_hit, 1.0 / first_rank, 0.0),
    }


def self_information(train: sp.csr_matrix) -> np.ndarray:
    """-log2 of each item's share of users with it in train (at least one user)."""
    counts = np.bincount(train.indices, minlength=train.shape[1])
    return -np.log2(np.maximum(counts, 1) / train.shape[0])


def evaluate_full_ranking(
    model: RankingModel,
    relevant: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
    train: sp.csr_matrix,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    batch_users: int = BATCH_USERS,
) -> EvaluationResult:
    """Rank the whole catalog for every user with relevant items and average the metrics."""
    relevant = sp.csr_matrix(relevant)
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    totals = _Totals(ks, relevant.shape[1], self_information(train))
    for start in range(0, len(users), batch_users):
        batch = users[start : start + batch_users]
        top_items = model.recommend(batch, max(ks), exclude)
        totals.add(top_items, relevant[batch])
    return EvaluationResult(metrics=totals.means(len(users)), n_users=len(users))


class _Totals:
    """Running sums of the metrics over batches of users."""

    def __init__(self, ks: Sequence[int], n_items: int, information: np.ndarray) -> None:
        self.ks = tuple(ks)
        self.sums = {f"{name}@{k}": 0.0 for k in self.ks for name in RANKING_METRICS}
        self.recommended = {k: np.zeros(n_items, dtype=bool) for k in self.ks}
        self.novelty = dict.fromkeys(self.ks, 0.0)
        self.information = information

    def add(self, top_items: np.ndarray, relevant: sp.csr_matrix) -> None:
        """Accumulate one batch: its top-k lists and relevant rows."""
        hits = hit_matrix(top_items, relevant)
        n_relevant = np.diff(relevant.indptr)
        for k in self.ks:
            for name, values in user_metrics(hits, n_relevant, k).items():
                self.sums[f"{name}@{k}"] += float(values.sum())
            self.recommended[k][top_items[:, :k]] = True
            self.novelty[k] += float(self.information[top_items[:, :k]].mean(axis=1).sum())

    def means(self, n_users: int) -> dict[str, float]:
        """Mean of every metric, plus coverage@k and novelty@k."""
        denominator = max(n_users, 1)
        metrics = {key: total / denominator for key, total in self.sums.items()}
        for k in self.ks:
            metrics[f"coverage@{k}"] = float(self.recommended[k].mean())
            metrics[f"novelty@{k}"] = self.novelty[k] / denominator
        return metrics
