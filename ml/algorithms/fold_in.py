"""A visitor's history as model input, to score users the model never saw (fold-in).

Serving scores anonymous visitors, new sessions and users whose events are newer than the
model from their recent items alone. `History` is that input after validation: distinct
item ids with the summed weight of each, so repeating an item strengthens it the way a
larger weight would (pass weights of 1 per distinct item to match a binary train row).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class History:
    """Distinct model item ids, ascending, and the summed non-negative weight of each."""

    items: np.ndarray
    weights: np.ndarray

    def row(self, n_items: int) -> sp.csr_matrix:
        """The history as a 1 x n_items float32 sparse row, like a user's train row."""
        indptr = np.array([0, len(self.items)], dtype=np.int32)
        return sp.csr_matrix(
            (self.weights, self.items.astype(np.int32), indptr), shape=(1, n_items)
        )

    def dense(self, n_items: int) -> np.ndarray:
        """The history as a dense float32 vector of length n_items."""
        vector = np.zeros(n_items, dtype=np.float32)
        vector[self.items] = self.weights
        return vector


def history_of(items: np.ndarray, weights: np.ndarray | None, n_items: int) -> History:
    """The validated history of `items` (ids in [0, n_items)) with optional `weights`."""
    ids = _item_ids(items, n_items)
    strengths = _weights(weights, len(ids))
    distinct, position = np.unique(ids, return_inverse=True)
    summed = np.bincount(position, weights=strengths, minlength=len(distinct))
    return History(distinct, summed.astype(np.float32))


def _item_ids(items: np.ndarray, n_items: int) -> np.ndarray:
    """`items` as a 1-D int64 array, or ValueError if empty, not integers or out of range."""
    ids = np.asarray(items)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError("a history needs a non-empty 1-D array of item ids")
    if ids.dtype.kind not in "iu":
        raise ValueError(f"item ids must be integers, not {ids.dtype}")
    if ids.min() < 0 or ids.max() >= n_items:
        raise ValueError(
            f"item ids must lie in [0, {n_items}), the model's items; "
            f"got ids from {ids.min()} to {ids.max()}"
        )
    return ids.astype(np.int64, copy=False)


def _weights(weights: np.ndarray | None, count: int) -> np.ndarray:
    """Per-item strengths (1 by default); ValueError if misshapen, negative, infinite or all 0."""
    if weights is None:
        return np.ones(count, dtype=np.float64)
    strengths = np.asarray(weights, dtype=np.float64)
    if strengths.shape != (count,):
        raise ValueError(f"weights must have one value per item id: {count}, not {strengths.shape}")
    if not np.all(np.isfinite(strengths)) or np.any(strengths < 0):
        raise ValueError("weights must be finite and non-negative")
    if not strengths.sum() > 0:
        raise ValueError("weights must not all be zero: such a history holds nothing")
    return strengths


def least_squares_fold_in(
    item_factors: np.ndarray,
    item_gram: np.ndarray,
    history: History,
    regularization: float,
    alpha: float,
) -> np.ndarray:
    """The implicit-ALS user factor of a history, with the item factors held fixed.

    Solves `(YᵀY + λI + Y_hᵀ(C_h - I)Y_h) x = Y_hᵀ C_h 1` with confidence `c = alpha·w`, as
    the `implicit` library's user step does (Hu, Koren, Volinsky), `item_gram` being YᵀY.
    """
    factors = item_factors[history.items].astype(np.float64)
    confidence = alpha * history.weights.astype(np.float64)
    system = item_gram + regularization * np.eye(item_gram.shape[0])
    system += factors.T @ ((confidence - 1.0)[:, None] * factors)
    return np.linalg.solve(system, factors.T @ confidence).astype(np.float32)


def factor_gram(item_factors: np.ndarray) -> np.ndarray:
    """YᵀY of the item factors in float64, cached by the models that fold in by least squares."""
    factors = item_factors.astype(np.float64)
    gram: np.ndarray = factors.T @ factors
    return gram
