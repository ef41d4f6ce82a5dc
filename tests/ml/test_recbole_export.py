"""The RecBole benchmark-file export: same pairs as the split, RecBole's header, by external id."""

from pathlib import Path

import numpy as np
import pytest

from bench.recbole_export import DATASET, HEADER, PARTS, export_split, part_path, read_part
from ml.data.dataset import InteractionData
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
