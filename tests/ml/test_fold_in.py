"""Fold-in scoring: a visitor's history scored by every algorithm without retraining."""

import tracemalloc
from functools import cache
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from ml.algorithms import registry
from ml.algorithms.als import ALS
from ml.algorithms.base import Recommender, top_k
from ml.algorithms.context_ease import UNAVAILABLE_SCORE
from ml.algorithms.ease import EASE
from ml.algorithms.itemknn import ItemKNN
from ml.data.dataset import InteractionData, ItemRecord, from_arrays
from tests.ml.test_algorithms import SMALL_SETTINGS

NAMES = registry.algorithm_names()
# Fold-ins that reproduce `score` of a train user's row up to float rounding.
EXACT = ("pop", "itemknn", "ease", "content", "hybrid", "multvae", "recvae")
EMBEDDED = ("als", "bpr", "multvae", "recvae", "nextitnet", "sasrec")
# Order-aware: a history is a sequence, so repeating an item is not adding its weight.
SEQUENTIAL = ("nextitnet", "sasrec", "tiger")
# Trained long enough that the BPR user factors carry signal, not their random start.
TRAINED_BPR: dict[str, Any] = {
    "factors": 4,
    "epochs": 100,
    "batch_size": 16,
    "learning_rate": 0.02,
    "seed": 1,
}
# Approximate fold-ins: model -> lowest top-10 overlap with `score` for every train user.
APPROXIMATE: dict[str, tuple[str, dict[str, Any], float]] = {
    "als": ("als", SMALL_SETTINGS["als"], 0.8),
    "bpr": ("bpr", TRAINED_BPR, 0.7),
    "hybrid-als": ("hybrid", {**SMALL_SETTINGS["hybrid"], "collab": "als"}, 0.9),
}
BIG_CATALOG = 4_000


@cache
def _data() -> InteractionData:
    """Thirty users over twenty items with titles and one of three genres each."""
    rng = np.random.default_rng(3)
    dense = rng.random((30, 20)) < 0.3
    dense[np.arange(30), rng.integers(0, 20, size=30)] = True
    users, items = np.nonzero(dense)
    return from_arrays(
        [f"u{user}" for user in users],
        [f"i{item}" for item in items],
        None,
        np.arange(len(users), dtype=float),
        item_records={
            f"i{item}": ItemRecord(title=f"item {item}", categories=(f"genre{item % 3}",))
            for item in range(20)
        },
    )


def _train() -> sp.csr_matrix:
    """The binary train matrix, in the dataset's own user and item ids."""
    return _data().matrix()


def _fitted(name: str, settings: dict[str, Any]) -> Recommender:
    """A model of `name` with `settings` fit on `_train()`, given the data if it needs it."""
    model = registry.create(name, **settings)
    return model.fit(_train(), data=_data() if model.needs_data else None)


@cache
def _model(name: str) -> Recommender:
    """The small model of `name`, fitted once for the whole module."""
    return _fitted(name, SMALL_SETTINGS[name])


def _overlap(first: np.ndarray, second: np.ndarray, k: int = 10) -> float:
    """The share of the top-k items two score vectors have in common."""
    tops = top_k(np.stack([first, second]), k)
    return len(set(tops[0].tolist()) & set(tops[1].tolist())) / k


@pytest.mark.parametrize("name", NAMES)
def test_score_history_gives_a_float32_score_per_item(name):
    model = _model(name)

    scores = model.score_history(np.array([3, 1, 3]))

    assert scores.shape == (model.n_items,)
    assert scores.dtype == np.float32
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("items", [[], [-1], [20], [0, 25]])
def test_empty_or_unknown_items_are_rejected(name, items):
    model = _model(name)

    with pytest.raises(ValueError, match="item ids"):
        model.score_history(np.array(items, dtype=np.int64))
    with pytest.raises(ValueError, match="item ids"):
        model.history_vector(np.array(items, dtype=np.int64))


@pytest.mark.parametrize(
    ("items", "weights", "message"),
    [
        (np.array([[1, 2]]), None, "1-D"),
        (np.array([1.0, 2.0]), None, "integers"),
        (np.array([1, 2]), np.array([1.0]), "one value per item"),
        (np.array([1, 2]), np.array([1.0, -1.0]), "non-negative"),
        (np.array([1, 2]), np.array([1.0, np.nan]), "finite"),
        (np.array([1, 2]), np.array([0.0, 0.0]), "all be zero"),
    ],
)
def test_malformed_histories_are_rejected(items, weights, message):
    with pytest.raises(ValueError, match=message):
        _model("ease").score_history(items, weights)


