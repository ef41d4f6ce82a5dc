"""Interaction datasets, their builders (arrays, CSV, MovieLens) and train/valid/test splits."""

from ml.data.csv_source import from_csv, read_item_records
from ml.data.dataset import (
    DEFAULT_EVENT_WEIGHTS,
    DatasetError,
    InteractionData,
    ItemRecord,
    filter_min_interactions,
    from_arrays,
    weights_for_event_types,
)
from ml.data.movielens import from_movielens_dir, from_movielens_wheel
from ml.data.splits import Split, random_split, split_counts, temporal_split

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "DatasetError",
    "InteractionData",
    "ItemRecord",
    "Split",
    "filter_min_interactions",
    "from_arrays",
    "from_csv",
    "from_movielens_dir",
    "from_movielens_wheel",
    "random_split",
    "read_item_records",
    "split_counts",
    "temporal_split",
    "weights_for_event_types",
]
