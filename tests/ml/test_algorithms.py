"""Recommenders: registry, save/load round trips, closed forms and ranking behaviour."""

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from ml.algorithms import registry
from ml.algorithms.base import Recommender, top_k
from ml.algorithms.ease import EASE
from ml.algorithms.itemknn import ItemKNN
from ml.algorithms.popularity import Popularity
from ml.data.dataset import ItemRecord, from_arrays

SMALL_SETTINGS: dict[str, dict[str, Any]] = {
    "pop": {},
    "itemknn": {"k": 5, "shrink": 1.0, "block_size": 7},
    "ease": {"reg": 10.0},
    "als": {"factors": 4, "iterations": 3, "seed": 1},
    "bpr": {"factors": 4, "epochs": 3, "batch_size": 16, "seed": 1},
    "context_ease": {"reg": 10.0},
    "multvae": {"hidden": 8, "latent": 4, "epochs": 3, "seed": 1, "progress": False},
    "recvae": {"hidden": 8, "latent": 4, "epochs": 2, "seed": 1, "progress": False},
    "content": {"k": 5},
    "hybrid": {"weight": 0.3, "reg": 10.0, "content_k": 5},
    "nextitnet": {"dim": 8, "blocks": 2, "epochs": 2, "seed": 1, "progress": False},
    "sasrec": {"dim": 8, "layers": 1, "epochs": 2, "seed": 1, "progress": False},
    "semantic_ids": dict(levels=2, codebook_size=4, content_dim=4, collab_dim=4, hidden=8)
    | {"latent": 4, "epochs": 5, "seed": 1, "progress": False},
    "tiger": dict(levels=2, codebook_size=4, semantic_dim=4, quantizer_epochs=5, dim=8)
    | {"layers": 1, "heads": 1, "beam": 3, "epochs": 2, "seed": 1, "progress": False},
}


def _fitted(name: str, train: sp.csr_matrix) -> Recommender:
    """A small model of `name` fit on `train`, with a dataset built from it if it needs one."""
    model = registry.create(name, **SMALL_SETTINGS[name])
    if not model.needs_data:
        return model.fit(train)
    coo = train.tocoo()
    # Zero-padded ids sort like the matrix's rows and columns, so both line up.
    data = from_arrays(
        [f"u{row:03d}" for row in coo.row],
        [f"i{col:03d}" for col in coo.col],
        None,
        np.arange(coo.nnz, dtype=float),
        item_records={
            f"i{col:03d}": ItemRecord(title=f"item {col}", categories=(f"genre{col % 3}",))
            for col in range(train.shape[1])
        },
    )
    assert data.matrix().shape == train.shape
    return model.fit(data.matrix(), data=data)


def test_registry_knows_every_algorithm():
    assert set(registry.algorithm_names()) == set(SMALL_SETTINGS)
    with pytest.raises(KeyError, match="unknown algorithm 'nope'"):
        registry.create("nope")


@pytest.mark.parametrize("name", sorted(SMALL_SETTINGS))
def test_save_load_round_trip_gives_identical_scores(tmp_path, train_matrix, name):
    model = _fitted(name, train_matrix)
    users = np.arange(train_matrix.shape[0])

    model.save(tmp_path / name)
    loaded = registry.load(tmp_path / name)

    assert type(loaded) is type(model)
    assert loaded.hyperparameters == model.hyperparameters
    assert (loaded.n_users, loaded.n_items) == train_matrix.shape
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["arrays.npz", "model.json"]


@pytest.mark.parametrize("name", sorted(SMALL_SETTINGS))
def test_recommend_never_returns_excluded_items(train_matrix, name):
    model = _fitted(name, train_matrix)
    users = np.arange(train_matrix.shape[0])

    top = model.recommend(users, 5, exclude=train_matrix)

    assert top.shape == (len(users), 5)
    for user, items in zip(users, top, strict=True):
        assert not set(items.tolist()) & set(train_matrix[user].indices.tolist())


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_seeded_models_are_reproducible(train_matrix, name):
    settings = SMALL_SETTINGS[name]
    first = registry.create(name, **settings).fit(train_matrix)
    again = registry.create(name, **settings).fit(train_matrix)

    np.testing.assert_array_equal(first.score(np.arange(5)), again.score(np.arange(5)))


def test_loading_with_the_wrong_class_fails(tmp_path, train_matrix):
    Popularity().fit(train_matrix).save(tmp_path)

    with pytest.raises(ValueError, match="holds a 'pop' model"):
        EASE.load(tmp_path)


def test_ease_matches_closed_form_on_tiny_matrix():
    x = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 0]], float)
    reg = 0.5

    model = EASE(reg=reg).fit(sp.csr_matrix(x))

    p = np.linalg.inv(x.T @ x + reg * np.eye(4))
    b = np.eye(4) - p / np.diag(p)
    np.testing.assert_allclose(model.weights, b, atol=1e-12)
    np.testing.assert_allclose(np.diag(model.weights), 0.0)
    np.testing.assert_allclose(model.score(np.arange(5)), x @ b, atol=1e-6)


def test_itemknn_matches_dense_cosine_with_shrink_and_top_k(train_matrix):
    model = ItemKNN(k=3, shrink=2.0, block_size=6).fit(train_matrix)

    x = train_matrix.toarray().astype(float)
    norms = np.sqrt((x**2).sum(axis=0))
    sims = (x.T @ x) / (np.outer(norms, norms) + 2.0 + 1e-6)
    np.fill_diagonal(sims, 0.0)
    weights = model.similarity.toarray()
    for item in range(x.shape[1]):
        kept = np.flatnonzero(weights[:, item])
        assert len(kept) <= 3
        np.testing.assert_allclose(weights[kept, item], sims[kept, item], rtol=1e-5)
        assert weights[:, item].sum() == pytest.approx(np.sort(sims[:, item])[-3:].sum(), rel=1e-5)


def test_popularity_counts_users_and_decays_old_interactions():
    data = from_arrays(
        ["a", "b", "c", "a"], ["old", "old", "old", "new"], None, [0.0, 0.0, 0.0, 86_400.0 * 10]
    )
    train = data.matrix()

    plain = Popularity().fit(train)
    decayed = Popularity(half_life_days=5.0).fit(train, data=data)

    assert plain.popularity.tolist() == [3.0, 1.0]
    assert decayed.popularity.tolist() == pytest.approx([0.75, 1.0])
    with pytest.raises(ValueError, match="needs `data`"):
        Popularity(half_life_days=5.0).fit(train)


def test_top_k_orders_best_first_and_caps_k():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]], dtype=np.float32)

    assert top_k(scores, 3).tolist() == [[1, 3, 2], [0, 1, 2]]
    assert top_k(scores, 10).shape == (2, 4)
