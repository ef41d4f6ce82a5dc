"""A small causal transformer over semantic-ID tokens, with cached history keys for decoding.

An item is `depth` tokens, one per code level (the last level being the disambiguation
token); level `l`'s code `c` is token `offsets[l] + c`, and token `PAD` (0) is a padded
item. A window of `slots` items is flattened to `slots * depth` tokens, left-padded so
the last slot is always the item to predict; each token is embedded as its token, its
item slot and its level. Attention is causal over the flattened tokens and never reads a
padding key (other than a padding query's own, so no row is empty).

For beam search the history is encoded once (`encode_history`) and its per-layer keys
and values are shared by all the beams of a user: beams are folded into the query axis
(`groups`), so the history is never copied per beam.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

PAD = 0
FEEDFORWARD_RATIO = 2


@dataclass(frozen=True)
class TokenLayout:
    """Sizes of each code level; level `l`'s code `c` is token `offsets[l] + c`."""

    level_sizes: tuple[int, ...]

    @property
    def depth(self) -> int:
        """Tokens per item."""
        return len(self.level_sizes)

    @property
    def offsets(self) -> np.ndarray:
        """The first token of each level (token 0 is padding)."""
        return 1 + np.concatenate(([0], np.cumsum(self.level_sizes)[:-1])).astype(np.int64)

    @property
    def vocabulary(self) -> int:
        """Number of distinct tokens, padding included."""
        return 1 + sum(self.level_sizes)

    def item_tokens(self, codes: np.ndarray) -> np.ndarray:
        """Tokens of padded items: row 0 is all `PAD`, row `i + 1` item `i`'s tokens."""
        tokens = np.asarray(codes, dtype=np.int64) + self.offsets
        return np.vstack([np.full((1, self.depth), PAD, dtype=np.int64), tokens])


@dataclass(frozen=True)
class HistoryCache:
    """Per-layer keys and values of encoded histories, which keys are real, final states."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    readable: torch.Tensor
    states: torch.Tensor


class CachedAttention(nn.Module):
    """Multi-head self-attention that may also read cached keys shared by groups of rows."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.projection = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        allowed: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        groups: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Attended x, and x's own keys and values (N, heads, T, dh).

        `allowed` (N, T, T) says which of the new keys each query reads; `past` holds
        (keys, values, readable) for N / groups rows, row `n` of x using past row
        `n // groups`.
        """
        rows, length, dim = x.shape
        q, k, v = (
            part.reshape(rows, length, self.heads, -1).transpose(1, 2)
            for part in self.qkv(x).split(dim, dim=2)
        )
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = (q @ k.transpose(-1, -2)) * scale
        scores = scores.masked_fill(~allowed[:, None], -math.inf)
        if past is None:
            weights = self.dropout(torch.softmax(scores, dim=-1))
            out = weights @ v
        else:
            out = self._with_past(q, scores, v, past, groups, scale)
        out = out.transpose(1, 2).reshape(rows, length, dim)
        return self.projection(out), k, v

    def _with_past(
        self,
        q: torch.Tensor,
        scores: torch.Tensor,
        v: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        groups: int,
        scale: float,
    ) -> torch.Tensor:
        """Attention over the cached keys and the new ones, beams folded into queries."""
        past_keys, past_values, readable = past
        users, _, past_length, _ = past_keys.shape
        length = q.shape[2]
        folded = _fold(q, users, groups)
        past_scores = _unfold(folded @ past_keys.transpose(-1, -2), groups, length) * scale
        blocked = ~readable.repeat_interleave(groups, dim=0)[:, None, None, :]
        past_scores = past_scores.masked_fill(blocked, -math.inf)
        weights = self.dropout(torch.softmax(torch.cat([past_scores, scores], dim=-1), dim=-1))
        past_weights = _fold(weights[..., :past_length], users, groups)
        from_past = _unfold(past_weights @ past_values, groups, length)
        return from_past + weights[..., past_length:] @ v


def _fold(x: torch.Tensor, users: int, groups: int) -> torch.Tensor:
    """(users * groups, heads, T, e) to (users, heads, groups * T, e)."""
    _, heads, length, width = x.shape
    return (
        x.reshape(users, groups, heads, length, width)
        .transpose(1, 2)
        .reshape(users, heads, groups * length, width)
    )


def _unfold(x: torch.Tensor, groups: int, length: int) -> torch.Tensor:
    """(users, heads, groups * T, e) back to (users * groups, heads, T, e)."""
    users, heads, _, width = x.shape
    return (
        x.reshape(users, heads, groups, length, width)
        .transpose(1, 2)
        .reshape(users * groups, heads, length, width)
    )


class Block(nn.Module):
    """Pre-norm transformer block: cached causal attention, then a GELU feed-forward."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = CachedAttention(dim, heads, dropout)
        self.feedforward_norm = nn.LayerNorm(dim)
        self.feedforward = nn.Sequential(
            nn.Linear(dim, FEEDFORWARD_RATIO * dim),
            nn.GELU(),
            nn.Linear(FEEDFORWARD_RATIO * dim, dim),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        allowed: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        groups: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The block's output and its attention keys and values of x."""
        attended, keys, values = self.attention(self.attention_norm(x), allowed, past, groups)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.feedforward(self.feedforward_norm(x)))
        return x, keys, values


