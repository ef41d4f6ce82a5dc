"""Our train / validation / test split written as RecBole benchmark atomic files.

RecBole reads `<dataset>.train.inter`, `<dataset>.valid.inter` and `<dataset>.test.inter`
(config `benchmark_filename: [train, valid, test]`) and then skips all of its own filtering
and splitting, so it sees exactly our interactions, by their external ids.
"""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ml.data.dataset import InteractionData
from ml.data.splits import Split

DATASET = "ml100k"  # not "ml-100k": RecBole would then read its bundled copy instead
PARTS = ("train", "valid", "test")
HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"


def part_rows(split: Split) -> dict[str, np.ndarray]:
    """The interaction rows of each part, by the part's file suffix."""
    return {"train": split.train_rows, "valid": split.valid_rows, "test": split.test_rows}


def part_lines(data: InteractionData, rows: np.ndarray) -> Iterator[str]:
    """One tab-separated line per interaction: external user and item ids, rating, time."""
    for row in rows.tolist():
        user = data.user_ids[data.users[row]]
        item = data.item_ids[data.items[row]]
        yield f"{user}\t{item}\t{data.weights[row]:.17g}\t{data.timestamps[row]:.17g}\n"


def part_path(dataset_dir: Path, part: str, dataset: str = DATASET) -> Path:
    """Where RecBole looks for one part: `<dataset_dir>/<dataset>.<part>.inter`."""
    return dataset_dir / f"{dataset}.{part}.inter"


def export_split(
    data: InteractionData, split: Split, data_path: Path, dataset: str = DATASET
) -> str:
    """Write the three files under `data_path/dataset/` (only when their content changed).

    Returns a digest of the files' content, which result caches use as part of their key.
    """
    dataset_dir = data_path / dataset
    dataset_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for part, rows in part_rows(split).items():
        text = HEADER + "\n" + "".join(part_lines(data, rows))
        digest.update(text.encode("utf-8"))
        path = part_path(dataset_dir, part, dataset)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_text(text, encoding="utf-8")
            temporary.replace(path)
    return digest.hexdigest()[:16]


def read_part(dataset_dir: Path, part: str, dataset: str = DATASET) -> list[tuple[str, str]]:
    """The (user id, item id) pairs of one exported part, in file order."""
    lines = part_path(dataset_dir, part, dataset).read_text(encoding="utf-8").splitlines()
    if lines[0] != HEADER:
        raise ValueError(f"unexpected header {lines[0]!r}")
    return [(fields[0], fields[1]) for fields in (line.split("\t") for line in lines[1:])]
