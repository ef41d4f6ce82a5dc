"""Interaction datasets: id vocabularies, interaction arrays and optional item content.

Framework-free: builders take arrays or files and return a frozen `InteractionData`.
Every interaction counts as a positive one (as RecBole's ML-100K defaults do); the
rating or event weight is kept in `weights` for models that want it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import numpy as np
import scipy.sparse as sp

OnDuplicate = Literal["error", "keep_last", "max"]

# Event types of the platform, strongest signal first; the DB path may pass its own map.
DEFAULT_EVENT_WEIGHTS: Mapping[str, float] = {
    "purchase": 4.0,
    "add_to_cart": 3.0,
    "click": 2.0,
    "view": 1.0,
}


class DatasetError(ValueError):
    """A dataset that cannot be used, naming the source (file) and line of the problem."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.message = message
        self.source = source
        self.line = line
        location = source or ""
        if line is not None:
            location = f"{location}, line {line}" if location else f"line {line}"
        super().__init__(f"{location}: {message}" if location else message)


@dataclass(frozen=True)
class ItemRecord:
    """Content of one catalog item: title, categories, description and free attributes."""

    title: str = ""
    categories: tuple[str, ...] = ()
    description: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class InteractionData:
    """Interactions as parallel arrays over contiguous user and item ids.

    `user_ids[u]` / `item_ids[i]` are the external ids of internal ids `u` / `i`.
    `row_order` is the position of each interaction in its source (a file's line
    number), used to break timestamp ties. `item_content`, when present, is aligned
    with `item_ids`.
    """

    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    users: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray
    row_order: np.ndarray
    item_content: tuple[ItemRecord, ...] | None = None
    source: str = "arrays"
    duplicates_dropped: int = 0

    def __post_init__(self) -> None:
        n = len(self.users)
        for name in ("items", "weights", "timestamps", "row_order"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, users has {n}")
        if self.item_content is not None and len(self.item_content) != len(self.item_ids):
            raise ValueError("item_content must be aligned with item_ids")
        for name in ("users", "items", "weights", "timestamps", "row_order"):
            getattr(self, name).setflags(write=False)

    @property
    def n_users(self) -> int:
        """Number of users in the vocabulary."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of items in the vocabulary (catalog items without interactions included)."""
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        """Number of (user, item) interactions."""
        return len(self.users)

    @cached_property
    def user_index(self) -> dict[str, int]:
        """External user id to internal id."""
        return {external: internal for internal, external in enumerate(self.user_ids)}

    @cached_property
    def item_index(self) -> dict[str, int]:
        """External item id to internal id."""
        return {external: internal for internal, external in enumerate(self.item_ids)}

    def matrix(self, rows: np.ndarray | None = None, *, binary: bool = True) -> sp.csr_matrix:
        """User-item CSR matrix of the given interaction rows (all by default)."""
        selected = np.arange(self.n_interactions) if rows is None else rows
        values = (
            np.ones(len(selected), dtype=np.float32)
            if binary
            else self.weights[selected].astype(np.float32)
        )
        return interaction_matrix(
            self.users[selected], self.items[selected], values, (self.n_users, self.n_items)
        )


def interaction_matrix(
    users: np.ndarray, items: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR matrix with sorted indices from (user, item, value) triples."""
    matrix = sp.csr_matrix((values, (users, items)), shape=shape, dtype=np.float32)
    matrix.sort_indices()
    return matrix


def from_arrays(
    user_ids: Sequence[object] | np.ndarray,
    item_ids: Sequence[object] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
    timestamps: Sequence[float] | np.ndarray | None = None,
    *,
    row_order: Sequence[int] | np.ndarray | None = None,
    item_records: Mapping[str, ItemRecord] | None = None,
    on_duplicate: OnDuplicate = "keep_last",
    source: str = "arrays",
) -> InteractionData:
    """Build a dataset from parallel arrays of external ids, weights and timestamps.

    Missing weights are 1, missing timestamps 0 (then source order decides). Duplicate
    (user, item) rows are handled by `on_duplicate`: "error" raises a `DatasetError`
    naming both rows; "keep_last" keeps the latest row by (timestamp, row order);
    "max" keeps the latest row but with the largest weight of the group. Either way
    the number of dropped rows is reported in `duplicates_dropped`. Items of
    `item_records` without interactions are appended to the item vocabulary.
    """
    users_raw = np.asarray(user_ids).astype(str)
    items_raw = np.asarray(item_ids).astype(str)
    n = len(users_raw)
    if n == 0:
        raise DatasetError("the dataset has no interactions", source=source)
    if len(items_raw) != n:
        raise DatasetError(f"{len(items_raw)} item ids for {n} user ids", source=source)
    weight_values = _float_column(weights, n, 1.0, "weights", source)
    time_values = _float_column(timestamps, n, 0.0, "timestamps", source)
    order = np.arange(n) if row_order is None else np.asarray(row_order, dtype=np.int64)
    if len(order) != n:
        raise DatasetError(f"row_order has {len(order)} rows, expected {n}", source=source)
    user_vocab, users = _vocabulary(users_raw)
    item_vocab, items = _vocabulary(items_raw)
    item_vocab, content = _with_catalog(item_vocab, item_records)
    keep, weight_values, dropped = _deduplicate(
        users, items, weight_values, time_values, order, on_duplicate, source
    )
    return InteractionData(
        user_ids=user_vocab,
        item_ids=item_vocab,
        users=users[keep],
        items=items[keep],
        weights=weight_values[keep],
        timestamps=time_values[keep],
        row_order=order[keep],
        item_content=content,
        source=source,
        duplicates_dropped=dropped,
    )


def weights_for_event_types(
    types: Sequence[str] | np.ndarray, weights_map: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS
) -> np.ndarray:
    """Map event type names to interaction weights (purchase > add_to_cart > click > view)."""
    names = np.asarray(types).astype(str)
    unknown = sorted(set(np.unique(names).tolist()) - set(weights_map))
    if unknown:
        raise DatasetError(f"unknown event types {unknown}; known: {sorted(weights_map)}")
    keys = np.array(list(weights_map), dtype=str)
    values = np.array([weights_map[key] for key in keys], dtype=np.float32)
    sorter = np.argsort(keys)
    return values[sorter[np.searchsorted(keys, names, sorter=sorter)]]


def filter_min_interactions(
    data: InteractionData, *, min_user: int = 1, min_item: int = 1
) -> InteractionData:
    """Drop users and items with too few interactions, repeating until both hold.

    Users and items left without interactions leave the vocabularies, which are
    renumbered in their previous order.
    """
    keep = np.ones(data.n_interactions, dtype=bool)
    while True:
        user_counts = np.bincount(data.users[keep], minlength=data.n_users)
        item_counts = np.bincount(data.items[keep], minlength=data.n_items)
        still = keep & (user_counts[data.users] >= min_user) & (item_counts[data.items] >= min_item)
        if still.sum() == keep.sum():
            break
        keep = still
    if not keep.any():
        raise DatasetError("no interactions left after filtering", source=data.source)
    return _subset(data, keep)


def _subset(data: InteractionData, keep: np.ndarray) -> InteractionData:
    """The interactions under mask `keep`, with vocabularies compacted to those used."""
    user_map, user_ids = _compact(data.users[keep], data.user_ids)
    item_map, item_ids = _compact(data.items[keep], data.item_ids)
    content = None
    if data.item_content is not None:
        content = tuple(data.item_content[old] for old in np.flatnonzero(item_map >= 0))
    return replace(
        data,
        user_ids=user_ids,
        item_ids=item_ids,
        users=user_map[data.users[keep]],
        items=item_map[data.items[keep]],
        weights=data.weights[keep],
        timestamps=data.timestamps[keep],
        row_order=data.row_order[keep],
        item_content=content,
    )


def _compact(used: np.ndarray, vocabulary: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Old-id → new-id map (-1 for dropped ids) and the compacted vocabulary."""
    present = np.zeros(len(vocabulary), dtype=bool)
    present[used] = True
    mapping = np.full(len(vocabulary), -1, dtype=np.int64)
    mapping[present] = np.arange(int(present.sum()))
    return mapping, tuple(vocabulary[old] for old in np.flatnonzero(present))


def _float_column(
    values: Sequence[float] | np.ndarray | None, n: int, default: float, name: str, source: str
) -> np.ndarray:
    """A finite float64 column of length n, or the default everywhere when absent."""
    if values is None:
        return np.full(n, default, dtype=np.float64)
    column = np.asarray(values, dtype=np.float64)
    if len(column) != n:
        raise DatasetError(f"{name} has {len(column)} rows, expected {n}", source=source)
    bad = np.flatnonzero(~np.isfinite(column))
    if len(bad):
        raise DatasetError(f"{name} is not a finite number", source=source, line=int(bad[0]))
    return column


def _vocabulary(values: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Vocabulary in order of first appearance and the contiguous ids of `values`."""
    unique, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first, kind="stable")
    rank = np.empty(len(unique), dtype=np.int64)
    rank[by_appearance] = np.arange(len(unique))
    return tuple(unique[by_appearance].tolist()), rank[inverse.ravel()]


def _with_catalog(
    item_vocab: tuple[str, ...], records: Mapping[str, ItemRecord] | None
) -> tuple[tuple[str, ...], tuple[ItemRecord, ...] | None]:
    """Append catalog-only items to the vocabulary and align their content with it."""
    if records is None:
        return item_vocab, None
    known = set(item_vocab)
    vocab = item_vocab + tuple(item for item in records if item not in known)
    return vocab, tuple(records.get(item, ItemRecord()) for item in vocab)


def _deduplicate(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    timestamps: np.ndarray,
    row_order: np.ndarray,
    on_duplicate: OnDuplicate,
    source: str,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows to keep (in source order), possibly merged weights, and the number dropped."""
    order = np.lexsort((row_order, timestamps, items, users))
    same_as_next = (users[order][1:] == users[order][:-1]) & (items[order][1:] == items[order][:-1])
    if not same_as_next.any():
        return np.arange(len(users)), weights, 0
    if on_duplicate == "error":
        first = int(np.flatnonzero(same_as_next)[0])
        earlier, later = sorted((int(row_order[order[first]]), int(row_order[order[first + 1]])))
        raise DatasetError(
            f"duplicate (user, item) interaction, first seen at line {earlier}",
            source=source,
            line=later,
        )
    is_last = np.append(~same_as_next, True)
    if on_duplicate == "max":
        group_starts = np.flatnonzero(np.insert(~same_as_next, 0, True))
        group_max = np.maximum.reduceat(weights[order], group_starts)
        weights = weights.copy()
        weights[order[is_last]] = group_max
    keep = np.sort(order[is_last])
    return keep, weights, len(users) - len(keep)