class CodeTransformer(nn.Module):
    """Token, slot and level embeddings, causal blocks, a tied per-level output layer."""

    def __init__(
        self, layout: TokenLayout, dim: int, layers: int, heads: int, slots: int, dropout: float
    ) -> None:
        super().__init__()
        self.layout = layout
        self.slots = slots
        self.token = nn.Embedding(layout.vocabulary, dim, padding_idx=PAD)
        self.slot = nn.Embedding(slots, dim)
        self.level = nn.Embedding(layout.depth, dim)
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.output_bias = nn.Parameter(torch.zeros(layout.vocabulary))
        nn.init.normal_(self.token.weight, std=dim**-0.5)
        with torch.no_grad():
            self.token.weight[PAD].zero_()
        self.register_buffer("offsets", torch.from_numpy(layout.offsets), persistent=False)

    @property
    def window(self) -> int:
        """Tokens of a full window (history slots and the predicted item)."""
        return self.slots * self.layout.depth

    def hidden(
        self,
        tokens: torch.Tensor,
        start: int = 0,
        past: HistoryCache | None = None,
        groups: int = 1,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """States (N, T, d) of tokens at window positions start.., and each layer's keys.

        Position t depends on tokens[:, : t + 1] (and on `past`, read by row n // groups).
        """
        length = tokens.shape[1]
        if start + length > self.window:
            raise ValueError(f"{start + length} tokens exceed the window of {self.window}")
        positions = torch.arange(start, start + length, device=tokens.device)
        depth = self.layout.depth
        x = self.token(tokens) + self.slot(positions // depth) + self.level(positions % depth)
        x = self.input_dropout(x)
        allowed = _causal_readable(tokens)
        layer_keys = []
        for index, block in enumerate(self.blocks):
            cached = None
            if past is not None:
                cached = (past.keys[index], past.values[index], past.readable)
            x, keys, values = block(x, allowed, cached, groups)
            layer_keys.append((keys, values))
        return self.norm(x), layer_keys

    def encode_history(self, tokens: torch.Tensor) -> HistoryCache:
        """Keys and values of history tokens (window positions 0..T-1), for decoding."""
        states, layer_keys = self.hidden(tokens)
        return HistoryCache(
            keys=tuple(keys for keys, _ in layer_keys),
            values=tuple(values for _, values in layer_keys),
            readable=tokens != PAD,
            states=states,
        )

    def level_logits(self, states: torch.Tensor, level: int) -> torch.Tensor:
        """Scores (..., level size) of the codes of `level` for states (..., d)."""
        first = int(self.layout.offsets[level])
        end = first + self.layout.level_sizes[level]
        return states @ self.token.weight[first:end].T + self.output_bias[first:end]


def _causal_readable(tokens: torch.Tensor) -> torch.Tensor:
    """(N, T, T): query t reads key s <= t unless s is padding; it always reads itself."""
    length = tokens.shape[1]
    eye = torch.eye(length, dtype=torch.bool, device=tokens.device)
    earlier = torch.tril(torch.ones_like(eye))
    return (earlier & (tokens != PAD)[:, None, :]) | eye
