"""Datasets from arrays and CSV files: vocabularies, duplicates, filtering, bad files."""

from pathlib import Path

import numpy as np
import pytest

from ml.data.csv_source import from_csv
from ml.data.dataset import (
    DatasetError,
    filter_min_interactions,
    from_arrays,
    weights_for_event_types,
)


def write(tmp_path: Path, text: str, name: str = "interactions.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_from_arrays_numbers_ids_by_first_appearance():
    data = from_arrays(["b", "a", "b"], [10, 20, 30], [5.0, 3.0, 1.0], [3.0, 2.0, 1.0])

    assert data.user_ids == ("b", "a")
    assert data.item_ids == ("10", "20", "30")
    assert data.users.tolist() == [0, 1, 0]
    assert data.items.tolist() == [0, 1, 2]
    assert data.user_index["a"] == 1
    assert data.matrix().toarray().tolist() == [[1, 0, 1], [0, 1, 0]]
    assert data.matrix(binary=False).toarray()[0].tolist() == [5, 0, 1]


def test_from_arrays_is_read_only():
    data = from_arrays(["a"], ["x"])

    with pytest.raises(ValueError, match="read-only"):
        data.users[0] = 3


def test_keep_last_duplicate_by_timestamp_then_row_order():
    data = from_arrays(
        ["a", "a", "a", "b"], ["x", "x", "x", "x"], [1.0, 2.0, 3.0, 4.0], [5.0, 9.0, 9.0, 1.0]
    )

    assert data.duplicates_dropped == 2
    assert data.weights.tolist() == [3.0, 4.0]
    assert data.row_order.tolist() == [2, 3]


def test_max_duplicate_keeps_largest_weight_at_latest_row():
    data = from_arrays(["a", "a"], ["x", "x"], [4.0, 1.0], [1.0, 2.0], on_duplicate="max")

    assert data.weights.tolist() == [4.0]
    assert data.timestamps.tolist() == [2.0]


def test_weights_for_event_types_maps_and_rejects_unknown():
    weights = weights_for_event_types(["view", "purchase", "click", "add_to_cart"])

    assert weights.tolist() == [1.0, 4.0, 2.0, 3.0]
    assert weights_for_event_types(["a", "b"], {"a": 0.5, "b": 2.0}).tolist() == [0.5, 2.0]
    with pytest.raises(DatasetError, match="unknown event types"):
        weights_for_event_types(["view", "like"])


def test_filter_min_interactions_repeats_until_stable():
    # u3 has one item; dropping it leaves item z with one user, which then goes too.
    data = from_arrays(
        ["u1", "u1", "u2", "u2", "u3", "u1"], ["x", "y", "x", "y", "w", "z"], None, None
    )

    filtered = filter_min_interactions(data, min_user=2, min_item=2)

    assert filtered.user_ids == ("u1", "u2")
    assert filtered.item_ids == ("x", "y")
    assert filtered.n_interactions == 4
    assert filtered.items.max() == 1


def test_from_csv_reads_columns_in_any_order_and_item_content(tmp_path):
    interactions = write(
        tmp_path,
        "timestamp,item,user,rating\n"
        "2024-01-02T00:00:00+00:00,m1,alice,4\n"
        "100,m2,alice,3.5\n"
        "200,m1,bob,5\n",
    )
    items = write(
        tmp_path,
        "item,title,genres,description,year\n"
        "m1,Heat,Crime|Thriller,Cops and robbers,1995\n"
        "m9,Up,Animation,Balloons,2009\n",
        name="items.csv",
    )

    data = from_csv(interactions, items)

    assert data.n_users == 2
    assert data.item_ids == ("m1", "m2", "m9")
    assert data.weights.tolist() == [4.0, 3.5, 5.0]
    assert data.timestamps[0] == 1704153600.0
    assert data.row_order.tolist() == [2, 3, 4]
    assert data.item_content is not None
    heat, unknown, up = data.item_content
    assert heat.categories == ("Crime", "Thriller")
    assert heat.attributes == {"year": "1995"}
    assert unknown.title == ""
    assert up.title == "Up"


def test_from_csv_keep_last_counts_duplicates(tmp_path):
    path = write(tmp_path, "user,item,timestamp\na,x,5\na,x,3\na,y,1\n")

    data = from_csv(path, on_duplicate="keep_last")

    assert data.duplicates_dropped == 1
    assert data.timestamps.tolist() == [5.0, 1.0]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("", "empty file", 1),
        ("user,item\n", "no interaction rows", None),
        ("user,item,score\na,x,1\n", "unknown column 'score'", 1),
        ("user,rating\na,1\n", "missing column 'item'", 1),
        ("user,item,rating\na,x,4\nb,y,good\n", "rating 'good' is not a number", 3),
        ("user,item,rating\na,x,nan\n", "is not a number", 2),
        (
            "user,item\na,x\nb,y\na,x\n",
            "duplicate (user, item) interaction, first seen at line 2",
            4,
        ),
        ("user,item\na,x,extra\n", "expected 2 fields", 2),
        ("user,item\n,x\n", "empty user", 2),
        ("user,item,timestamp\na,x,yesterday\n", "neither epoch seconds nor ISO", 2),
        ("user,item,timestamp\na,x,2024-01-01T10:00:00\n", "no UTC offset", 2),
    ],
)
def test_from_csv_rejects_bad_files_with_file_and_line(tmp_path, text, message, line):
    path = write(tmp_path, text)

    with pytest.raises(DatasetError) as raised:
        from_csv(path)

    assert message in raised.value.message
    assert raised.value.source == str(path)
    assert raised.value.line == line
    assert str(path) in str(raised.value)


def test_items_csv_rejects_duplicate_items(tmp_path):
    interactions = write(tmp_path, "user,item\na,x\n")
    items = write(tmp_path, "item,title\nx,One\nx,Two\n", name="items.csv")

    with pytest.raises(DatasetError, match=r"items.csv, line 3: duplicate item 'x'"):
        from_csv(interactions, items)


def test_from_arrays_rejects_empty_and_non_finite():
    with pytest.raises(DatasetError, match="no interactions"):
        from_arrays([], [])
    with pytest.raises(DatasetError, match="not a finite number"):
        from_arrays(["a"], ["x"], [np.inf])
