"""TIGER-style generative retrieval (Rajput et al., 2023) over semantic-ID tokens.

Items are code tuples from `SemanticIDs` (residual VQ levels plus a disambiguation
token), fitted on the train part inside `fit` unless `given_codes` is set. A visitor's
last `max_length` items become `max_length x depth` tokens, and a small causal
transformer (`code_transformer`) predicts the next item's tokens one level at a time:
trained with cross-entropy of every token of every next item in the train windows (each
level's softmax over that level's codes only), AdamW, early stopping on validation
NDCG@10, seeded, on CUDA when present.

Ranking decodes with beam search over the trie of the catalog's tuples (`prefix_trie`),
so only real items come out; `recommend` leaves the excluded items out of the trie, so
no beam is spent on them (the validation during training leaves out train items). Items
that survive to the last level score their joint log-probability, the others their
deepest prefix's, a tier lower per missing level (see `prefix_trie.TIER_GAP`).
"""

from collections.abc import Callable, Mapping

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ml.algorithms.base import HyperValue, Recommender, mask_items, top_k
from ml.algorithms.code_transformer import PAD, CodeTransformer, TokenLayout
from ml.algorithms.fold_in import History, history_of
from ml.algorithms.prefix_trie import PrefixTrie, beam_search, prefix_trie
from ml.algorithms.sequences import (
    Sequences,
    ordered_history,
    padded,
    padded_batch,
    shuffled_batches,
    train_sequences,
    training_windows,
)
from ml.algorithms.torch_training import (
    EpochCallback,
    RankingValidator,
    TrainingReport,
    adamw,
    clipped_step,
    load_state_arrays,
    resolve_device,
    seeded,
    state_arrays,
    train_epochs,
)
from ml.data.dataset import InteractionData

NETWORK_PREFIX = "network."
GRADIENT_CLIP = 5.0
IGNORE = -100
# Users decoded at once: the beams of a batch share the history keys, not copies of them.
DECODE_USERS = 128


