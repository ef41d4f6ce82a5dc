"""Context EASE: the time, content, confidence and availability terms each change the model."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from ml.algorithms import registry
from ml.algorithms.context_ease import (
    UNAVAILABLE_SCORE,
    ContextEASE,
    confidence_matrix,
    content_tokens,
    first_and_last_seen,
    time_gram,
    train_rows,
)
from ml.algorithms.ease import EASE
from ml.data.dataset import InteractionData, ItemRecord, from_arrays
from ml.data.splits import random_split

PLAIN: dict[str, Any] = {
    "time_weight": 0.0,
    "content_weight": 0.0,
    "rating_weight": 0.0,
    "availability_slack_days": None,
}


def _data(
    rows: Sequence[tuple[str, str, float, float]], records: dict[str, ItemRecord] | None = None
) -> InteractionData:
    users, items, weights, times = zip(*rows, strict=True)
    return from_arrays(users, items, weights, times, item_records=records)


def test_without_context_it_is_plain_ease(small_data):
    train = small_data.matrix()
    context = ContextEASE(reg=5.0, **PLAIN).fit(train, data=small_data)
    ease = EASE(reg=5.0).fit(train)
    users = np.arange(small_data.n_users)

    np.testing.assert_allclose(context.score(users), ease.score(users), rtol=1e-6, atol=1e-9)


def test_fitting_without_the_dataset_says_what_is_missing(train_matrix):
    with pytest.raises(ValueError, match="needs the InteractionData"):
        ContextEASE().fit(train_matrix)


def test_train_rows_are_the_interactions_of_the_train_matrix(small_data):
    split = random_split(small_data, seed=3)
    rows = train_rows(small_data, split.train)

    np.testing.assert_array_equal(np.sort(rows), np.sort(split.train_rows))
    with pytest.raises(ValueError, match="does not match the data"):
        train_rows(small_data, sp.csr_matrix((2, 2)))


def test_time_gram_ties_items_consumed_close_in_time():
    data = _data(
        [
            ("u1", "a", 1, 0.0),
            ("u1", "b", 1, 60.0),  # one minute after a
            ("u1", "c", 1, 86_400.0),  # a day later
        ]
    )
    a, b, c = (data.item_index[name] for name in "abc")
    gram = time_gram(data, np.arange(3), data.n_items, scale_seconds=600.0)

    assert gram[a, a] == gram[b, b] == gram[c, c] == 1.0
    assert gram[a, b] == gram[b, a] == pytest.approx(np.exp(-0.1))
    assert gram[a, c] < 1e-9
    assert gram[b, c] < 1e-9


def test_confidence_is_centred_on_the_middle_of_the_rating_range():
    data = _data([("u1", "a", 1, 0), ("u1", "b", 3, 0), ("u2", "a", 5, 0)])
    matrix = confidence_matrix(data, np.arange(3), (data.n_users, data.n_items), 0.25)

    assert matrix[data.user_index["u1"], data.item_index["a"]] == pytest.approx(0.5)
    assert matrix[data.user_index["u1"], data.item_index["b"]] == pytest.approx(1.0)
    assert matrix[data.user_index["u2"], data.item_index["a"]] == pytest.approx(1.5)


def test_content_tokens_hold_categories_and_attributes():
    records = {
        "a": ItemRecord(categories=("Comedy", "Drama"), attributes={"year": "1995"}),
        "b": ItemRecord(categories=("comedy",), attributes={"year": ""}),
    }
    data = _data([("u1", "a", 1, 0), ("u1", "b", 1, 0)], records)
    tokens = content_tokens(data)
    shared = (tokens.T @ tokens).toarray()

    assert tokens.shape == (3, 2)  # category:comedy, category:drama, year=1995
    assert shared[data.item_index["a"], data.item_index["b"]] == 1.0


def test_content_lets_a_cold_item_be_recommended():
    records = {name: ItemRecord(categories=("horror",)) for name in ("h1", "h2", "h3", "cold")}
    records |= {name: ItemRecord(categories=("comedy",)) for name in ("c1", "c2", "c3")}
    rows = [(f"u{n}", item, 1.0, 0.0) for n in range(6) for item in ("h1", "h2", "c1", "c2")]
    rows += [("fan", "h1", 1.0, 0.0), ("fan", "h3", 1.0, 0.0), ("x", "c3", 1.0, 0.0)]
    # "cold" has no interaction at all: it only exists in the catalog
    data = from_arrays(*zip(*rows, strict=True), item_records=records)
    assert "cold" in data.item_ids
    fan, cold = data.user_index["fan"], data.item_index["cold"]
    train = data.matrix()

    plain = ContextEASE(reg=1.0, **PLAIN).fit(train, data=data)
    context = ContextEASE(reg=1.0, time_weight=0.0, content_weight=3.0).fit(train, data=data)

    assert plain.score(np.array([fan]))[0, cold] == 0.0
    assert context.score(np.array([fan]))[0, cold] > 0.0
    top = context.recommend(np.array([fan]), 3, exclude=train)[0]
    assert cold in top.tolist()


def test_items_first_seen_after_a_users_last_activity_rank_last():
    day = 86_400.0
    rows = [("early", "a", 1, 0.0), ("early", "b", 1, 10.0)]
    rows += [(f"late{n}", item, 1, 30 * day) for n in range(3) for item in ("a", "new")]
    data = _data(rows)
    early, new = data.user_index["early"], data.item_index["new"]

    model = ContextEASE(reg=1.0, time_weight=0.0, availability_slack_days=1.0)
    model.fit(data.matrix(), data=data)
    first, last = first_and_last_seen(data, np.arange(data.n_interactions), 4, 3)

    assert first[new] == 30 * day
    assert last[early] == 10.0
    assert model.score(np.array([early]))[0, new] == UNAVAILABLE_SCORE
    assert model.score(np.array([data.user_index["late0"]]))[0, new] > UNAVAILABLE_SCORE


def test_save_load_round_trip(tmp_path, small_data):
    model = ContextEASE(reg=3.0, dropout=0.2).fit(small_data.matrix(), data=small_data)
    users = np.arange(small_data.n_users)

    loaded = registry.load(model.save(tmp_path / "model"))

    assert isinstance(loaded, ContextEASE)
    assert loaded.hyperparameters == model.hyperparameters
    np.testing.assert_array_equal(loaded.score(users), model.score(users))


def test_dropout_emphasis_changes_the_weights(small_data):
    train = small_data.matrix()
    without = ContextEASE(reg=3.0, dropout=0.0).fit(train, data=small_data)
    with_dropout = ContextEASE(reg=3.0, dropout=0.5).fit(train, data=small_data)

    assert not np.allclose(without.weights, with_dropout.weights)
    assert np.all(np.diag(with_dropout.weights) == 0.0)
