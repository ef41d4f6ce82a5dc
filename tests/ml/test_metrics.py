"""Full-ranking metrics: hand-computed cases and exclusion of already-seen items."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from ml.algorithms.base import mask_items, top_k
from ml.evaluation.metrics import evaluate_full_ranking, hit_matrix, self_information, user_metrics


class FixedScores:
    """A model whose scores are a fixed matrix, ranked through the real `recommend`."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def recommend(self, users, k, exclude=None):
        scores = self.scores[users].astype(np.float32)
        if exclude is not None:
            mask_items(scores, exclude[users])
        return top_k(scores, k)


def test_hand_computed_user_metrics():
    # Ranked lists of 3; user 0 relevant {a at rank 2, c at rank 3} of 2 relevant items,
    # user 1 relevant: 4 items, one at rank 1; user 2: no hit among its 1 relevant item.
    hits = np.array([[False, True, True], [True, False, False], [False, False, False]])
    n_relevant = np.array([2, 4, 1])

    metrics = user_metrics(hits, n_relevant, k=3)

    assert metrics["recall"].tolist() == pytest.approx([1.0, 0.25, 0.0])
    assert metrics["hit"].tolist() == [1.0, 1.0, 0.0]
    assert metrics["mrr"].tolist() == pytest.approx([0.5, 1.0, 0.0])
    ndcg_user0 = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg_user1 = 1 / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert metrics["ndcg"].tolist() == pytest.approx([ndcg_user0, ndcg_user1, 0.0])


def test_cut_off_k_only_counts_the_first_k():
    hits = np.array([[False, True, True]])

    metrics = user_metrics(hits, np.array([2]), k=1)

    assert metrics["recall"][0] == 0.0
    assert metrics["mrr"][0] == 0.0


def test_hit_matrix_looks_up_each_users_own_row():
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=np.float32))

    hits = hit_matrix(np.array([[3, 0, 1], [1, 0, 2]]), relevant)

    assert hits.tolist() == [[True, False, True], [False, True, False]]


def test_evaluation_excludes_seen_items_and_skips_users_without_targets():
    scores = np.array([[9, 8, 7, 6, 5], [9, 8, 7, 6, 5], [1, 2, 3, 4, 5]], dtype=np.float32)
    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]]))
    test = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0]]))

    result = evaluate_full_ranking(FixedScores(scores), test, train, train, ks=(1, 2))

    # user 0: item 0 excluded so item 1 ranks first; user 2 ranks 4, 3, 2, 1.
    assert result.n_users == 2
    assert result.metrics["hit@1"] == pytest.approx(0.5)
    assert result.metrics["mrr@2"] == pytest.approx(0.5)
    assert result.metrics["recall@2"] == pytest.approx(0.5)
    assert result.metrics["coverage@1"] == pytest.approx(2 / 5)
    assert result.metrics["coverage@2"] == pytest.approx(4 / 5)


def test_without_exclusion_seen_items_take_the_top():
    scores = np.array([[9, 8, 7]], dtype=np.float32)
    train = sp.csr_matrix(np.array([[1, 0, 0]]))
    test = sp.csr_matrix(np.array([[0, 1, 0]]))

    excluded = evaluate_full_ranking(FixedScores(scores), test, train, train, ks=(1,))
    included = evaluate_full_ranking(FixedScores(scores), test, None, train, ks=(1,))

    assert excluded.metrics["recall@1"] == 1.0
    assert included.metrics["recall@1"] == 0.0


def test_novelty_is_mean_self_information_of_recommended_items():
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]]))
    information = self_information(train)
    test = sp.csr_matrix(np.array([[0, 0, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0]]))
    scores = np.tile(np.array([[0, 2, 1]], dtype=np.float32), (4, 1))

    result = evaluate_full_ranking(FixedScores(scores), test, None, train, ks=(1,))

    assert information.tolist() == pytest.approx([0.0, 2.0, 2.0])
    assert result.metrics["novelty@1"] == pytest.approx(2.0)