class TIGER(Recommender):
    """Autoregressive next-item generation of semantic-ID tokens with trie-constrained beams."""

    name = "tiger"
    uses_seed = True
    needs_data = True

    def __init__(
        self,
        levels: int = 3,
        codebook_size: int = 256,
        semantic_dim: int = 64,
        quantizer_epochs: int = 1000,
        dim: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.1,
        max_length: int = 20,
        beam: int = 50,
        learning_rate: float = 2e-3,
        weight_decay: float = 0.01,
        epochs: int = 100,
        patience: int = 5,
        batch_size: int = 64,
        device: str = "auto",
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        super().__init__()
        if min(levels, codebook_size, dim, layers, heads, max_length, beam) < 1 or dim % heads:
            raise ValueError(
                "levels, codebook_size, dim, layers, heads, max_length and beam must be "
                f"positive and heads must divide dim: got dim={dim}, heads={heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {dropout}")
        self.levels, self.codebook_size = levels, codebook_size
        self.semantic_dim, self.quantizer_epochs = semantic_dim, quantizer_epochs
        self.dim, self.layers, self.heads, self.dropout = dim, layers, heads, dropout
        self.max_length, self.beam = max_length, beam
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.epochs, self.patience, self.batch_size = epochs, patience, batch_size
        self.device, self.seed, self.progress = device, seed, progress
        # Not hyper-parameters: codes to use instead of fitting SemanticIDs (items x
        # (levels + 1), distinct rows), and a callable to follow training.
        self.given_codes: np.ndarray | None = None
        self.on_epoch: EpochCallback | None = None
        self.report: TrainingReport | None = None
        self.codes = np.zeros((0, levels + 1), dtype=np.int64)
        self.sequences = Sequences(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64))
        self.network: CodeTransformer | None = None
        self._trie: PrefixTrie | None = None

    @property
    def hyperparameters(self) -> dict[str, HyperValue]:
        """Code shape and quantizer, network, decoding and training settings."""
        return {
            "levels": self.levels,
            "codebook_size": self.codebook_size,
            "semantic_dim": self.semantic_dim,
            "quantizer_epochs": self.quantizer_epochs,
            "dim": self.dim,
            "layers": self.layers,
            "heads": self.heads,
            "dropout": self.dropout,
            "max_length": self.max_length,
            "beam": self.beam,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "epochs": self.epochs,
            "patience": self.patience,
            "batch_size": self.batch_size,
            "device": self.device,
            "seed": self.seed,
            "progress": self.progress,
        }

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        self.sequences = train_sequences(data, train)
        self._set_codes(self._fitted_codes(train, data))
        windows = self._training_windows()
        device = resolve_device(self.device)
        with seeded(self.seed, device) as rng:
            network = self.network = self._network().to(device)
            self.report = train_epochs(
                network,
                self._epoch_runner(network, windows, rng),
                epochs=self.epochs,
                validate=self._validation(train, valid, device),
                patience=self.patience,
                progress=self.progress,
                on_epoch=self.on_epoch,
            )

    def _fitted_codes(self, train: sp.csr_matrix, data: InteractionData | None) -> np.ndarray:
        """`given_codes`, or the codes of SemanticIDs fitted on the train part."""
        if self.given_codes is not None:
            return np.asarray(self.given_codes, dtype=np.int64)
        from ml.algorithms.semantic_ids import SemanticIDs

        semantic = SemanticIDs(
            levels=self.levels,
            codebook_size=self.codebook_size,
            content_dim=self.semantic_dim,
            collab_dim=self.semantic_dim,
            epochs=self.quantizer_epochs,
            device=self.device,
            seed=self.seed,
            progress=self.progress,
        )
        return semantic.fit(train, data=data).codes

    def _set_codes(self, codes: np.ndarray) -> None:
        if codes.shape != (self.n_items, self.levels + 1):
            raise ValueError(
                f"codes must be (items, levels + 1) = {(self.n_items, self.levels + 1)}, "
                f"not {codes.shape}"
            )
        if codes[:, : self.levels].max(initial=0) >= self.codebook_size:
            raise ValueError(f"codes must be below codebook_size {self.codebook_size}")
        self._trie = prefix_trie(codes)
        self.codes = codes

    @property
    def layout(self) -> TokenLayout:
        """Token ranges of the code levels: `codebook_size` each, then the disambiguation."""
        extra = int(self.codes[:, -1].max(initial=0)) + 1
        return TokenLayout((self.codebook_size,) * self.levels + (extra,))

    def _network(self) -> CodeTransformer:
        return CodeTransformer(
            self.layout, self.dim, self.layers, self.heads, self.max_length + 1, self.dropout
        )

    def _training_windows(self) -> np.ndarray:
        """Padded item tokens (item + 1) of windows of max_length + 1 items.

        Windows end at each user's last item and step back by `max_length`, so each
        item but a user's first is predicted once.
        """
        inputs, targets = training_windows(self.sequences, self.max_length)
        return np.concatenate([inputs, targets[:, -1:] + 1], axis=1)

    def _token_targets(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flattened input tokens and per-token target codes (IGNORE where not trained).

        A token is a target when its item and the item before it are real items.
        """
        network = self._fitted_network()
        depth = network.layout.depth
        item_tokens = torch.from_numpy(network.layout.item_tokens(self.codes))
        tokens = item_tokens.to(windows.device)[windows].flatten(1)
        trained = (windows[:, 1:] != PAD) & (windows[:, :-1] != PAD)
        codes = torch.from_numpy(self.codes).to(windows.device)[(windows - 1).clamp(min=0)]
        targets = codes[:, 1:].masked_fill(~trained[..., None], IGNORE).flatten(1)
        # Token p predicts token p + 1; the first item's own tokens are not targets.
        return tokens[:, :-1], torch.cat(
            [targets.new_full((len(targets), depth - 1), IGNORE), targets], 1
        )

    def _loss(self, network: CodeTransformer, windows: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the target tokens, each level over its own codes."""
        inputs, targets = self._token_targets(windows)
        states, _ = network.hidden(inputs)
        depth = network.layout.depth
        total, count = states.new_zeros(()), 0
        for level in range(depth):
            # Position p predicts the token at p + 1, of level (p + 1) % depth.
            columns = torch.arange((level - 1) % depth, inputs.shape[1], depth)
            level_targets = targets[:, columns]
            known = level_targets != IGNORE
            logits = network.level_logits(states[:, columns][known], level)
            total = total + F.cross_entropy(logits, level_targets[known], reduction="sum")
            count += int(known.sum())
        return total / max(count, 1)

    def _epoch_runner(
        self, network: CodeTransformer, windows: np.ndarray, rng: np.random.Generator
    ) -> Callable[[int], float]:
        optimizer = adamw(network.parameters(), self.learning_rate, self.weight_decay)
        device = next(network.parameters()).device
        all_windows = torch.from_numpy(windows).to(device)

        def run_epoch(epoch: int) -> float:
            losses = []
            for batch in shuffled_batches(len(windows), self.batch_size, rng):
                loss = self._loss(network, all_windows[torch.from_numpy(batch).to(device)])
                losses.append(clipped_step(network, optimizer, loss, GRADIENT_CLIP))
            return float(np.mean(losses))

        return run_epoch

    def _validation(
        self, train: sp.csr_matrix, valid: sp.csr_matrix | None, device: torch.device
    ) -> Callable[[], float] | None:
        """NDCG@10 on `valid` of the current weights (train items left out of the beams)."""
        if valid is None:
            return None
        validator = RankingValidator(train, valid, device)

        def score(users: np.ndarray) -> torch.Tensor:
            histories = padded_batch(self.sequences, users, self.max_length)
            return self._decode(histories, self._seen(users))

        return lambda: validator(score)

    def _seen(self, users: np.ndarray) -> np.ndarray:
        """(users, items) bool: the users' train items."""
        seen = np.zeros((len(users), self.n_items), dtype=bool)
        for row, user in enumerate(users):
            seen[row, self.sequences.of(int(user))] = True
        return seen

    def _fitted_network(self) -> CodeTransformer:
        if self.network is None:
            raise RuntimeError(f"the {self.name} model is not fitted")
        return self.network

    def _decode(self, histories: np.ndarray, excluded: np.ndarray | None) -> torch.Tensor:
        """Beam-search scores (rows, items) of padded item-token histories, in batches."""
        parts = [
            self._decode_batch(
                histories[start : start + DECODE_USERS],
                None if excluded is None else excluded[start : start + DECODE_USERS],
            )
            for start in range(0, len(histories), DECODE_USERS)
        ]
        if not parts:
            return torch.zeros((0, self.n_items))
        return torch.cat(parts)

    def _decode_batch(self, histories: np.ndarray, excluded: np.ndarray | None) -> torch.Tensor:
        network = self._fitted_network()
        if self._trie is None:
            raise RuntimeError(f"the {self.name} model is not fitted")
        device = next(network.parameters()).device
        item_tokens = torch.from_numpy(network.layout.item_tokens(self.codes)).to(device)
        tokens = item_tokens[torch.from_numpy(histories).to(device)].flatten(1)
        offsets = torch.from_numpy(network.layout.offsets).to(device)
        allowed = torch.ones((len(histories), self.n_items), dtype=torch.bool, device=device)
        if excluded is not None:
            allowed &= ~torch.from_numpy(excluded).to(device)
        with torch.no_grad():
            cache = network.encode_history(tokens)

            def step(level: int, prefixes: torch.Tensor) -> torch.Tensor:
                users, beams, _ = prefixes.shape
                if level == 0:
                    states = cache.states[:, -1:]
                else:
                    generated = (prefixes + offsets[:level]).reshape(users * beams, level)
                    hidden, _ = network.hidden(generated, tokens.shape[1], cache, beams)
                    states = hidden[:, -1].reshape(users, beams, -1)
                return torch.log_softmax(network.level_logits(states, level).float(), dim=-1)

            return beam_search(self._trie, step, allowed, self.beam).scores

    def score(self, users: np.ndarray) -> np.ndarray:
        """Beam-search scores after each user's train sequence (no item left out)."""
        users = np.asarray(users, dtype=np.int64)
        self._fitted_network().eval()
        histories = padded_batch(self.sequences, users, self.max_length)
        return self._decode(histories, None).cpu().numpy().astype(np.float32, copy=False)

    def recommend(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-k items per user; excluded items are removed from the trie before decoding."""
        users = np.asarray(users, dtype=np.int64)
        self._fitted_network().eval()
        histories = padded_batch(self.sequences, users, self.max_length)
        rows = None if exclude is None else sp.csr_matrix(exclude[users])
        excluded = None if rows is None else rows.toarray() > 0
        scores = self._decode(histories, excluded).cpu().numpy().astype(np.float32)
        if rows is not None:
            mask_items(scores, rows)
        return top_k(scores, k)

    def score_history(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Beam-search scores after the visitor's items in the order given (latest last).

        Validated as `Recommender.score_history`; items of weight 0 are left out, other
        weights are not used, and the history's items are not left out of the beams.
        """
        history_of(items, weights, self.n_items)
        self._fitted_network().eval()
        tokens = padded(ordered_history(items, weights), self.max_length)[None, :]
        return self._decode(tokens, None)[0].cpu().numpy().astype(np.float32, copy=False)

    def _score_history(self, history: History) -> np.ndarray:
        """Scores of a history whose order is lost (ascending ids); `score_history` keeps it."""
        return self.score_history(history.items)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **state_arrays(self._fitted_network(), NETWORK_PREFIX),
            "codes": self.codes,
            "sequence_items": self.sequences.items,
            "sequence_offsets": self.sequences.offsets,
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.sequences = Sequences(arrays["sequence_items"], arrays["sequence_offsets"])
        self._set_codes(np.asarray(arrays["codes"], dtype=np.int64))
        network = self._network()
        load_state_arrays(network, arrays, NETWORK_PREFIX)
        self.network = network.eval()
