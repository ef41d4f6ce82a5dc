"""Semantic IDs: items as tuples of residual-VQ codes, recommended by shared code prefixes.

Each item's content (and, for items with interactions, its collaborative factors) is
embedded (`item_embeddings`), quantized by a residual VQ-VAE (`rqvae`) into `levels`
codes, and given a last disambiguation token so every tuple is unique. A visitor's
affinity to a prefix is the share of their history that carries it; an item scores the
sum over levels of `depth_boost ** level` times the affinity to its prefix at that level,
so deeper (rarer) shared prefixes count more. That score is z-scored per row and blended
with EASE's: `(1 - weight) · z(EASE) + weight · z(prefix)`. A cold item has no EASE
signal, yet reaches the visitors who like items sharing its prefix; `add_items` codes a
brand-new item from its content alone.

Defaults: 3 levels x 256 codes. On ML-100K (1682 items, about 6.6 per code) k-means
initialisation and dead-code restarts keep every code of every level in use, with under
1% of tuples colliding; smaller codebooks would collide more, larger ones leave codes
empty. The quantizer is trained only on items with train interactions, for a fixed
number of full-batch steps (its objective is reconstruction; `valid` is not used).

Anomaly scores: an item's reconstruction error through the model over the median error of
the catalog it was fitted on, so 1 is a typical item and 5 an item five times harder to
reconstruct. The error is the squared distance between the item's embedding and the decoding
of its codes, plus the content the embedder cannot represent at all (tokens outside its
vocabulary; `ItemEmbedder.unrepresented`): without that term a broken scrape whose text is
all unknown words would embed as an empty content row, near the catalog's centre and easy to
reconstruct. Content unlike anything the model learnt (an empty title, random characters, no
categories) thus scores high. New items are scored on the same scale by `add_items`.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ml.algorithms.base import HyperValue, Recommender, csr_from_arrays, csr_to_arrays
from ml.algorithms.content import NO_CONTENT_MESSAGE
from ml.algorithms.ease import ease_weights
from ml.algorithms.fold_in import History
from ml.algorithms.item_embeddings import (
    ItemEmbedder,
    embedder_from_state,
    fit_item_embeddings,
)
from ml.algorithms.rqvae import (
    RQVAE,
    QuantizerConfig,
    code_statistics,
    disambiguated,
    encode,
    item_squared_errors,
    mean_squared_error,
    residual_kmeans,
    residual_kmeans_reconstruction,
    train_rqvae,
)
from ml.algorithms.torch_training import EpochCallback, load_state_arrays, state_arrays
from ml.data.dataset import InteractionData, ItemRecord

NETWORK_PREFIX = "rqvae."


class SemanticIDs(Recommender):
    """Residual-VQ item codes; scores blend EASE with the visitor's code-prefix affinity."""

    name = "semantic_ids"
    needs_data = True
    uses_seed = True

    def __init__(
        self,
        levels: int = 3,
        codebook_size: int = 256,
        weight: float = 0.2,
        depth_boost: float = 2.0,
        reg: float = 250.0,
        content_dim: int = 64,
        collab_dim: int = 64,
        collab_weight: float = 1.0,
        ridge: float = 1.0,
        hidden: int = 256,
        latent: int = 64,
        beta: float = 0.25,
        decay: float = 0.95,
        dead_code_threshold: float = 1.0,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 1000,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        super().__init__()
        self.levels, self.codebook_size = levels, codebook_size
        self.weight, self.depth_boost, self.reg = weight, depth_boost, reg
        self.content_dim, self.collab_dim = content_dim, collab_dim
        self.collab_weight, self.ridge = collab_weight, ridge
        self.config = QuantizerConfig(
            codebook_sizes=(codebook_size,) * levels,
            hidden=hidden,
            latent=latent,
            beta=beta,
            decay=decay,
            dead_code_threshold=dead_code_threshold,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            epochs=epochs,
        )
        self.device, self.seed, self.progress = device, seed, progress
        # A callable, not a hyper-parameter: set it to follow training (e.g. from a task).
        self.on_epoch: EpochCallback | None = None
        self.network: RQVAE | None = None
        self.embedder: ItemEmbedder | None = None
        self.codes = np.zeros((0, levels + 1), dtype=np.int64)
        self.ease = np.zeros((0, 0), dtype=np.float32)
        self.user_items = sp.csr_matrix((0, 0), dtype=np.float32)
        self.metrics: dict[str, Any] = {}
        # Per item, reconstruction error over `anomaly_reference` (the fit catalog's median).
        self.anomaly = np.zeros(0, dtype=np.float64)
        self.anomaly_reference = float("nan")
        # The quantizer's training rows, kept after `fit` for diagnostics (not saved).
        self.training_inputs = np.zeros((0, 0), dtype=np.float32)
        self._prefix_ids: list[np.ndarray] = []

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Code shape, scoring blend, embedding and quantizer settings, device and seed."""
        config = self.config
        return {
            "levels": self.levels,
            "codebook_size": self.codebook_size,
            "weight": self.weight,
            "depth_boost": self.depth_boost,
            "reg": self.reg,
            "content_dim": self.content_dim,
            "collab_dim": self.collab_dim,
            "collab_weight": self.collab_weight,
            "ridge": self.ridge,
            "hidden": config.hidden,
            "latent": config.latent,
            "beta": config.beta,
            "decay": config.decay,
            "dead_code_threshold": config.dead_code_threshold,
            "learning_rate": config.learning_rate,
            "weight_decay": config.weight_decay,
            "epochs": config.epochs,
            "device": self.device,
            "seed": self.seed,
            "progress": self.progress,
        }

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        if data is None or data.item_content is None:
            raise ValueError(NO_CONTENT_MESSAGE)
        if len(data.item_content) != self.n_items:
            raise ValueError(
                f"item content covers {len(data.item_content)} items, the train matrix "
                f"{self.n_items}"
            )
        self.embedder, embeddings, warm = fit_item_embeddings(
            data.item_content,
            train,
            content_dim=self.content_dim,
            collab_dim=self.collab_dim,
            collab_weight=self.collab_weight,
            ridge=self.ridge,
            seed=self.seed,
        )
        if warm.sum() < self.codebook_size:
            raise ValueError(
                f"{int(warm.sum())} items have train interactions, fewer than the "
                f"{self.codebook_size} codes of a level: lower codebook_size"
            )
        # Each warm item twice: as it is, and as it would look new (collaborative part predicted
        # from content), so that new items are coded from inputs like those trained on.
        warm_content = [data.item_content[int(item)] for item in np.flatnonzero(warm)]
        self.training_inputs = np.vstack([embeddings[warm], self.embedder.embed(warm_content)])
        self.network, _ = train_rqvae(
            self.training_inputs,
            self.config,
            device=self.device,
            seed=self.seed,
            progress=self.progress,
            on_epoch=self.on_epoch,
        )
        codes, reconstruction = encode(self.network, embeddings)
        self.codes = disambiguated(codes)
        errors = self._anomaly_errors(data.item_content, embeddings, reconstruction)
        self.anomaly_reference = max(float(np.median(errors)), 1e-12)
        self.anomaly = errors / self.anomaly_reference
        self.metrics = self._quantizer_metrics(embeddings, codes, reconstruction)
        self.user_items = train
        self.ease = ease_weights(train, self.reg, np.dtype(np.float64)).astype(np.float32)
        self._index_prefixes()

    def _quantizer_metrics(
        self, embeddings: np.ndarray, codes: np.ndarray, reconstruction: Any
    ) -> dict[str, Any]:
        """Usage, perplexity, collisions and MSE per level of all items, against residual
        k-means fitted on the quantizer's own training inputs."""
        statistics = code_statistics(codes, self.config.codebook_sizes)
        network = self._fitted_network()
        codebooks = residual_kmeans(self.training_inputs, self.config.codebook_sizes, self.seed)
        ours = [
            mean_squared_error(
                embeddings, network.decode(torch.from_numpy(codes[:, :depth])).numpy()
            )
            for depth in range(1, self.levels + 1)
        ]
        baseline = [
            mean_squared_error(
                embeddings, residual_kmeans_reconstruction(embeddings, codebooks[:depth])
            )
            for depth in range(1, self.levels + 1)
        ]
        return {
            "codebook_usage": list(statistics.usage),
            "perplexity": list(statistics.perplexity),
            "collision_rate": statistics.collision_rate,
            "reconstruction_mse": mean_squared_error(embeddings, reconstruction),
            "baseline_reconstruction_mse": baseline[-1],
            "reconstruction_mse_per_level": ours,
            "baseline_reconstruction_mse_per_level": baseline,
        }

    def evaluation_report(self) -> dict[str, Any]:
        """The quantizer's figures for the `evaluate` command's JSON, rounded."""
        return {
            name: [round(v, 6) for v in value] if isinstance(value, list) else round(value, 6)
            for name, value in self.metrics.items()
        }

    def semantic_id(self, item: int) -> str:
        """The item's codes as text, coarse to fine, disambiguation last: "12-200-3-0"."""
        return "-".join(str(code) for code in self.codes[item])

    def add_items(self, content: Sequence[ItemRecord]) -> np.ndarray:
        """Code new catalog items from their content alone; return their new item ids.

        They join with no interactions: EASE cannot score them, their prefixes can.
        """
        if self.embedder is None or not content:
            raise ValueError("add_items needs a fitted model and at least one item record")
        embeddings = self.embedder.embed(content)
        codes, reconstruction = encode(self._fitted_network(), embeddings)
        new_codes = disambiguated(codes, taken=self.codes)[:, -1:]
        first = self.n_items
        self.codes = np.vstack([self.codes, np.column_stack([codes, new_codes])])
        errors = self._anomaly_errors(content, embeddings, reconstruction)
        self.anomaly = np.concatenate([self.anomaly, errors / self.anomaly_reference])
        self.n_items += len(content)
        self.ease = np.pad(self.ease, ((0, len(content)), (0, len(content))))
        self.user_items = sp.csr_matrix(
            (self.user_items.data, self.user_items.indices, self.user_items.indptr),
            shape=(self.n_users, self.n_items),
        )
        self._index_prefixes()
        return np.arange(first, self.n_items)

    def anomaly_scores(self, items: np.ndarray | None = None) -> np.ndarray:
        """How unlike the fitted catalog each item's content is: its reconstruction error
        through the model (module docstring) over the catalog's median (1 = typical; NaN for
        a model saved before scores existed). All items by default, else the ids given."""
        if items is None:
            return self.anomaly.copy()
        return self.anomaly[np.asarray(items, dtype=np.int64)]

    def score(self, users: np.ndarray) -> np.ndarray:
        """Blended scores of the users' train rows."""
        return self._scores(self.user_items[np.asarray(users, dtype=np.int64)])

    def _score_history(self, history: History) -> np.ndarray:
        """Blended scores of the history row, as `score` for a train row."""
        return self._scores(history.row(self.n_items))[0]

    def prefix_scores(self, rows: sp.csr_matrix) -> np.ndarray:
        """Per row, each item's summed depth-weighted affinity to its code prefixes."""
        shares = _row_normalised(rows)
        scores = np.zeros(rows.shape, dtype=np.float32)
        for depth, prefix in enumerate(self._prefix_ids):
            members = sp.csr_matrix(
                (np.ones(self.n_items, dtype=np.float32), (np.arange(self.n_items), prefix))
            )
            affinity = (shares @ members).toarray()
            scores += np.float32(self.depth_boost**depth) * affinity[:, prefix]
        return scores

    def _scores(self, rows: sp.csr_matrix) -> np.ndarray:
        collab = np.asarray(rows @ self.ease, dtype=np.float32)
        prefix = self.prefix_scores(rows)
        return (1.0 - self.weight) * _z_scored(collab) + self.weight * _z_scored(prefix)

    def _anomaly_errors(
        self, content: Sequence[ItemRecord], embeddings: np.ndarray, reconstruction: np.ndarray
    ) -> np.ndarray:
        """Per item, the squared reconstruction error of its embedding plus its content the
        embedder could not represent (see the module docstring)."""
        if self.embedder is None:
            raise RuntimeError(f"the {self.name} model is not fitted")
        squared = item_squared_errors(embeddings, reconstruction) * embeddings.shape[1]
        return squared + self.embedder.unrepresented(content)

    def _index_prefixes(self) -> None:
        """Per level, a dense id of each item's prefix of that length."""
        self._prefix_ids = [
            np.unique(self.codes[:, : depth + 1], axis=0, return_inverse=True)[1].ravel()
            for depth in range(self.levels)
        ]

    def _fitted_network(self) -> RQVAE:
        if self.network is None:
            raise RuntimeError(f"the {self.name} model is not fitted")
        return self.network

    def _state(self) -> dict[str, np.ndarray]:
        if self.embedder is None:
            raise RuntimeError(f"the {self.name} model is not fitted")
        metrics = {
            f"metric_{name}": np.asarray(value, dtype=np.float64)
            for name, value in self.metrics.items()
        }
        return {
            **state_arrays(self._fitted_network(), NETWORK_PREFIX),
            **self.embedder.state(),
            **csr_to_arrays("user_items", self.user_items),
            **metrics,
            "codes": self.codes,
            "ease": self.ease,
            "anomaly": self.anomaly,
            "anomaly_reference": np.asarray(self.anomaly_reference),
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.embedder = embedder_from_state(
            {name: value for name, value in arrays.items() if name.startswith("embedder_")}
        )
        network = RQVAE(self.embedder.dimension, self.config)
        load_state_arrays(network, arrays, NETWORK_PREFIX)
        self.network = network.eval()
        self.user_items = csr_from_arrays("user_items", arrays)
        self.codes, self.ease = arrays["codes"], arrays["ease"]
        # Artifacts saved before anomaly scores existed: every score unknown.
        self.anomaly = arrays.get("anomaly", np.full(len(self.codes), np.nan))
        self.anomaly_reference = float(arrays.get("anomaly_reference", np.nan))
        self.metrics = {
            name.removeprefix("metric_"): value.tolist() if value.ndim else float(value)
            for name, value in arrays.items()
            if name.startswith("metric_")
        }
        self._index_prefixes()


def _z_scored(scores: np.ndarray) -> np.ndarray:
    """Each row minus its mean over its standard deviation (rows without spread become 0)."""
    centred = scores - scores.mean(axis=1, keepdims=True)
    spread = scores.std(axis=1, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to sum to one (empty rows stay empty)."""
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ matrix, dtype=np.float32)
