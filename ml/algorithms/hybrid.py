"""Hybrid of a collaborative model and content kNN, blended per user after normalisation.

`score = (1 - weight) · z(collab) + weight · z(content)`, each z-scored over the user's
row, so items without train interactions (cold items) can still reach a user through
their content. Both sub-models are saved as prefixed arrays of one file.
"""

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from ml.algorithms.base import HyperValue, Recommender
from ml.algorithms.content import ContentKNN
from ml.algorithms.fold_in import History
from ml.data.dataset import InteractionData

CollabName = Literal["ease", "itemknn", "als"]
COLLAB_PREFIX, CONTENT_PREFIX = "collab__", "content__"
# Fixed settings of the non-default collaborative kinds, from the middle of their ML-100K grids.
COLLAB_SETTINGS: Mapping[str, Mapping[str, HyperValue]] = {
    "ease": {},
    "itemknn": {"k": 100, "shrink": 10.0},
    "als": {"factors": 64, "regularization": 20.0, "alpha": 2.0, "iterations": 15},
}


class Hybrid(Recommender):
    """Blends a collaborative model (EASE by default) with `ContentKNN` by a tuned weight."""

    name = "hybrid"
    needs_data = True
    uses_seed = True

    def __init__(
        self,
        weight: float = 0.1,
        collab: CollabName = "ease",
        reg: float = 500.0,
        content_k: int = 25,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if collab not in COLLAB_SETTINGS:
            raise ValueError(f"collab must be one of {sorted(COLLAB_SETTINGS)}, not {collab!r}")
        self.weight = weight
        self.collab_name = collab
        self.reg = reg
        self.content_k = content_k
        self.seed = seed
        self.collab = _collab_model(collab, reg, seed)
        self.content = ContentKNN(k=content_k)

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Content weight, collaborative kind, EASE's `reg`, content `k` and the ALS seed."""
        return {
            "weight": self.weight,
            "collab": self.collab_name,
            "reg": self.reg,
            "content_k": self.content_k,
            "seed": self.seed,
        }

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        self.content.fit(train, data=data, valid=valid)
        self.collab.fit(train, data=data, valid=valid)

    def score(self, users: np.ndarray) -> np.ndarray:
        """The weighted sum of the two models' per-user normalised scores."""
        collab = zscore_rows(self.collab.score(users))
        content = zscore_rows(self.content.score(users))
        return (1.0 - self.weight) * collab + self.weight * content

    def _score_history(self, history: History) -> np.ndarray:
        """The same blend of the two models' fold-in scores of the history."""
        collab = zscore_rows(np.asarray(self.collab._score_history(history))[None, :])
        content = zscore_rows(np.asarray(self.content._score_history(history))[None, :])
        return ((1.0 - self.weight) * collab + self.weight * content)[0]

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **_prefixed(COLLAB_PREFIX, self.collab._state()),
            **_prefixed(CONTENT_PREFIX, self.content._state()),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        for prefix, model in ((COLLAB_PREFIX, self.collab), (CONTENT_PREFIX, self.content)):
            model.n_users, model.n_items = self.n_users, self.n_items
            model._restore(_unprefixed(prefix, arrays))


def _collab_model(collab: str, reg: float, seed: int) -> Recommender:
    """A new collaborative model of kind `collab` with its fixed settings."""
    # Imported here: the registry imports this module to register `Hybrid`.
    from ml.algorithms.registry import algorithm_class

    model_class = algorithm_class(collab)
    settings: dict[str, Any] = dict(COLLAB_SETTINGS[collab])
    if collab == "ease":
        settings["reg"] = reg
    if model_class.uses_seed:
        settings["seed"] = seed
    return model_class(**settings)


def zscore_rows(scores: np.ndarray) -> np.ndarray:
    """Each row minus its mean, over its standard deviation (constant rows become zeros).

    Chosen over min-max on ML-100K validation (equal there, and robust to one outlier score).
    """
    centred = scores - scores.mean(axis=1, keepdims=True)
    spread = centred.std(axis=1, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def _prefixed(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays with `prefix` before every name."""
    return {f"{prefix}{name}": array for name, array in arrays.items()}


def _unprefixed(prefix: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays whose names start with `prefix`, with it removed."""
    return {name[len(prefix) :]: array for name, array in arrays.items() if name.startswith(prefix)}
