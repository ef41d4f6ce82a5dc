"""Most-popular baseline, optionally with exponential time decay of each interaction."""

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from ml.algorithms.base import HyperValue, Recommender
from ml.algorithms.fold_in import History
from ml.data.dataset import InteractionData

SECONDS_PER_DAY = 86_400.0


class Popularity(Recommender):
    """Scores every item by its number of train users (decayed by age if `half_life_days`)."""

    name = "pop"

    def __init__(self, half_life_days: float | None = None) -> None:
        super().__init__()
        self.half_life_days = half_life_days
        self.popularity = np.zeros(0, dtype=np.float32)

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """The decay half-life in days, or None for plain counts."""
        return {"half_life_days": self.half_life_days}

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        if self.half_life_days is None:
            counts = np.bincount(train.indices, minlength=self.n_items)
            self.popularity = counts.astype(np.float32)
            return
        if data is None:
            raise ValueError("time decay needs `data` with the interactions' timestamps")
        self.popularity = _decayed_popularity(train, data, self.half_life_days)

    def score(self, users: np.ndarray) -> np.ndarray:
        """The same popularity row for every user."""
        return np.tile(self.popularity, (len(users), 1))

    def _score_history(self, history: History) -> np.ndarray:
        """The popularity row, whatever the history."""
        return self.popularity.copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.popularity = arrays["popularity"]


def _decayed_popularity(
    train: sp.csr_matrix, data: InteractionData, half_life_days: float
) -> np.ndarray:
    """Sum over train interactions of 0.5 ** (age / half-life), age from the newest one."""
    in_train = np.asarray(train[data.users, data.items]).ravel() > 0
    times = data.timestamps[in_train]
    ages_days = (times.max() - times) / SECONDS_PER_DAY
    decay = np.power(0.5, ages_days / half_life_days)
    return np.bincount(data.items[in_train], weights=decay, minlength=train.shape[1]).astype(
        np.float32
    )
