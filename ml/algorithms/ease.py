"""EASE (Steck, 2019): a closed-form item-item linear autoencoder with L2 `reg`."""

from collections.abc import Mapping
from typing import Literal

import numpy as np
import scipy.sparse as sp

from ml.algorithms.base import HyperValue, Recommender, csr_from_arrays, csr_to_arrays
from ml.algorithms.fold_in import History
from ml.data.dataset import InteractionData


class EASE(Recommender):
    """Scores `X_u @ B` with `B = I - P / diag(P)`, `P = (XᵀX + reg·I)⁻¹`, zero diagonal."""

    name = "ease"

    def __init__(
        self, reg: float = 250.0, dtype: Literal["float32", "float64"] = "float64"
    ) -> None:
        super().__init__()
        self.reg = reg
        self.dtype = dtype
        self.weights = np.zeros((0, 0), dtype=np.float32)
        self.user_items = sp.csr_matrix((0, 0), dtype=np.float32)

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """L2 regularisation and the float type of the inversion and the stored weights."""
        return {"reg": self.reg, "dtype": self.dtype}

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        self.user_items = train
        self.weights = ease_weights(train, self.reg, np.dtype(self.dtype))

    def score(self, users: np.ndarray) -> np.ndarray:
        """Each user's train row times the item-item weights."""
        return np.asarray(self.user_items[users] @ self.weights)

    def _score_history(self, history: History) -> np.ndarray:
        """The weighted sum of the history items' rows of the weight matrix."""
        return history_scores(self.weights, history)

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights, **csr_to_arrays("user_items", self.user_items)}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.weights = arrays["weights"]
        self.user_items = csr_from_arrays("user_items", arrays)


def history_scores(weights: np.ndarray, history: History) -> np.ndarray:
    """`x · B` for the history row x, reading only its items' rows of B."""
    return np.asarray(history.weights @ weights[history.items])


def ease_weights(train: sp.csr_matrix, reg: float, dtype: np.dtype) -> np.ndarray:
    """The EASE item-item matrix of a binary user-item matrix."""
    gram = np.asarray((train.T @ train).toarray(), dtype=dtype)
    gram[np.diag_indices_from(gram)] += reg
    inverse = np.linalg.inv(gram)
    weights = inverse / -np.diag(inverse)
    weights[np.diag_indices_from(weights)] = 0.0
    return weights
