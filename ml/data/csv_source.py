"""Datasets from CSV files: `user,item[,rating][,timestamp]` plus an optional item file.

The interactions file needs a header naming its columns (any order). Timestamps are
epoch seconds or ISO 8601 datetimes with a UTC offset. The item file has an `item`
column and optionally `title`, `genres` or `categories` (separated by "|") and
`description`; its other columns become string attributes.
"""

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ml.data.dataset import DatasetError, InteractionData, ItemRecord, OnDuplicate, from_arrays

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp")
REQUIRED_INTERACTION_COLUMNS = ("user", "item")
CATEGORY_COLUMNS = ("genres", "categories")
CATEGORY_SEPARATOR = "|"


@dataclass(frozen=True)
class _Row:
    """One data row of a CSV file with its physical line number."""

    line: int
    values: dict[str, str]


def from_csv(
    interactions_csv: str | Path,
    items_csv: str | Path | None = None,
    *,
    on_duplicate: OnDuplicate = "error",
) -> InteractionData:
    """Read interactions (and optional item content) from CSV files.

    Duplicate (user, item) rows raise a `DatasetError` by default; pass
    `on_duplicate="keep_last"` to keep the latest by timestamp (then file order).
    """
    path = Path(interactions_csv)
    rows = list(
        _read_rows(path, allowed=INTERACTION_COLUMNS, required=REQUIRED_INTERACTION_COLUMNS)
    )
    if not rows:
        raise DatasetError("no interaction rows after the header", source=str(path))
    columns = rows[0].values.keys()
    ratings = [_parse_number(row, "rating", path) for row in rows] if "rating" in columns else None
    times = [_parse_timestamp(row, path) for row in rows] if "timestamp" in columns else None
    return from_arrays(
        [_required_value(row, "user", path) for row in rows],
        [_required_value(row, "item", path) for row in rows],
        ratings,
        times,
        row_order=_line_numbers(rows),
        item_records=read_item_records(items_csv) if items_csv is not None else None,
        on_duplicate=on_duplicate,
        source=str(path),
    )


def read_item_records(items_csv: str | Path) -> dict[str, ItemRecord]:
    """Item content keyed by external item id, in file order."""
    path = Path(items_csv)
    records: dict[str, ItemRecord] = {}
    for row in _read_rows(path, allowed=None, required=("item",)):
        item = _required_value(row, "item", path)
        if item in records:
            raise DatasetError(f"duplicate item {item!r}", source=str(path), line=row.line)
        records[item] = _item_record(row.values)
    return records


def _item_record(values: dict[str, str]) -> ItemRecord:
    """An `ItemRecord` from one item row; unknown columns become attributes."""
    raw_categories = next((values[c] for c in CATEGORY_COLUMNS if c in values), "")
    known = {"item", "title", "description", *CATEGORY_COLUMNS}
    return ItemRecord(
        title=values.get("title", "").strip(),
        categories=tuple(c.strip() for c in raw_categories.split(CATEGORY_SEPARATOR) if c.strip()),
        description=values.get("description", "").strip(),
        attributes={key: value for key, value in values.items() if key not in known},
    )


def _read_rows(
    path: Path, *, allowed: tuple[str, ...] | None, required: tuple[str, ...]
) -> Iterator[_Row]:
    """Rows of a CSV file as dicts, after checking the header's columns."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = _header(next(reader, None), path, allowed, required)
        for fields in reader:
            if not any(value.strip() for value in fields):
                continue
            if len(fields) != len(header):
                raise DatasetError(
                    f"expected {len(header)} fields, found {len(fields)}",
                    source=str(path),
                    line=reader.line_num,
                )
            yield _Row(reader.line_num, dict(zip(header, fields, strict=True)))


def _header(
    fields: list[str] | None,
    path: Path,
    allowed: tuple[str, ...] | None,
    required: tuple[str, ...],
) -> list[str]:
    """The normalised header, or a `DatasetError` for an empty file or bad columns."""
    if not fields or not any(field.strip() for field in fields):
        raise DatasetError("empty file (no header)", source=str(path), line=1)
    header = [field.strip().lower() for field in fields]
    unknown = [name for name in header if allowed is not None and name not in allowed]
    if unknown:
        raise DatasetError(
            f"unknown column {unknown[0]!r}; expected some of {', '.join(allowed or ())}",
            source=str(path),
            line=1,
        )
    missing = [name for name in required if name not in header]
    if missing:
        raise DatasetError(f"missing column {missing[0]!r}", source=str(path), line=1)
    if len(set(header)) != len(header):
        raise DatasetError("a column name is repeated", source=str(path), line=1)
    return header


def _required_value(row: _Row, column: str, path: Path) -> str:
    """A non-blank value of `column`."""
    value = row.values[column].strip()
    if not value:
        raise DatasetError(f"empty {column}", source=str(path), line=row.line)
    return value


def _parse_number(row: _Row, column: str, path: Path) -> float:
    """A finite float from `column`."""
    text = row.values[column].strip()
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise DatasetError(f"{column} {text!r} is not a number", source=str(path), line=row.line)
    return value


def _parse_timestamp(row: _Row, path: Path) -> float:
    """Epoch seconds from a number or an ISO 8601 datetime with an offset."""
    text = row.values["timestamp"].strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DatasetError(
            f"timestamp {text!r} is neither epoch seconds nor ISO 8601",
            source=str(path),
            line=row.line,
        ) from None
    if moment.tzinfo is None:
        raise DatasetError(f"timestamp {text!r} has no UTC offset", source=str(path), line=row.line)
    return moment.timestamp()


def _line_numbers(rows: list[_Row]) -> list[int]:
    """Physical line numbers of the rows, used as row order and in error messages."""
    return [row.line for row in rows]
