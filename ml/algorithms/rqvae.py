"""Residual VQ-VAE over item embeddings: each item becomes a short tuple of discrete codes.

Encoder and decoder are MLPs around `vector_quantize_pytorch.ResidualVQ`. Training follows
the VQ-VAE objective with EMA codebooks: reconstruction MSE plus `beta` times the
commitment loss ||z_e - sg[e]||^2 (the EMA update stands in for the codebook loss
||sg[z_e] - e||^2), straight-through gradients to the encoder (each level passes the
gradient of the summed codes to its residual input), k-means initialisation of
every level and restarts of codes whose EMA cluster size falls under a threshold. Batches
are the whole catalog: items number in the thousands, and k-means initialisation and
dead-code restarts draw from the batch, so a small batch would seed them poorly.

Also here, in numpy: the per-level diagnostics (usage, perplexity, collisions), the
disambiguation token, and the residual k-means baseline with the same bits.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import ResidualVQ

from ml.algorithms.torch_training import (
    EpochCallback,
    TrainingReport,
    adamw,
    resolve_device,
    seeded,
    train_epochs,
)


@dataclass(frozen=True)
class QuantizerConfig:
    """Sizes and training settings of a residual VQ-VAE."""

    codebook_sizes: tuple[int, ...] = (256, 256, 256)
    hidden: int = 256
    latent: int = 32
    beta: float = 0.25
    decay: float = 0.95
    dead_code_threshold: float = 1.0
    kmeans_iters: int = 20
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    epochs: int = 1500


class RQVAE(nn.Module):
    """MLP encoder, residual vector quantizer, MLP decoder."""

    def __init__(self, n_features: int, config: QuantizerConfig) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(n_features, config.hidden),
            nn.SiLU(),
            nn.Linear(config.hidden, config.latent),
        )
        self.quantizer = ResidualVQ(
            dim=config.latent,
            codebook_size=config.codebook_sizes,
            num_quantizers=len(config.codebook_sizes),
            decay=config.decay,
            commitment_weight=config.beta,
            kmeans_init=True,
            kmeans_iters=config.kmeans_iters,
            threshold_ema_dead_code=config.dead_code_threshold,
            # Plain straight-through estimator (the library's default is the rotation trick).
            rotation_trick=False,
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent, config.hidden),
            nn.SiLU(),
            nn.Linear(config.hidden, n_features),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction, codes (batch, levels) and the summed commitment loss."""
        quantized, codes, commitment = self.quantizer(self.encoder(x))
        return self.decoder(quantized), codes, commitment.sum()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes (batch, levels) of the inputs, without touching the codebooks."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            _, codes, _ = self.quantizer(self.encoder(x))
        self.train(was_training)
        return codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstructed inputs from the leading levels of code tuples (batch, <= levels)."""
        with torch.no_grad():
            codebooks = self.codebooks()
            latent = torch.zeros(len(codes), codebooks[0].shape[1], device=codes.device)
            for level in range(codes.shape[1]):
                latent = latent + codebooks[level][codes[:, level]]
            decoded: torch.Tensor = self.decoder(latent)
        return decoded

    def codebooks(self) -> list[torch.Tensor]:
        """The code vectors of each level, (codebook size, latent) each."""
        return [layer.codebook for layer in self.quantizer.layers]


def train_rqvae(
    embeddings: np.ndarray,
    config: QuantizerConfig,
    *,
    device: str = "auto",
    seed: int = 0,
    progress: bool = False,
    on_epoch: EpochCallback | None = None,
) -> tuple[RQVAE, TrainingReport]:
    """A residual VQ-VAE trained on the rows of `embeddings` (on CPU when it returns)."""
    x = _checked(embeddings)
    target = resolve_device(device)
    with seeded(seed, target):
        network = RQVAE(x.shape[1], config).to(target)
        optimizer = adamw(network.parameters(), config.learning_rate, config.weight_decay)
        batch = torch.from_numpy(x).to(target)

        def run_epoch(epoch: int) -> float:
            reconstruction, _, commitment = network(batch)
            loss = F.mse_loss(reconstruction, batch) + commitment
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return float(loss.item())

        report = train_epochs(
            network, run_epoch, epochs=config.epochs, progress=progress, on_epoch=on_epoch
        )
    return network.cpu().eval(), report


def encode(network: RQVAE, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (n, levels) as int64 and reconstructions (n, d) as float32 of `embeddings`."""
    x = torch.from_numpy(_checked(embeddings))
    codes = network.encode(x)
    return codes.numpy().astype(np.int64), network.decode(codes).numpy()


