"""SASRec-style next-item model (Kang & McAuley, 2018): causal self-attention over items.

Item embeddings (scaled by sqrt(d)) plus learned position embeddings, dropout, then
pre-norm transformer blocks whose attention sees only the same and earlier positions
and never a padding position (other than a padding query's own, so no row is empty);
a final layer norm gives the per-position states scored against the tied item embeddings.
"""

import torch
from torch import nn

from ml.algorithms.base import HyperValue
from ml.algorithms.sequences import PAD
from ml.algorithms.sequential import NextItemNetwork, SequentialRecommender


class SASRecNetwork(NextItemNetwork):
    """Embeddings with learned positions, `layers` causal pre-norm transformer blocks."""

    def __init__(
        self, n_items: int, dim: int, layers: int, heads: int, max_length: int, dropout: float
    ) -> None:
        super().__init__(n_items, dim)
        self.heads = heads
        self.positions = nn.Embedding(max_length, dim)
        self.input_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-position states (B, L, d); the causal mask lets position t see 0..t only."""
        length = tokens.shape[1]
        if length > self.positions.num_embeddings:
            raise ValueError(
                f"sequences of {length} tokens exceed max_length {self.positions.num_embeddings}"
            )
        # Positions count back from the most recent item, which is always the last one.
        offsets = torch.arange(
            self.positions.num_embeddings - length, self.positions.num_embeddings
        )
        x = self.embedding(tokens) * self.embedding.embedding_dim**0.5
        x = self.input_dropout(x + self.positions(offsets.to(tokens.device)))
        return self.norm(self.encoder(x, mask=self._attention_mask(tokens)))

    def _attention_mask(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B·heads, L, L) additive mask: -inf on later keys and on padding keys."""
        length = tokens.shape[1]
        eye = torch.eye(length, dtype=torch.bool, device=tokens.device)
        later = torch.triu(torch.ones_like(eye), diagonal=1)
        padding_key = (tokens == PAD)[:, None, :] & ~eye
        blocked = later | padding_key
        mask = torch.zeros(blocked.shape, device=tokens.device).masked_fill(blocked, -torch.inf)
        return mask.repeat_interleave(self.heads, dim=0)


class SASRec(SequentialRecommender):
    """Causal self-attention over the visitor's time-ordered items."""

    name = "sasrec"

    def __init__(
        self,
        dim: int = 64,
        layers: int = 2,
        heads: int = 1,
        dropout: float = 0.2,
        max_length: int = 50,
        learning_rate: float = 2e-3,
        weight_decay: float = 0.01,
        epochs: int = 100,
        patience: int = 5,
        batch_size: int = 32,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        super().__init__(
            max_length=max_length,
            dim=dim,
            dropout=dropout,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            epochs=epochs,
            patience=patience,
            batch_size=batch_size,
            device=device,
            seed=seed,
            progress=progress,
        )
        if layers < 1 or heads < 1 or dim % heads:
            raise ValueError(
                f"layers and heads must be positive and divide dim: got layers={layers}, "
                f"heads={heads}, dim={dim}"
            )
        self.layers, self.heads = layers, heads

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Layers and heads, then the shared sequence and training settings."""
        return {"layers": self.layers, "heads": self.heads, **self._training_hyperparameters()}

    def _network(self, n_items: int) -> SASRecNetwork:
        return SASRecNetwork(
            n_items, self.dim, self.layers, self.heads, self.max_length, self.dropout
        )
