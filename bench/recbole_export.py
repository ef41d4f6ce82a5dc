"""Our train / validation / test split written as RecBole benchmark atomic files.

RecBole reads `<dataset>.train.inter`, `<dataset>.valid.inter` and `<dataset>.test.inter`
(config `benchmark_filename: [train, valid, test]`) and then skips all of its own filtering
and splitting, so it sees exactly our interactions, by their external ids.

Sequential models get (history, next item) rows instead (`export_sequences`): RecBole does
not augment benchmark files, so the rows are built here the way its augmentation would.
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
        _write_if_changed(part_path(dataset_dir, part, dataset), text)
    return digest.hexdigest()[:16]


def read_part(dataset_dir: Path, part: str, dataset: str = DATASET) -> list[tuple[str, str]]:
    """The (user id, item id) pairs of one exported part, in file order."""
    lines = part_path(dataset_dir, part, dataset).read_text(encoding="utf-8").splitlines()
    if lines[0] != HEADER:
        raise ValueError(f"unexpected header {lines[0]!r}")
    return [(fields[0], fields[1]) for fields in (line.split("\t") for line in lines[1:])]


# Sequential models read pre-built (history, next item) rows from benchmark files:
# RecBole 1.2.1's SequentialDataset skips its own data augmentation when
# `benchmark_filename` is set and takes `item_id_list` as given (`_benchmark_presets`).
SEQUENCE_DATASET = "ml100kseq"
SEQUENCE_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token"
MAX_HISTORY = 50  # RecBole's MAX_ITEM_LIST_LENGTH default, and our models' max_length


def user_parts_in_time(data: InteractionData, split: Split) -> dict[int, dict[str, list[int]]]:
    """Per user, the item indexes of each part in time order (ties by source row order)."""
    parts: dict[int, dict[str, list[int]]] = {}
    for part, rows in part_rows(split).items():
        ordered = rows[np.lexsort((data.row_order[rows], data.timestamps[rows], data.users[rows]))]
        for row in ordered.tolist():
            user_parts = parts.setdefault(int(data.users[row]), {name: [] for name in PARTS})
            user_parts[part].append(int(data.items[row]))
    return parts


def sequence_examples(
    data: InteractionData, split: Split, max_history: int = MAX_HISTORY
) -> dict[str, list[tuple[int, list[int], int]]]:
    """(user, history, next item) rows per part, by internal indexes, as RecBole builds them.

    Train: every train item after the user's first, from the train items before it
    (RecBole's `data_augmentation`). Validation: the validation item from all train items.
    Test: the test item from train + validation items. Histories keep the last `max_history`.
    """
    examples: dict[str, list[tuple[int, list[int], int]]] = {part: [] for part in PARTS}
    for user, parts in sorted(user_parts_in_time(data, split).items()):
        train = parts["train"]
        for position in range(1, len(train)):
            history = train[max(0, position - max_history) : position]
            examples["train"].append((user, history, train[position]))
        inputs = {"valid": train, "test": train + parts["valid"]}
        for part, history in inputs.items():
            if history:  # RecBole has no row for an empty history
                examples[part] += [(user, history[-max_history:], item) for item in parts[part]]
    return examples


def export_sequences(
    data: InteractionData,
    split: Split,
    data_path: Path,
    dataset: str = SEQUENCE_DATASET,
    max_history: int = MAX_HISTORY,
) -> str:
    """Write the (history, next item) rows as RecBole sequential benchmark files.

    Same layout and return value as `export_split`: `data_path/dataset/dataset.<part>.inter`
    and a digest of the content.
    """
    dataset_dir = data_path / dataset
    dataset_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for part, rows in sequence_examples(data, split, max_history).items():
        lines = [
            f"{data.user_ids[user]}\t{' '.join(data.item_ids[i] for i in history)}\t"
            f"{data.item_ids[item]}\n"
            for user, history, item in rows
        ]
        text = SEQUENCE_HEADER + "\n" + "".join(lines)
        digest.update(text.encode("utf-8"))
        _write_if_changed(part_path(dataset_dir, part, dataset), text)
    return digest.hexdigest()[:16]


def _write_if_changed(path: Path, text: str) -> None:
    """Atomically replace `path` with `text` unless it already holds exactly that."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)


def read_sequences(
    dataset_dir: Path, part: str, dataset: str = SEQUENCE_DATASET
) -> list[tuple[str, list[str], str]]:
    """The (user id, history item ids, next item id) rows of one sequential part."""
    lines = part_path(dataset_dir, part, dataset).read_text(encoding="utf-8").splitlines()
    if lines[0] != SEQUENCE_HEADER:
        raise ValueError(f"unexpected header {lines[0]!r}")
    rows = []
    for line in lines[1:]:
        user, history, item = line.split("\t")
        rows.append((user, history.split(" ") if history else [], item))
    return rows