def _checked(embeddings: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty 2-D array, not shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings must be finite")
    return x


@dataclass(frozen=True)
class CodeStatistics:
    """Per-level usage (share of codes used) and perplexity, and the tuple collision rate."""

    usage: tuple[float, ...]
    perplexity: tuple[float, ...]
    collision_rate: float


def code_statistics(codes: np.ndarray, codebook_sizes: Sequence[int]) -> CodeStatistics:
    """Usage and perplexity per level, and the collision rate of whole tuples.

    Perplexity is exp of the entropy of a level's code frequencies (the number of equally
    used codes with the same entropy). The collision rate is the share of items that need
    a non-zero disambiguation token: 1 - distinct tuples / items.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2 or codes.shape[1] != len(codebook_sizes) or codes.shape[0] == 0:
        raise ValueError(f"codes must be (items, {len(codebook_sizes)}), not {codes.shape}")
    usage, perplexity = [], []
    for level, size in enumerate(codebook_sizes):
        counts = np.bincount(codes[:, level], minlength=size)
        if len(counts) > size:
            raise ValueError(f"level {level} has a code >= its codebook size {size}")
        shares = counts[counts > 0] / len(codes)
        usage.append(float((counts > 0).sum() / size))
        perplexity.append(float(np.exp(-(shares * np.log(shares)).sum())))
    distinct = len(np.unique(codes, axis=0))
    return CodeStatistics(tuple(usage), tuple(perplexity), 1.0 - distinct / len(codes))


def disambiguated(codes: np.ndarray, taken: np.ndarray | None = None) -> np.ndarray:
    """`codes` with a last column that numbers the items sharing a tuple (0, 1, 2, ...).

    `taken`, already disambiguated tuples (levels + 1 columns), are counted first, so
    new items extend an existing catalog without reusing a tuple.
    """
    codes = np.asarray(codes, dtype=np.int64)
    next_free: dict[tuple[int, ...], int] = {}
    if taken is not None:
        for row in np.asarray(taken, dtype=np.int64):
            key = tuple(row[:-1].tolist())
            next_free[key] = max(next_free.get(key, 0), int(row[-1]) + 1)
    tokens = np.zeros(len(codes), dtype=np.int64)
    for index, row in enumerate(codes):
        key = tuple(row.tolist())
        tokens[index] = next_free.get(key, 0)
        next_free[key] = tokens[index] + 1
    return np.column_stack([codes, tokens])


def residual_kmeans(
    embeddings: np.ndarray, codebook_sizes: Sequence[int], seed: int = 0
) -> list[np.ndarray]:
    """Codebooks of residual k-means in input space: level l clusters level l-1's residual."""
    from sklearn.cluster import KMeans

    residual = _checked(embeddings).astype(np.float64)
    codebooks = []
    for size in codebook_sizes:
        kmeans = KMeans(n_clusters=min(size, len(residual)), n_init=1, random_state=seed)
        labels = kmeans.fit_predict(residual)
        codebooks.append(kmeans.cluster_centers_)
        residual = residual - kmeans.cluster_centers_[labels]
    return codebooks


def residual_kmeans_reconstruction(
    embeddings: np.ndarray, codebooks: Sequence[np.ndarray]
) -> np.ndarray:
    """The sum of the nearest centroid of each level, applied greedily to the residual."""
    residual = _checked(embeddings).astype(np.float64)
    for centroids in codebooks:
        distances = (
            (residual**2).sum(axis=1, keepdims=True)
            - 2 * residual @ centroids.T
            + (centroids**2).sum(axis=1)
        )
        residual = residual - centroids[distances.argmin(axis=1)]
    return np.asarray(embeddings, dtype=np.float64) - residual


def mean_squared_error(embeddings: np.ndarray, reconstruction: np.ndarray) -> float:
    """Mean over items and dimensions of the squared reconstruction error."""
    return float(np.mean((np.asarray(embeddings) - np.asarray(reconstruction)) ** 2))


def item_squared_errors(embeddings: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """Per item (row), the mean over dimensions of the squared reconstruction error."""
    difference = np.asarray(embeddings, dtype=np.float64) - np.asarray(reconstruction)
    return np.asarray(np.mean(difference**2, axis=1))


def network_state(network: RQVAE) -> Mapping[str, np.ndarray]:
    """The network's weights and codebook buffers as numpy arrays."""
    return {name: value.detach().cpu().numpy() for name, value in network.state_dict().items()}
