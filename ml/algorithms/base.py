"""The abstract recommender: fit on a user-item matrix, score, recommend, save and load.

Models are saved as a folder with `model.json` (name, hyper-parameters, shape) and
`arrays.npz` (numeric state only, loaded with `allow_pickle=False`).
"""

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from ml.algorithms.fold_in import History, history_of
from ml.data.dataset import InteractionData

HyperValue = int | float | str | bool | None
META_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
FORMAT_VERSION = 1


class Recommender(ABC):
    """A top-k recommender over contiguous user and item ids."""

    name: ClassVar[str]
    uses_seed: ClassVar[bool] = False
    # Models that read timestamps, weights or item content from the InteractionData.
    needs_data: ClassVar[bool] = False

    def __init__(self) -> None:
        self.n_users = 0
        self.n_items = 0

    @property
    @abstractmethod
    def hyperparameters(self) -> dict[str, HyperValue]:
        """The constructor arguments of this model, JSON-serialisable."""

    def fit(
        self,
        train: sp.csr_matrix,
        *,
        data: InteractionData | None = None,
        valid: sp.csr_matrix | None = None,
    ) -> Self:
        """Learn from the (binary) train matrix; `data` and `valid` are optional extras."""
        matrix = sp.csr_matrix(train, dtype=np.float32)
        matrix.sort_indices()
        self.n_users, self.n_items = (int(size) for size in matrix.shape)
        self._fit(matrix, data=data, valid=valid)
        return self

    @abstractmethod
    def _fit(
        self,
        train: sp.csr_matrix,
        *,
        data: InteractionData | None,
        valid: sp.csr_matrix | None,
    ) -> None:
        """Model-specific training."""

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """Dense scores, shape (len(users), n_items); higher is better."""

    def score_history(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Float32 scores of every item, higher better, for a visitor who consumed `items`.

        `items` are model item ids (most recent last), `weights` optional strengths (1 by
        default); repeated ids add their weights up. The history's own items are not masked,
        and empty or out-of-range ids raise ValueError. Never builds an items x items matrix.
        """
        history = history_of(items, weights, self.n_items)
        return np.asarray(self._score_history(history), dtype=np.float32).reshape(self.n_items)

    @abstractmethod
    def _score_history(self, history: History) -> np.ndarray:
        """Model-specific scores of a validated history, any float type, n_items values."""

    def item_vectors(self) -> np.ndarray | None:
        """Item embeddings (n_items, d) for nearest-neighbour retrieval, or None if none.

        Where not None, `item_vectors() @ history_vector(items)` equals `score_history(items)`.
        """
        return None

    def history_vector(
        self, items: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray | None:
        """The visitor's embedding (d,) matching `item_vectors`, or None if the model has none."""
        return self._history_vector(history_of(items, weights, self.n_items))

    def _history_vector(self, history: History) -> np.ndarray | None:
        """Model-specific embedding of a validated history; None by default."""
        return None

    def recommend(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-k item ids per user, best first, never an item of `exclude`'s user row."""
        users = np.asarray(users, dtype=np.int64)
        scores = self.score(users).astype(np.float32, copy=True)
        if exclude is not None:
            mask_items(scores, exclude[users])
        return top_k(scores, k)

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Arrays that, with the hyper-parameters, restore the fitted model."""

    @abstractmethod
    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Set the fitted state from the arrays of `_state`."""

    def save(self, directory: str | Path) -> Path:
        """Write the fitted model to `directory` (created if needed); return the folder."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT_VERSION,
            "name": self.name,
            "hyperparameters": self.hyperparameters,
            "n_users": self.n_users,
            "n_items": self.n_items,
        }
        # Typed loosely: numpy's stub types **kwds as if a key could be its `allow_pickle`.
        arrays: dict[str, Any] = self._state()
        np.savez(folder / ARRAYS_FILE, **arrays)
        (folder / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Read a model written by `save` of this same class."""
        meta = read_meta(directory)
        if meta["name"] != cls.name:
            raise ValueError(f"{directory} holds a {meta['name']!r} model, not {cls.name!r}")
        model = cls(**meta["hyperparameters"])
        model.n_users, model.n_items = int(meta["n_users"]), int(meta["n_items"])
        with np.load(Path(directory) / ARRAYS_FILE, allow_pickle=False) as arrays:
            model._restore({key: arrays[key] for key in arrays.files})
        return model


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The `model.json` of a saved model."""
    meta: dict[str, Any] = json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{directory}: unsupported model format {meta.get('format')!r}")
    return meta


def mask_items(scores: np.ndarray, rows: sp.csr_matrix) -> None:
    """Set to -inf, in place, the scores of the items present in each user's row."""
    row_ids = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    scores[row_ids, rows.indices] = -np.inf


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column ids of the k highest scores per row, best first (equal scores by lower id)."""
    k = min(k, scores.shape[1])
    candidates = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    candidates.sort(axis=1)
    ranked = np.argsort(-np.take_along_axis(scores, candidates, axis=1), axis=1, kind="stable")
    return np.take_along_axis(candidates, ranked, axis=1)


def csr_to_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as plain arrays for `np.savez`."""
    return {
        f"{prefix}_data": matrix.data,
        f"{prefix}_indices": matrix.indices,
        f"{prefix}_indptr": matrix.indptr,
        f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def csr_from_arrays(prefix: str, arrays: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    """The CSR matrix stored by `csr_to_arrays`."""
    shape = tuple(int(size) for size in arrays[f"{prefix}_shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=shape,
    )
