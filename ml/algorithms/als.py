"""Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren, Volinsky).

Training uses the `implicit` library's CPU solver (conjugate gradient); the model keeps
only the two factor matrices, so scoring and saving need nothing but numpy. A visitor
outside the train matrix is folded in by the exact least-squares user step.
"""

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ml.algorithms.base import HyperValue, Recommender
from ml.algorithms.fold_in import History, factor_gram, least_squares_fold_in
from ml.data.dataset import InteractionData


class ALS(Recommender):
    """Scores `U[u] · V[i]`; observed pairs get confidence `alpha · x_ui` in `implicit`."""

    name = "als"
    uses_seed = True

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.user_factors = np.zeros((0, factors), dtype=np.float32)
        self.item_factors = np.zeros((0, factors), dtype=np.float32)
        self.item_gram = np.zeros((factors, factors), dtype=np.float64)

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Factor count, L2 weight, confidence scale, sweeps and random seed."""
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "seed": self.seed,
        }

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        # Imported here so that loading and scoring a saved model never needs `implicit`.
        from implicit.cpu.als import AlternatingLeastSquares

        # implicit parallelises over users itself; a threaded BLAS underneath only slows it.
        with threadpool_limits(limits=1, user_api="blas"):
            solver = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.seed,
            )
            solver.fit(train, show_progress=False)
        self.user_factors = np.asarray(solver.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(solver.item_factors, dtype=np.float32)
        self.item_gram = factor_gram(self.item_factors)

    def score(self, users: np.ndarray) -> np.ndarray:
        """Dot products of the users' factors with every item's factors."""
        return self.user_factors[users] @ self.item_factors.T

    def _score_history(self, history: History) -> np.ndarray:
        """The item factors times the folded-in user factor."""
        return self.item_factors @ self._history_vector(history)

    def item_vectors(self) -> np.ndarray:
        """The item factor matrix itself (float32, C-contiguous): do not modify it."""
        return np.ascontiguousarray(self.item_factors, dtype=np.float32)

    def _history_vector(self, history: History) -> np.ndarray:
        """The user factor that implicit's least-squares step gives the history (c = alpha·w).

        Exact where training's conjugate-gradient steps are approximate, so a train user's
        fold-in is close to, not equal to, their stored factor.
        """
        return least_squares_fold_in(
            self.item_factors, self.item_gram, history, self.regularization, self.alpha
        )

    def _state(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.user_factors = arrays["user_factors"]
        self.item_factors = arrays["item_factors"]
        self.item_gram = factor_gram(self.item_factors)
