"""Names of the recommender implementations, for configuration, training and loading.

PyTorch models are registered by import path and imported on first use, so that a web
worker serving EASE never loads torch.
"""

import importlib
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
    )
}

# name -> "module:Class" of the implementations that need torch.
TORCH_ALGORITHMS: dict[str, str] = {
    "multvae": "ml.algorithms.multvae:MultVAE",
    "recvae": "ml.algorithms.recvae:RecVAE",
    "nextitnet": "ml.algorithms.nextitnet:NextItNet",
    "sasrec": "ml.algorithms.sasrec:SASRec",
    "semantic_ids": "ml.algorithms.semantic_ids:SemanticIDs",
    "tiger": "ml.algorithms.generative:TIGER",
}


def algorithm_names() -> list[str]:
    """Every registered algorithm name, torch ones included."""
    return [*ALGORITHMS, *(name for name in TORCH_ALGORITHMS if name not in ALGORITHMS)]


def algorithm_class(name: str) -> type[Recommender]:
    """The implementation registered under `name` (importing a torch model on demand)."""
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    if name in TORCH_ALGORITHMS:
        module_name, class_name = TORCH_ALGORITHMS[name].split(":")
        model: type[Recommender] = getattr(importlib.import_module(module_name), class_name)
        return model
    known = ", ".join(algorithm_names())
    raise KeyError(f"unknown algorithm {name!r}; known: {known}")


def create(name: str, **hyperparameters: Any) -> Recommender:
    """A new, unfitted model of algorithm `name`."""
    return algorithm_class(name)(**hyperparameters)


def load(directory: str | Path) -> Recommender:
    """A saved model, whatever its algorithm."""
    return algorithm_class(read_meta(directory)["name"]).load(directory)
