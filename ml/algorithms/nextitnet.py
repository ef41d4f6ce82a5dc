"""NextItNet-style next-item model (Yuan et al., 2019) with WaveNet's gated residual blocks.

Stacked dilated causal 1-D convolutions over the item embeddings, dilations 1, 2, 4, 8
repeated (`blocks` of them), each block computing tanh(W_f * x) ⊙ sigmoid(W_g * x) and
feeding a 1x1 residual projection (added to its input) and a 1x1 skip projection (summed
over blocks, as in WaveNet). The summed skips, through ReLU and layer norm, are the
per-position states scored against the tied item embeddings: the next item is predicted
at every position with a full softmax.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ml.algorithms.base import HyperValue
from ml.algorithms.sequential import NextItemNetwork, SequentialRecommender

DILATIONS = (1, 2, 4, 8)


class GatedCausalBlock(nn.Module):
    """One dilated causal convolution with a gated activation, residual and skip outputs."""

    def __init__(self, dim: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.left_padding = (kernel_size - 1) * dilation
        # One convolution yields both the filter and the gate halves.
        self.convolution = nn.Conv1d(dim, 2 * dim, kernel_size, dilation=dilation)
        self.residual = nn.Conv1d(dim, dim, 1)
        self.skip = nn.Conv1d(dim, dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, d, L) in; the block's output (input + residual) and its skip, both (B, d, L)."""
        # Padding on the left only keeps every output from seeing later positions.
        filtered, gate = self.convolution(F.pad(x, (self.left_padding, 0))).chunk(2, dim=1)
        activation = self.dropout(torch.tanh(filtered) * torch.sigmoid(gate))
        return x + self.residual(activation), self.skip(activation)


class NextItNetNetwork(NextItemNetwork):
    """Embedding, `blocks` gated causal blocks with cycling dilations, skip-sum head."""

    def __init__(
        self, n_items: int, dim: int, blocks: int, kernel_size: int, dropout: float
    ) -> None:
        super().__init__(n_items, dim)
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            GatedCausalBlock(dim, kernel_size, DILATIONS[index % len(DILATIONS)], dropout)
            for index in range(blocks)
        )
        self.norm = nn.LayerNorm(dim)

    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-position states (B, L, d) from the sum of the blocks' skip outputs."""
        x = self.input_dropout(self.embedding(tokens)).transpose(1, 2)
        skips = torch.zeros_like(x)
        for block in self.blocks:
            x, skip = block(x)
            skips = skips + skip
        return self.norm(F.relu(skips).transpose(1, 2))


class NextItNet(SequentialRecommender):
    """Dilated causal convolutions over the visitor's time-ordered items."""

    name = "nextitnet"

    def __init__(
        self,
        dim: int = 64,
        blocks: int = 4,
        kernel_size: int = 3,
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
        if blocks < 1 or kernel_size < 2:
            raise ValueError(
                f"blocks must be at least 1 and kernel_size at least 2: got "
                f"blocks={blocks}, kernel_size={kernel_size}"
            )
        self.blocks, self.kernel_size = blocks, kernel_size

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Blocks and kernel size, then the shared sequence and training settings."""
        return {
            "blocks": self.blocks,
            "kernel_size": self.kernel_size,
            **self._training_hyperparameters(),
        }

    def _network(self, n_items: int) -> NextItNetNetwork:
        return NextItNetNetwork(n_items, self.dim, self.blocks, self.kernel_size, self.dropout)
