"""ANN candidate retrieval: exact below the threshold, faiss IVF above, same contract for both."""

from pathlib import Path

import faiss
import numpy as np
import pytest

from recommender.ann import ItemVectorIndex, limit_threads

DIM = 16


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Overrides the root fixture: the index touches neither the database nor the cache."""


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> None:
    faiss.omp_set_num_threads(1)


def clustered_vectors(n: int, seed: int = 0) -> np.ndarray:
    """Items around 50 cluster centres with popularity-like spread in norms."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, DIM))
    vectors = centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, DIM))
    return (vectors * rng.lognormal(0, 0.3, (n, 1))).astype(np.float32)


def history_queries(vectors: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """Queries as a user's history would make them: means of 10 items."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(vectors), (count, 10))
    return vectors[picks].mean(axis=1)


def true_top(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(vectors @ query), kind="stable")[:k]


@pytest.fixture(scope="module")
def small_vectors() -> np.ndarray:
    return clustered_vectors(2_000)


@pytest.fixture(scope="module")
def large_vectors() -> np.ndarray:
    return clustered_vectors(20_000)


@pytest.fixture(scope="module")
def faiss_index(large_vectors: np.ndarray) -> ItemVectorIndex:
    return ItemVectorIndex.from_vectors(large_vectors, exact_below=1_000)


def test_exact_variant_returns_true_top_k(small_vectors):
    index = ItemVectorIndex.from_vectors(small_vectors)

    for query in history_queries(small_vectors, 5):
        ids, scores = index.search(query, 20)

        assert index.is_exact
        np.testing.assert_array_equal(ids, true_top(small_vectors, query, 20))
        np.testing.assert_allclose(scores, small_vectors[ids] @ query, rtol=1e-5)


def test_faiss_variant_recall_at_50(large_vectors, faiss_index):
    queries = history_queries(large_vectors, 50)

    recalls = [
        len(set(faiss_index.search(query, 50)[0]) & set(true_top(large_vectors, query, 50))) / 50
        for query in queries
    ]

    assert not faiss_index.is_exact
    assert np.mean(recalls) >= 0.9


def test_faiss_scores_are_inner_products_best_first(large_vectors, faiss_index):
    query = history_queries(large_vectors, 1)[0]

    ids, scores = faiss_index.search(query, 30)

    assert len(ids) == 30
    np.testing.assert_allclose(scores, large_vectors[ids] @ query, rtol=1e-3, atol=1e-3)
    assert np.all(np.diff(scores) <= 1e-6)


@pytest.mark.parametrize("exact_below", [50_000, 1_000])
def test_exclude_is_respected(large_vectors, exact_below):
    index = ItemVectorIndex.from_vectors(large_vectors[:5_000], exact_below=exact_below)
    query = history_queries(large_vectors[:5_000], 1)[0]
    best = index.search(query, 40)[0]
    exclude = {*best[::2].tolist(), -1, 10**9}  # ids outside the index are ignored

    ids, _ = index.search(query, 40, exclude=exclude)

    assert len(ids) == 40
    assert not set(ids.tolist()) & exclude
    np.testing.assert_array_equal(ids[:20], best[1::2])


def test_k_larger_than_catalog_returns_everything_not_excluded(small_vectors):
    index = ItemVectorIndex.from_vectors(small_vectors[:10])

    ids, scores = index.search(small_vectors[0], 50, exclude=[3])

    assert sorted(ids.tolist()) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert np.all(np.diff(scores) <= 0)


def test_search_batch_matches_search(large_vectors, faiss_index):
    queries = history_queries(large_vectors, 4)

    ids, scores = faiss_index.search_batch(queries, 25, exclude=[1, 2, 3])

    assert ids.shape == scores.shape == (4, 25)
    for row, query in enumerate(queries):
        np.testing.assert_array_equal(ids[row], faiss_index.search(query, 25, exclude=[1, 2, 3])[0])


@pytest.mark.parametrize("exact_below", [50_000, 1_000])
@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(tmp_path: Path, large_vectors, exact_below, mmap):
    index = ItemVectorIndex.from_vectors(large_vectors[:3_000], exact_below=exact_below)
    queries = history_queries(large_vectors[:3_000], 3)

    index.save(tmp_path / "index")
    loaded = ItemVectorIndex.load(tmp_path / "index", mmap=mmap)

    assert (len(loaded), loaded.dim, loaded.is_exact) == (3_000, DIM, index.is_exact)
    assert loaded.nprobe == index.nprobe
    for query in queries:
        before, after = index.search(query, 30, [5]), loaded.search(query, 30, [5])
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])


def test_nprobe_trades_recall_for_speed(faiss_index):
    original = faiss_index.nprobe
    faiss_index.nprobe = 1
    try:
        assert faiss_index.nprobe == 1
    finally:
        faiss_index.nprobe = original


@pytest.mark.parametrize(
    ("query", "k", "message"),
    [
        (np.zeros(DIM + 1), 5, "expected"),
        (np.zeros((1, DIM)), 5, "expected"),
        (np.full(DIM, np.nan), 5, "NaN"),
        (np.zeros(DIM), 0, "k must be a positive integer"),
        (np.zeros(DIM), -3, "k must be a positive integer"),
        (np.zeros(DIM), 2.5, "k must be a positive integer"),
    ],
)
def test_bad_queries_raise(small_vectors, query, k, message):
    index = ItemVectorIndex.from_vectors(small_vectors)

    with pytest.raises(ValueError, match=message):
        index.search(query, k)


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        (np.zeros((0, DIM), np.float32), "empty"),
        (np.zeros(DIM, np.float32), "must be \\(n_items, d\\)"),
        (np.zeros((5, 0), np.float32), "must be \\(n_items, d\\)"),
        (np.array([[1.0, np.inf]], np.float32), "NaN or infinite"),
    ],
)
def test_bad_vectors_raise(vectors, message):
    with pytest.raises(ValueError, match=message):
        ItemVectorIndex.from_vectors(vectors)


def test_nprobe_on_exact_index_raises(small_vectors):
    index = ItemVectorIndex.from_vectors(small_vectors)

    with pytest.raises(ValueError, match="faiss variant"):
        index.nprobe = 4


def test_limit_threads_caps_faiss():
    limit_threads(1)

    assert faiss.omp_get_max_threads() == 1
