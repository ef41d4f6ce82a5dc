"""Next-item models over time-ordered histories: the torch plumbing NextItNet and SASRec share.

A network maps padded item tokens (B, L) to one hidden vector per position (B, L, d) that
may only depend on that position and earlier ones (causal); item scores at a position are
the hidden vector times the (tied) item embeddings plus a per-item bias. Training is
full-softmax cross-entropy of the next item at every position of the users' train
sequences, with AdamW and early stopping on validation NDCG@10 (the validation item
ranked from the train sequence, train items masked), seeded, on CUDA when present.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ml.algorithms.base import HyperValue, Recommender
from ml.algorithms.fold_in import History, history_of
from ml.algorithms.sequences import (
    IGNORE,
    PAD,
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
    score_in_batches,
    seeded,
    state_arrays,
    train_epochs,
)
from ml.data.dataset import InteractionData

NETWORK_PREFIX = "network."
GRADIENT_CLIP = 5.0


class NextItemNetwork(nn.Module, ABC):
    """Item embedding (token 0 = padding), a causal body and a tied output layer."""

    def __init__(self, n_items: int, dim: int) -> None:
        super().__init__()
        self.n_items = n_items
        self.embedding = nn.Embedding(n_items + 1, dim, padding_idx=PAD)
        self.output_bias = nn.Parameter(torch.zeros(n_items))
        nn.init.normal_(self.embedding.weight, std=dim**-0.5)
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()

    @abstractmethod
    def hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L, d) states; position t depends on tokens[:, : t + 1] only."""

    def item_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Scores of every item for states of shape (..., d): shape (..., n_items)."""
        return states @ self.embedding.weight[1:].T + self.output_bias


class SequentialRecommender(Recommender):
    """Scores a user by the next-item prediction at the end of their train sequence."""

    uses_seed = True
    needs_data = True

    def __init__(
        self,
        *,
        max_length: int,
        dim: int,
        dropout: float,
        learning_rate: float,
        weight_decay: float,
        epochs: int,
        patience: int,
        batch_size: int,
        device: str,
        seed: int,
        progress: bool,
    ) -> None:
        super().__init__()
        if max_length < 1 or dim < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"max_length and dim must be positive and dropout in [0, 1): got "
                f"max_length={max_length}, dim={dim}, dropout={dropout}"
            )
        self.max_length, self.dim, self.dropout = max_length, dim, dropout
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.epochs, self.patience, self.batch_size = epochs, patience, batch_size
        self.device, self.seed, self.progress = device, seed, progress
        # A callable, not a hyper-parameter: set it to follow training (e.g. from a task).
        self.on_epoch: EpochCallback | None = None
        self.report: TrainingReport | None = None
        self.sequences = Sequences(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64))
        self.network: NextItemNetwork | None = None

    def _training_hyperparameters(self) -> dict[str, HyperValue]:
        """Sequence length, width, dropout, AdamW, epochs, batch, device, seed, progress."""
        return {
            "max_length": self.max_length,
            "dim": self.dim,
            "dropout": self.dropout,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "epochs": self.epochs,
            "patience": self.patience,
            "batch_size": self.batch_size,
            "device": self.device,
            "seed": self.seed,
            "progress": self.progress,
        }

    @abstractmethod
    def _network(self, n_items: int) -> NextItemNetwork:
        """A freshly initialised network for `n_items` items."""

    def _fit(
        self, train: sp.csr_matrix, *, data: InteractionData | None, valid: sp.csr_matrix | None
    ) -> None:
        self.sequences = train_sequences(data, train)
        inputs, targets = training_windows(self.sequences, self.max_length)
        device = resolve_device(self.device)
        with seeded(self.seed, device) as rng:
            network = self.network = self._network(self.n_items).to(device)
            self.report = train_epochs(
                network,
                self._epoch_runner(network, inputs, targets, rng),
                epochs=self.epochs,
                validate=self._validation(train, valid, device),
                patience=self.patience,
                progress=self.progress,
                on_epoch=self.on_epoch,
            )

    def _epoch_runner(
        self,
        network: NextItemNetwork,
        inputs: np.ndarray,
        targets: np.ndarray,
        rng: np.random.Generator,
    ) -> Callable[[int], float]:
        optimizer = adamw(network.parameters(), self.learning_rate, self.weight_decay)
        device = next(network.parameters()).device
        all_inputs = torch.from_numpy(inputs).to(device)
        all_targets = torch.from_numpy(targets).to(device)

        def run_epoch(epoch: int) -> float:
            losses = []
            for batch in shuffled_batches(len(inputs), self.batch_size, rng):
                index = torch.from_numpy(batch).to(device)
                batch_targets = all_targets[index]
                known = batch_targets != IGNORE
                # Only positions with a target reach the (n_items-wide) output layer.
                states = network.hidden(all_inputs[index])[known]
                loss = F.cross_entropy(network.item_logits(states), batch_targets[known])
                losses.append(clipped_step(network, optimizer, loss, GRADIENT_CLIP))
            return float(np.mean(losses))

        return run_epoch

    def _validation(
        self, train: sp.csr_matrix, valid: sp.csr_matrix | None, device: torch.device
    ) -> Callable[[], float] | None:
        """NDCG@10 on `valid` of the current weights, or None to train without stopping."""
        if valid is None:
            return None
        validator = RankingValidator(train, valid, device)
        return lambda: validator(self._score_tensor)

    def _fitted_network(self) -> NextItemNetwork:
        if self.network is None:
            raise RuntimeError(f"the {self.name} model is not fitted")
        return self.network

    def _last_states(self, tokens: np.ndarray) -> torch.Tensor:
        """The last position's state of each row of padded tokens, without gradients."""
        network = self._fitted_network()
        device = next(network.parameters()).device
        with torch.no_grad():
            return network.hidden(torch.from_numpy(tokens).to(device))[:, -1]

    def _score_tensor(self, users: np.ndarray) -> torch.Tensor:
        tokens = padded_batch(self.sequences, users, self.max_length)
        network = self._fitted_network()
        return network.item_logits(self._last_states(tokens))

    def score(self, users: np.ndarray) -> np.ndarray:
        """Next-item scores after each user's train sequence (its last `max_length` items)."""
        self._fitted_network().eval()
        return score_in_batches(self._score_tensor, users)

    def position_scores(self, tokens: np.ndarray) -> np.ndarray:
        """Next-item scores at every position of padded token rows: (B, L, n_items)."""
        network = self._fitted_network().eval()
        device = next(network.parameters()).device
        with torch.no_grad():
            states = network.hidden(torch.from_numpy(np.asarray(tokens, np.int64)).to(device))
            return network.item_logits(states).float().cpu().numpy()

    def score_history(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Next-item scores after the visitor's items, in the order given (most recent last).

        Validated as `Recommender.score_history`; order matters and repeats count as
        repeated events; items of weight 0 are left out, other weights are not used.
        """
        history_of(items, weights, self.n_items)
        tokens = padded(ordered_history(items, weights), self.max_length)[None, :]
        network = self._fitted_network().eval()
        with torch.no_grad():
            scores = network.item_logits(self._last_states(tokens))
        return scores[0].float().cpu().numpy().astype(np.float32, copy=False)

    def _score_history(self, history: History) -> np.ndarray:
        """Scores of a history whose order is lost (ascending ids); `score_history` keeps it."""
        return self.score_history(history.items)

    def item_vectors(self) -> np.ndarray:
        """The item embeddings with the output bias as a last column (new float32 array)."""
        network = self._fitted_network()
        with torch.no_grad():
            vectors = torch.cat([network.embedding.weight[1:], network.output_bias[:, None]], 1)
        return np.ascontiguousarray(vectors.float().cpu().numpy())

    def history_vector(
        self, items: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray | None:
        """The last state after the ordered history, with a 1 for the bias column."""
        history_of(items, weights, self.n_items)
        self._fitted_network().eval()
        tokens = padded(ordered_history(items, weights), self.max_length)[None, :]
        state = self._last_states(tokens)[0].float().cpu().numpy()
        return np.append(state, np.float32(1.0))

    def _state(self) -> dict[str, np.ndarray]:
        return {
            **state_arrays(self._fitted_network(), NETWORK_PREFIX),
            "sequence_items": self.sequences.items,
            "sequence_offsets": self.sequences.offsets,
        }

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.sequences = Sequences(arrays["sequence_items"], arrays["sequence_offsets"])
        network = self._network(self.n_items)
        load_state_arrays(network, arrays, NETWORK_PREFIX)
        self.network = network.eval()
