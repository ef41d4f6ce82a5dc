"""Random (RecBole RS + RO) and temporal leave-one-out (LS + TO) splits."""

import numpy as np
import pytest

from ml.data.dataset import from_arrays
from ml.data.splits import random_split, split_counts, temporal_split


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (1, [1, 0, 0]),
        (2, [1, 0, 1]),
        (3, [1, 1, 1]),
        (9, [7, 1, 1]),
        (10, [8, 1, 1]),
        (19, [17, 1, 1]),
        (20, [16, 2, 2]),
        (25, [21, 2, 2]),
    ],
)
def test_split_counts_round_like_recbole(total, expected):
    assert split_counts(total, (0.8, 0.1, 0.1)) == expected


def part_sizes_per_user(split, n_users):
    return [(split.train[u].nnz, split.valid[u].nnz, split.test[u].nnz) for u in range(n_users)]


def test_random_split_sizes_per_user_follow_ratios(small_data):
    split = random_split(small_data, seed=1)

    counts = np.bincount(small_data.users)
    expected = [tuple(split_counts(int(c), (0.8, 0.1, 0.1))) for c in counts]
    assert part_sizes_per_user(split, small_data.n_users) == expected


def test_random_split_is_deterministic_by_seed(small_data):
    first, again = random_split(small_data, seed=5), random_split(small_data, seed=5)
    other = random_split(small_data, seed=6)

    assert (first.test != again.test).nnz == 0
    assert first.test_rows.tolist() == again.test_rows.tolist()
    assert first.test_rows.tolist() != other.test_rows.tolist()


@pytest.mark.parametrize("make", [lambda d: random_split(d, seed=3), temporal_split])
def test_parts_do_not_overlap_and_cover_everything(small_data, make):
    split = make(small_data)

    rows = np.concatenate([split.train_rows, split.valid_rows, split.test_rows])
    assert sorted(rows.tolist()) == list(range(small_data.n_interactions))
    assert split.train.multiply(split.valid).nnz == 0
    assert split.train.multiply(split.test).nnz == 0
    assert split.valid.multiply(split.test).nnz == 0
    assert (split.train + split.valid + split.test - small_data.matrix()).nnz == 0


def test_temporal_split_holds_out_latest_with_ties_by_row_order():
    data = from_arrays(
        ["a", "a", "a", "a", "b", "b", "c"],
        ["x", "y", "z", "w", "x", "y", "x"],
        None,
        [1.0, 5.0, 5.0, 2.0, 3.0, 1.0, 9.0],
    )

    split = temporal_split(data)

    # a: x(1) w(2) y(5) z(5, later row) -> valid y, test z; b: y(1) x(3) -> no valid, test x.
    assert split.test.toarray()[0].nonzero()[0].tolist() == [data.item_index["z"]]
    assert split.valid.toarray()[0].nonzero()[0].tolist() == [data.item_index["y"]]
    assert split.test.toarray()[1].nonzero()[0].tolist() == [data.item_index["x"]]
    assert split.valid[1].nnz == 0
    assert split.train[2].nnz == 1 and split.test[2].nnz == 0
    assert [data.item_ids[i] for i in split.train_sequence(0)] == ["x", "w"]
    assert [data.item_ids[i] for i in split.train_sequence(1)] == ["y"]


def test_train_sequences_are_time_ordered(small_data):
    split = random_split(small_data, seed=2)

    for user in range(small_data.n_users):
        sequence = split.train_sequence(user)
        assert sorted(sequence.tolist()) == split.train[user].indices.tolist()
        rows = split.train_rows[small_data.users[split.train_rows] == user]
        by_item = dict(
            zip(small_data.items[rows].tolist(), small_data.timestamps[rows], strict=True)
        )
        times = [by_item[item] for item in sequence.tolist()]
        assert times == sorted(times)