@pytest.mark.parametrize("name", EXACT)
def test_fold_in_of_a_train_row_reproduces_score(name):
    model, train = _model(name), _train()

    for user in range(train.shape[0]):
        expected = model.score(np.array([user]))[0]
        folded = model.score_history(train[user].indices)
        np.testing.assert_allclose(folded, expected, rtol=1e-5, atol=1e-5)


def test_context_ease_fold_in_reproduces_score_except_availability():
    model, train = _model("context_ease"), _train()

    for user in range(train.shape[0]):
        expected = model.score(np.array([user]))[0]
        available = expected > UNAVAILABLE_SCORE
        folded = model.score_history(train[user].indices)
        assert available.any()
        np.testing.assert_allclose(folded[available], expected[available], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", sorted(APPROXIMATE))
def test_approximate_fold_ins_rank_like_score(case):
    name, settings, lowest = APPROXIMATE[case]
    model, train = _fitted(name, settings), _train()

    overlaps = [
        _overlap(model.score_history(train[user].indices), model.score(np.array([user]))[0])
        for user in range(train.shape[0])
    ]

    assert min(overlaps) >= lowest


def test_als_fold_in_is_implicits_exact_least_squares_user_step():
    from implicit.cpu.als import user_factor

    train = _train()
    model = ALS(**{**SMALL_SETTINGS["als"], "alpha": 2.0}).fit(train)
    items = model.item_factors.astype(np.float64)
    confidence = sp.csr_matrix(2.0 * train, dtype=np.float64)

    for user in range(train.shape[0]):
        expected = user_factor(
            items, items.T @ items, confidence, user, model.regularization, model.factors
        )
        folded = model.history_vector(train[user].indices)
        assert folded is not None
        np.testing.assert_allclose(folded, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_repeated_items_add_their_weights(name):
    if name in SEQUENTIAL:
        pytest.skip("order-aware: tests/ml/test_sequential.py covers its histories")
    model = _model(name)

    repeated = model.score_history(np.array([4, 2, 4, 4]))
    weighted = model.score_history(np.array([2, 4]), np.array([1.0, 3.0]))

    np.testing.assert_allclose(repeated, weighted, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_item_vectors_times_history_vector_is_score_history(name):
    model = _model(name)
    items, weights = np.array([0, 5, 7]), np.array([1.0, 0.5, 2.0])

    vectors = model.item_vectors()
    visitor = model.history_vector(items, weights)

    if name not in EMBEDDED:
        assert vectors is None
        assert visitor is None
        return
    assert vectors is not None
    assert visitor is not None
    assert vectors.dtype == visitor.dtype == np.float32
    assert vectors.flags.c_contiguous
    assert vectors.shape == (model.n_items, visitor.shape[0])
    np.testing.assert_allclose(
        vectors @ visitor, model.score_history(items, weights), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_keeps_score_history(tmp_path, name):
    model = _model(name)
    items = np.array([1, 8, 8, 13])

    loaded = registry.load(model.save(tmp_path / name))

    np.testing.assert_array_equal(loaded.score_history(items), model.score_history(items))


def _big_ease() -> Recommender:
    model = EASE()
    model.n_items = BIG_CATALOG
    # Zeroed pages are never touched, so this costs no memory until rows are read.
    model.weights = np.zeros((BIG_CATALOG, BIG_CATALOG), dtype=np.float32)
    return model


def _big_itemknn() -> Recommender:
    model = ItemKNN()
    model.n_items = BIG_CATALOG
    model.similarity = sp.csr_matrix(sp.eye(BIG_CATALOG, k=1, dtype=np.float32, format="csr"))
    return model


@pytest.mark.parametrize("build", [_big_ease, _big_itemknn])
def test_item_item_fold_ins_never_build_an_item_by_item_matrix(build):
    model = build()
    history = np.array([10, 500, 3_999])

    tracemalloc.start()
    try:
        scores = model.score_history(history)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert scores.shape == (BIG_CATALOG,)
    # A dense n x n float32 matrix would take 64 MB; a few item rows take kilobytes.
    assert peak < 20 * BIG_CATALOG * 8
