"""Time-ordered item sequences for next-item models: building, padding, training windows.

Item `i` is token `i + 1` in a padded sequence, token `PAD` (0) is "no item", and
sequences are padded on the left so that the most recent item is always the last
position. Framework-free: numpy in, numpy out.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ml.data.dataset import InteractionData

PAD = 0
# Training-window targets at padded positions carry this value, which the loss ignores.
IGNORE = -100


@dataclass(frozen=True)
class Sequences:
    """Each user's items, oldest first: user `u` owns `items[offsets[u]:offsets[u + 1]]`."""

    items: np.ndarray
    offsets: np.ndarray

    @property
    def n_users(self) -> int:
        """Number of users (possibly with empty sequences)."""
        return len(self.offsets) - 1

    def of(self, user: int) -> np.ndarray:
        """The items of `user`, oldest first."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]


def train_sequences(data: InteractionData | None, train: sp.csr_matrix) -> Sequences:
    """The train part's items per user ordered by time, ties broken by source row order.

    Only (user, item) pairs stored in `train` are kept, so a split's validation and test
    interactions never enter the sequences.
    """
    if data is None:
        raise ValueError(
            "a sequential model needs the InteractionData (timestamps) the train matrix "
            "was split from: call fit(train, data=...)"
        )
    n_users, n_items = (int(size) for size in train.shape)
    if (data.n_users, data.n_items) != (n_users, n_items):
        raise ValueError(
            f"train matrix {train.shape} does not match the data "
            f"({data.n_users} users, {data.n_items} items)"
        )
    coo = train.tocoo()
    train_keys = coo.row.astype(np.int64) * n_items + coo.col
    keys = data.users.astype(np.int64) * n_items + data.items
    rows = np.flatnonzero(np.isin(keys, train_keys))
    rows = rows[np.lexsort((data.row_order[rows], data.timestamps[rows], data.users[rows]))]
    counts = np.bincount(data.users[rows], minlength=n_users)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return Sequences(data.items[rows].astype(np.int64), offsets)


def padded(items: np.ndarray, max_length: int) -> np.ndarray:
    """The last `max_length` items as tokens (item + 1), left-padded with `PAD`."""
    tokens = np.full(max_length, PAD, dtype=np.int64)
    recent = np.asarray(items, dtype=np.int64)[-max_length:]
    if len(recent):
        tokens[max_length - len(recent) :] = recent + 1
    return tokens


def padded_batch(sequences: Sequences, users: np.ndarray, max_length: int) -> np.ndarray:
    """The users' padded sequences, shape (len(users), max_length)."""
    rows = [padded(sequences.of(int(user)), max_length) for user in users]
    return np.stack(rows) if rows else np.zeros((0, max_length), dtype=np.int64)


def training_windows(
    sequences: Sequences, max_length: int, stride: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets of every user, cut into windows of `max_length`.

    Window inputs are tokens (left-padded); targets are item ids of the following item at
    each position, `IGNORE` where the input is padding. Windows end at the user's last
    item and step back by `stride` (default `max_length`: every target exactly once).
    """
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, not {max_length}")
    step = stride or max_length
    inputs, targets = [], []
    for user in range(sequences.n_users):
        sequence = sequences.of(user)
        for end in range(len(sequence) - 1, 0, -step):
            start = max(0, end - max_length)
            inputs.append(padded(sequence[start:end], max_length))
            target = np.full(max_length, IGNORE, dtype=np.int64)
            target[max_length - (end - start) :] = sequence[start + 1 : end + 1]
            targets.append(target)
    if not inputs:
        raise ValueError("no user has two train items: nothing to learn a next item from")
    return np.stack(inputs), np.stack(targets)


def shuffled_batches(count: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Indexes 0..count-1 in a random order, in batches of at most `batch_size`."""
    order = rng.permutation(count)
    for start in range(0, count, batch_size):
        yield order[start : start + batch_size]


def ordered_history(items: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """The visitor's items in the given order (oldest first), those of weight 0 left out.

    Validation (ids, weights) is the caller's; repeats stay, as repeated events.
    """
    ids = np.asarray(items, dtype=np.int64)
    if weights is None:
        return ids
    return ids[np.asarray(weights, dtype=np.float64) > 0]
