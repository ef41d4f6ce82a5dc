"""Names of the recommender implementations, for configuration, training and loading."""

from pathlib import Path
from typing import Any

from ml.algorithms.als import ALS
from ml.algorithms.base import Recommender, read_meta
from ml.algorithms.bpr import BPR
from ml.algorithms.content import ContentKNN
from ml.algorithms.context_ease import ContextEASE
from ml.algorithms.ease import EASE
from ml.algorithms.hybrid import Hybrid
from ml.algorithms.itemknn import ItemKNN
from ml.algorithms.multvae import MultVAE
from ml.algorithms.popularity import Popularity

ALGORITHMS: dict[str, type[Recommender]] = {
    model.name: model
    for model in (
        Popularity,
        ItemKNN,
        EASE,
        ALS,
        BPR,
        ContentKNN,
        Hybrid,
        ContextEASE,
        MultVAE,
    )
}


def algorithm_class(name: str) -> type[Recommender]:
    """The implementation registered under `name`."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise KeyError(f"unknown algorithm {name!r}; known: {', '.join(ALGORITHMS)}") from None


def create(name: str, **hyperparameters: Any) -> Recommender:
    """A new, unfitted model of algorithm `name`."""
    return algorithm_class(name)(**hyperparameters)


def load(directory: str | Path) -> Recommender:
    """A saved model, whatever its algorithm."""
    return algorithm_class(read_meta(directory)["name"]).load(directory)
