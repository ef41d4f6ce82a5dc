"""PyTorch training shared by the neural models: device, seeding, early stopping, epochs.

Validation NDCG@10 is computed in torch (top-k of the catalog with train items masked)
with the definition of `ml.evaluation.metrics`, so the kept epoch is the one the
protocol would pick.
"""

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from tqdm import tqdm

DEVICES = ("auto", "cpu", "cuda")
VALIDATION_K = 10
VALIDATION_METRIC = f"ndcg@{VALIDATION_K}"
BATCH_USERS = 1024
# cuBLAS is deterministic only with a fixed workspace, which must be set before its first use.
CUBLAS_WORKSPACE = ":4096:8"

EpochCallback = Callable[[int, Mapping[str, float]], None]
UserScorer = Callable[[np.ndarray], torch.Tensor]


def resolve_device(name: str) -> torch.device:
    """The device named "cpu" or "cuda", or for "auto" CUDA when available, else CPU."""
    if name not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[np.random.Generator]:
    """Seed torch and yield a numpy Generator; the caller's torch random state comes back."""
    forked = [_cuda_index(device)] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked), _deterministic_kernels(device):
        torch.manual_seed(seed)
        yield np.random.default_rng(seed)


@contextlib.contextmanager
def _deterministic_kernels(device: torch.device) -> Iterator[None]:
    """On CUDA, deterministic kernels inside the block.

    Not on CPU: the kernels used are deterministic there already, and switching the flag
    imports torch's compiler (seconds per process).
    """
    if device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    # warn_only: a kernel without a deterministic version warns instead of failing.
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def _cuda_index(device: torch.device) -> int:
    """The index of a CUDA device, the current one when unnumbered."""
    return device.index if device.index is not None else torch.cuda.current_device()


def adamw(
    parameters: Iterable[nn.Parameter], learning_rate: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW whose decoupled weight decay applies to weight matrices, not biases or norms."""
    trainable = [parameter for parameter in parameters if parameter.requires_grad]
    groups = [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate)


def clipped_step(
    network: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float
) -> float:
    """One optimizer step on `loss` with the gradient norm clipped to `clip`; the loss."""
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(network.parameters(), clip)
    optimizer.step()
    return float(loss.item())


def dense_rows(matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows of a sparse matrix as a dense float32 tensor on `device`."""
    return torch.from_numpy(matrix[rows].toarray().astype(np.float32, copy=False)).to(device)


def batches(values: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of `values` of at most `size` elements."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def score_in_batches(
    score: UserScorer, users: np.ndarray, batch_users: int = BATCH_USERS
) -> np.ndarray:
    """Dense float32 scores of `users`, computed batch by batch without gradients."""
    users = np.asarray(users, dtype=np.int64)
    with torch.no_grad():
        parts = [score(batch).float().cpu().numpy() for batch in batches(users, batch_users)]
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


class RankingValidator:
    """Mean NDCG@k of held-out items over the whole catalog with train items masked."""

    def __init__(
        self,
        train: sp.csr_matrix,
        held_out: sp.csr_matrix,
        device: torch.device,
        k: int = VALIDATION_K,
        batch_users: int = BATCH_USERS,
    ) -> None:
        self.train = sp.csr_matrix(train)
        self.held_out = sp.csr_matrix(held_out)
        self.device = device
        self.batch_users = batch_users
        n_relevant = np.diff(self.held_out.indptr)
        self.users = np.flatnonzero(n_relevant > 0)
        self.k = min(k, int(self.held_out.shape[1]))
        discounts = 1.0 / np.log2(np.arange(2, k + 2))
        self.discounts = torch.from_numpy(discounts[: self.k]).to(device)
        # The ideal DCG of each user (meaningless, and never read, for users without items).
        ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
        self.ideal = torch.from_numpy(ideal).to(device)

    def __call__(self, score: UserScorer) -> float:
        """The mean NDCG@k of the scores `score` gives to batches of user ids."""
        with torch.no_grad():
            total = sum(
                self._batch_sum(users, score(users))
                for users in batches(self.users, self.batch_users)
            )
        return total / max(len(self.users), 1)

    def _batch_sum(self, users: np.ndarray, scores: torch.Tensor) -> float:
        """The sum of the users' NDCG@k."""
        seen = dense_rows(self.train, users, self.device) > 0
        top = torch.topk(scores.masked_fill(seen, -math.inf), self.k, dim=1).indices
        gains = dense_rows(self.held_out, users, self.device).gather(1, top).double()
        dcg = (gains * self.discounts).sum(dim=1)
        return float((dcg / self.ideal[torch.from_numpy(users).to(self.device)]).sum())


class EarlyStopping:
    """Keeps a copy of the best weights by a higher-is-better score; stops after `patience`."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_score = -math.inf
        self.best_epoch = 0
        self.misses = 0
        self.history: list[float] = []
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, score: float, module: nn.Module) -> bool:
        """Record one evaluation; true once `patience` evaluations in a row beat no best."""
        self.history.append(score)
        if score > self.best_score:
            self.best_score, self.best_epoch, self.misses = score, epoch, 0
            state = module.state_dict()
            self.best_state = {name: tensor.detach().clone() for name, tensor in state.items()}
        else:
            self.misses += 1
        return self.misses >= self.patience

    def restore(self, module: nn.Module) -> None:
        """Load the best weights seen into `module` (nothing if none was recorded)."""
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


@dataclass(frozen=True)
class TrainingReport:
    """Epochs run, the (1-based) epoch whose weights were kept, and per-epoch metrics."""

    epochs_run: int
    best_epoch: int
    history: tuple[Mapping[str, float], ...]


def show_progress(progress: bool) -> bool:
    """Whether to draw a progress bar: asked for, and stderr is a terminal."""
    return progress and sys.stderr.isatty()


def train_epochs(
    module: nn.Module,
    run_epoch: Callable[[int], float],
    *,
    epochs: int,
    validate: Callable[[], float] | None = None,
    patience: int = 10,
    progress: bool = True,
    on_epoch: EpochCallback | None = None,
) -> TrainingReport:
    """Run up to `epochs` epochs (`run_epoch` returns the mean loss), keep the best weights.

    With `validate` (returning NDCG@10), stop after `patience` epochs without a new best.
    """
    stopper = EarlyStopping(patience)
    history: list[dict[str, float]] = []
    bar = tqdm(
        range(1, epochs + 1), desc=type(module).__name__, disable=not show_progress(progress)
    )
    for epoch in bar:
        module.train()
        metrics = {"loss": run_epoch(epoch)}
        stop = False
        if validate is not None:
            module.eval()
            metrics[VALIDATION_METRIC] = validate()
            stop = stopper.update(epoch, metrics[VALIDATION_METRIC], module)
        history.append(metrics)
        bar.set_postfix(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if stop:
            break
    bar.close()
    stopper.restore(module)
    module.eval()
    best = stopper.best_epoch if validate is not None else len(history)
    return TrainingReport(len(history), best, tuple(history))


def state_arrays(module: nn.Module, prefix: str) -> dict[str, np.ndarray]:
    """The module's state dict as numpy arrays, keys prefixed, for `np.savez`."""
    state = module.state_dict()
    return {prefix + name: tensor.detach().cpu().numpy() for name, tensor in state.items()}


def load_state_arrays(module: nn.Module, arrays: Mapping[str, np.ndarray], prefix: str) -> None:
    """Set the module's state from the arrays of `state_arrays` with the same prefix."""
    state = {
        name.removeprefix(prefix): torch.from_numpy(np.array(value))
        for name, value in arrays.items()
        if name.startswith(prefix)
    }
    module.load_state_dict(state)
