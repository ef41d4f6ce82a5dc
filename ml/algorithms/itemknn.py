"""Item-based k-nearest neighbours: cosine similarity with shrinkage, top-k per item.

Follows RecBole's `ComputeSimilarity`: `sim(i, j) = x_i·x_j / (|x_i||x_j| + shrink + 1e-6)`,
self-similarity zero, and for every target item `j` only its `k` most similar items kept
(column `j` of the sparse weight matrix), so `score(u, j) = Σ_{i ∈ hist(u)} W[i, j]`.
"""

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from ml.algorithms.base import HyperValue, Recommender, csr_from_arrays, csr_to_arrays
from ml.algorithms.fold_in import History
from ml.data.dataset import InteractionData

DENOMINATOR_EPSILON = 1e-6


class ItemKNN(Recommender):
    """Scores a user's items by summed similarity to their train items."""

    name = "itemknn"

    def __init__(self, k: int = 100, shrink: float = 0.0, block_size: int = 512) -> None:
        super().__init__()
        self.k = k
        self.shrink = shrink
        self.block_size = block_size
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)
        self.user_items = sp.csr_matrix((0, 0), dtype=np.float32)

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Neighbourhood size, shrinkage and the column block size used while fitting."""
        return {"k": self.k, "shrink": self.shrink, "block_size": self.block_size}

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        self.user_items = train
        self.similarity = item_similarity(train, self.k, self.shrink, self.block_size)

    def score(self, users: np.ndarray) -> np.ndarray:
        """Each user's train row times the sparse neighbour weights."""
        return np.asarray((self.user_items[users] @ self.similarity).toarray())

    def _score_history(self, history: History) -> np.ndarray:
        """The weighted sum of the history items' sparse neighbour rows."""
        return np.asarray((history.row(self.n_items) @ self.similarity).toarray()).ravel()

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **csr_to_arrays("similarity", self.similarity),
            **csr_to_arrays("user_items", self.user_items),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.similarity = csr_from_arrays("similarity", arrays)
        self.user_items = csr_from_arrays("user_items", arrays)


def item_similarity(train: sp.csr_matrix, k: int, shrink: float, block_size: int) -> sp.csr_matrix:
    """Sparse item-item matrix keeping, per column, the top-k shrunk cosine similarities."""
    n_items = train.shape[1]
    norms = np.sqrt(np.asarray(train.power(2).sum(axis=0)).ravel())
    by_item = train.T.tocsr()
    columns = train.tocsc()
    blocks = [
        _block_similarity(
            by_item, columns, norms, start, min(start + block_size, n_items), k, shrink
        )
        for start in range(0, n_items, block_size)
    ]
    return sp.hstack(blocks, format="csr", dtype=np.float32)


def _block_similarity(
    by_item: sp.csr_matrix,
    columns: sp.csc_matrix,
    norms: np.ndarray,
    start: int,
    end: int,
    k: int,
    shrink: float,
) -> sp.csc_matrix:
    """Columns [start, end) of the pruned similarity matrix."""
    dots = np.asarray((by_item @ columns[:, start:end]).toarray(), dtype=np.float64)
    block = np.arange(end - start)
    dots[start + block, block] = 0.0
    sims = dots / (norms[:, None] * norms[None, start:end] + shrink + DENOMINATOR_EPSILON)
    keep = min(k, sims.shape[0])
    neighbours = np.argpartition(-sims, keep - 1, axis=0)[:keep]
    values = np.take_along_axis(sims, neighbours, axis=0)
    cols = np.broadcast_to(block, neighbours.shape)
    nonzero = values != 0.0
    return sp.csc_matrix(
        (values[nonzero], (neighbours[nonzero], cols[nonzero])),
        shape=(sims.shape[0], end - start),
        dtype=np.float32,
    )
