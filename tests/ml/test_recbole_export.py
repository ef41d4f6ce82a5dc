"""The RecBole benchmark-file export: same pairs as the split, RecBole's header, by external id."""

from pathlib import Path

import numpy as np
import pytest

from bench.recbole_export import (
    DATASET,
    HEADER,
    PARTS,
    SEQUENCE_DATASET,
    export_sequences,
    export_split,
    part_path,
    read_part,
    read_sequences,
)
from ml.data.dataset import InteractionData, from_arrays
from ml.data.splits import Split, random_split, temporal_split


def split_pairs(data: InteractionData, split: Split) -> dict[str, set[tuple[str, str]]]:
    """(external user, external item) pairs of each part of the split."""
    matrices = {"train": split.train, "valid": split.valid, "test": split.test}
    pairs = {}
    for part, matrix in matrices.items():
        users, items = matrix.nonzero()
        pairs[part] = {
            (data.user_ids[u], data.item_ids[i]) for u, i in zip(users, items, strict=True)
        }
    return pairs


@pytest.mark.parametrize("strategy", ["random", "temporal"])
def test_export_round_trips_to_the_split(
    small_data: InteractionData, tmp_path: Path, strategy: str
) -> None:
    split = random_split(small_data, seed=3) if strategy == "random" else temporal_split(small_data)

    export_split(small_data, split, tmp_path)

    expected = split_pairs(small_data, split)
    for part in PARTS:
        exported = read_part(tmp_path / DATASET, part)
        assert len(exported) == len(set(exported))  # no duplicate rows
        assert set(exported) == expected[part]
    total = sum(len(read_part(tmp_path / DATASET, part)) for part in PARTS)
    assert total == small_data.n_interactions


def test_files_have_recbole_header_and_source_values(
    small_data: InteractionData, tmp_path: Path
) -> None:
    split = random_split(small_data, seed=3)

    export_split(small_data, split, tmp_path)

    lines = part_path(tmp_path / DATASET, "train").read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER == "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    first = int(split.train_rows[0])
    user, item, rating, timestamp = lines[1].split("\t")
    assert (user, item) == (
        small_data.user_ids[small_data.users[first]],
        small_data.item_ids[small_data.items[first]],
    )
    assert float(rating) == small_data.weights[first]
    assert float(timestamp) == small_data.timestamps[first]


def test_export_digest_follows_content(small_data: InteractionData, tmp_path: Path) -> None:
    first = export_split(small_data, random_split(small_data, seed=3), tmp_path / "a")
    again = export_split(small_data, random_split(small_data, seed=3), tmp_path / "a")
    other = export_split(small_data, random_split(small_data, seed=4), tmp_path / "b")

    assert first == again != other
    assert np.all([part_path(tmp_path / "a" / DATASET, part).is_file() for part in PARTS])


def external_sequence(data: InteractionData, items: np.ndarray | list[int]) -> list[str]:
    """External item ids of item indexes, in order."""
    return [data.item_ids[int(item)] for item in items]


@pytest.mark.parametrize("max_history", [3, 50])
def test_sequence_files_reproduce_the_temporal_split(
    small_data: InteractionData, tmp_path: Path, max_history: int
) -> None:
    split = temporal_split(small_data)

    export_sequences(small_data, split, tmp_path, max_history=max_history)

    rows = {part: read_sequences(tmp_path / SEQUENCE_DATASET, part) for part in PARTS}
    expected = split_pairs(small_data, split)
    for user in range(small_data.n_users):
        user_id = small_data.user_ids[user]
        train = external_sequence(small_data, split.train_sequence(user))
        valid = [item for u, item in expected["valid"] if u == user_id]
        test = [item for u, item in expected["test"] if u == user_id]
        train_rows = [row for row in rows["train"] if row[0] == user_id]
        # RecBole's augmentation: each train item after the first, from the items before it.
        assert [target for _, _, target in train_rows] == train[1:]
        assert [history for _, history, _ in train_rows] == [
            train[max(0, end - max_history) : end] for end in range(1, len(train))
        ]
        assert [(h, t) for u, h, t in rows["valid"] if u == user_id] == [
            (train[-max_history:], item) for item in valid
        ]
        assert [(h, t) for u, h, t in rows["test"] if u == user_id] == [
            ((train + valid)[-max_history:], item) for item in test
        ]


def test_sequence_histories_follow_time_then_row_order(tmp_path: Path) -> None:
    # u1's items b and c share a timestamp: file order (c before b) breaks the tie.
    data = from_arrays(
        ["u1", "u1", "u1", "u1", "u1"],
        ["a", "c", "b", "d", "e"],
        None,
        np.array([1.0, 5.0, 5.0, 2.0, 9.0]),
    )
    split = temporal_split(data)

    export_sequences(data, split, tmp_path)

    (test_row,) = read_sequences(tmp_path / SEQUENCE_DATASET, "test")
    (valid_row,) = read_sequences(tmp_path / SEQUENCE_DATASET, "valid")
    assert test_row == ("u1", ["a", "d", "c", "b"], "e")
    assert valid_row == ("u1", ["a", "d", "c"], "b")
    assert [row[2] for row in read_sequences(tmp_path / SEQUENCE_DATASET, "train")] == ["d", "c"]
