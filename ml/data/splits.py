"""Train / validation / test splits per user, following RecBole's evaluation settings.

`random_split` is RecBole's "RS + RO" (shuffle, then split each user's interactions by
ratio); `temporal_split` is "LS + TO" (per user, last interaction for test, the one
before for validation, ties in time broken by source row order).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ml.data.dataset import InteractionData

TRAIN, VALID, TEST = 0, 1, 2


@dataclass(frozen=True, eq=False)
class Split:
    """Binary user-item matrices of the three parts plus time-ordered train sequences.

    `*_rows` index the interactions of the source `InteractionData`; the train
    sequence of user `u` is `sequence_items[sequence_offsets[u]:sequence_offsets[u + 1]]`.
    """

    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    train_rows: np.ndarray
    valid_rows: np.ndarray
    test_rows: np.ndarray
    sequence_items: np.ndarray
    sequence_offsets: np.ndarray
    strategy: str

    @property
    def n_users(self) -> int:
        """Number of users (rows of every matrix)."""
        return int(self.train.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items (columns of every matrix)."""
        return int(self.train.shape[1])

    def train_sequence(self, user: int) -> np.ndarray:
        """Train items of `user`, oldest first."""
        return self.sequence_items[self.sequence_offsets[user] : self.sequence_offsets[user + 1]]


def split_counts(total: int, ratios: Sequence[float]) -> list[int]:
    """Sizes of the parts of `total` rows, rounded as RecBole 1.2.1's `_calcu_split_ids`.

    Every part but the first is rounded down, then a part whose exact share is in
    (0, 1) gets one row taken from the first part while the first keeps more than one.
    """
    total_ratio = sum(ratios)
    shares = [ratio / total_ratio for ratio in ratios]
    counts = [int(share * total) for share in shares]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(shares)):
        if counts[0] <= 1:
            break
        if 0 < shares[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def random_split(
    data: InteractionData, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 2020
) -> Split:
    """Shuffle all interactions with `seed`, then split each user's by `ratios`."""
    if len(ratios) != 3:
        raise ValueError("ratios must give train, validation and test shares")
    shuffled = np.random.default_rng(seed).permutation(data.n_interactions)
    order = shuffled[np.argsort(data.users[shuffled], kind="stable")]
    position, counts = _positions_in_user(data.users[order], data.n_users)
    boundaries = _ratio_boundaries(counts, ratios)
    user_bounds = boundaries[data.users[order]]
    part = np.full(len(order), TEST, dtype=np.int8)
    part[position < user_bounds[:, 1]] = VALID
    part[position < user_bounds[:, 0]] = TRAIN
    return _build(data, order, part, strategy=f"random{tuple(ratios)} seed={seed}")


def temporal_split(data: InteractionData) -> Split:
    """Per user, last interaction in time for test, the previous one for validation.

    As in RecBole's leave-one-out, a user with two interactions gets no validation
    row and a user with one interaction keeps it in train.
    """
    order = _time_order(data)
    position, counts = _positions_in_user(data.users[order], data.n_users)
    from_end = counts[data.users[order]] - 1 - position
    user_count = counts[data.users[order]]
    part = np.full(len(order), TRAIN, dtype=np.int8)
    part[(from_end == 0) & (user_count >= 2)] = TEST
    part[(from_end == 1) & (user_count >= 3)] = VALID
    return _build(data, order, part, strategy="temporal leave-one-out")


def _time_order(data: InteractionData) -> np.ndarray:
    """Interaction rows sorted by user, then timestamp, then source row order."""
    return np.lexsort((data.row_order, data.timestamps, data.users))


def _positions_in_user(sorted_users: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Position of each row within its user's group (rows grouped by user) and group sizes."""
    counts = np.bincount(sorted_users, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.arange(len(sorted_users)) - starts[sorted_users], counts


def _ratio_boundaries(counts: np.ndarray, ratios: Sequence[float]) -> np.ndarray:
    """Per user, the (train end, validation end) positions from RecBole's rounding."""
    boundaries = np.zeros((len(counts), 2), dtype=np.int64)
    for total in np.unique(counts):
        parts = split_counts(int(total), ratios)
        boundaries[counts == total] = (parts[0], parts[0] + parts[1])
    return boundaries


def _build(data: InteractionData, order: np.ndarray, part: np.ndarray, *, strategy: str) -> Split:
    """Assemble a `Split` from rows in `order` labelled TRAIN / VALID / TEST."""
    rows = [np.sort(order[part == label]) for label in (TRAIN, VALID, TEST)]
    train_in_time = np.zeros(data.n_interactions, dtype=bool)
    train_in_time[rows[TRAIN]] = True
    time_order = _time_order(data)
    sequence_rows = time_order[train_in_time[time_order]]
    sequence_counts = np.bincount(data.users[sequence_rows], minlength=data.n_users)
    return Split(
        train=data.matrix(rows[TRAIN]),
        valid=data.matrix(rows[VALID]),
        test=data.matrix(rows[TEST]),
        train_rows=rows[TRAIN],
        valid_rows=rows[VALID],
        test_rows=rows[TEST],
        sequence_items=data.items[sequence_rows].copy(),
        sequence_offsets=np.concatenate(([0], np.cumsum(sequence_counts))),
        strategy=strategy,
    )
