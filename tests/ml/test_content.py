"""Content kNN and the collaborative + content hybrid: fitting, saving, cold items, ML-100K."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from ml.algorithms.base import Recommender
from ml.algorithms.content import ContentKNN, item_tokens
from ml.algorithms.ease import EASE
from ml.algorithms.hybrid import Hybrid
from ml.data.dataset import InteractionData, ItemRecord, from_arrays
from ml.data.movielens import from_movielens_wheel
from ml.data.splits import random_split
from ml.evaluation.metrics import evaluate_full_ranking

MOVIELENS_WHEEL = (
    Path(__file__).resolve().parents[2] / "var/cache/wheels/recbole-1.2.1-py3-none-any.whl"
)
COMEDIES = ("Laugh Riot", "Laugh Riot 2", "Laugh Riot 3", "Office Jokes", "Wedding Gags")
HORRORS = ("Night Fright", "Night Fright 2", "Blood Manor", "Dark Cellar", "Grave Call")


def _catalog() -> dict[str, ItemRecord]:
    """Five comedies, five horror films and a new, never watched "Laugh Riot 4"."""
    records = {
        f"c{n}": ItemRecord(title=title, categories=("Comedy",), attributes={"rating": "pg"})
        for n, title in enumerate(COMEDIES)
    }
    records |= {
        f"h{n}": ItemRecord(title=title, categories=("Horror",), attributes={"rating": "r"})
        for n, title in enumerate(HORRORS)
    }
    records["cold"] = ItemRecord(
        title="Laugh Riot 4", categories=("Comedy",), description="The riot goes on."
    )
    return records


@pytest.fixture
def content_data() -> InteractionData:
    """Comedy fans watch comedies, horror fans horror; the "Laugh Riot" fan sees its three."""
    users, items = ["fan", "fan", "fan"], ["c0", "c1", "c2"]
    for n in range(8):
        genre = "c" if n % 2 else "h"
        watched = [f"{genre}{(n + step) % 5}" for step in range(4)]
        users += [f"u{n}"] * len(watched)
        items += watched
    return from_arrays(
        users, items, None, np.arange(len(users), dtype=float), item_records=_catalog()
    )


def _all_users(data: InteractionData) -> np.ndarray:
    return np.arange(data.n_users)


def test_item_tokens_prefix_fields_and_drop_stop_words():
    record = ItemRecord(
        title="The Big Sleep",
        categories=("Film Noir",),
        description="A private eye.",
        attributes={"Year": "1946"},
    )

    assert item_tokens(record) == [
        "word:big",
        "word:sleep",
        "word:private",
        "word:eye",
        "category:film noir",
        "attribute:year=1946",
    ]


def test_content_scores_cold_items_by_similarity(content_data):
    model = ContentKNN(k=5).fit(content_data.matrix(), data=content_data)
    fan = content_data.user_index["fan"]
    cold = content_data.item_index["cold"]

    scores = model.score(np.array([fan]))[0]

    assert scores.shape == (content_data.n_items,)
    assert scores[cold] > 0
    assert scores[cold] > scores[content_data.item_index["h0"]]
    assert model.recommend(np.array([fan]), 1, exclude=content_data.matrix())[0, 0] == cold


def test_recency_weighting_favours_the_newest_items():
    data = from_arrays(
        ["u", "u"], ["h0", "c0"], None, [0.0, 86_400.0 * 100], item_records=_catalog()
    )

    plain = ContentKNN(k=5).fit(data.matrix(), data=data)
    recent = ContentKNN(k=5, half_life_days=10.0).fit(data.matrix(), data=data)

    h0, c0 = data.item_index["h0"], data.item_index["c0"]
    assert plain.user_items[0, h0] == plain.user_items[0, c0] == pytest.approx(0.5)
    assert recent.user_items[0, c0] > 0.99
    top = recent.recommend(np.array([0]), 1, exclude=data.matrix())[0, 0]
    assert data.item_content is not None
    assert data.item_content[top].categories == ("Comedy",)


@pytest.mark.parametrize("data_kind", ["none", "no content"])
def test_content_needs_item_content(content_data, data_kind):
    without = from_arrays(["u", "v"], ["a", "b"])
    data = None if data_kind == "none" else without

    with pytest.raises(ValueError, match="needs `data` with item content"):
        ContentKNN().fit(without.matrix(), data=data)


def test_content_without_any_token_fails_clearly():
    data = from_arrays(["u", "v"], ["a", "b"], item_records={"a": ItemRecord(), "b": ItemRecord()})

    with pytest.raises(ValueError, match="no words, categories or attributes"):
        ContentKNN().fit(data.matrix(), data=data)


@pytest.mark.parametrize(
    "model",
    [
        ContentKNN(k=3, block_size=4, half_life_days=1.0),
        Hybrid(weight=0.3, reg=5.0),
        Hybrid(collab="itemknn"),
        Hybrid(collab="als", seed=3),
    ],
    ids=["content", "hybrid-ease", "hybrid-itemknn", "hybrid-als"],
)
def test_save_load_round_trip_gives_identical_scores(tmp_path, content_data, model: Recommender):
    model.fit(content_data.matrix(), data=content_data)

    model.save(tmp_path)
    loaded = type(model).load(tmp_path)

    assert loaded.hyperparameters == model.hyperparameters
    assert (loaded.n_users, loaded.n_items) == (content_data.n_users, content_data.n_items)
    users = _all_users(content_data)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz", "model.json"]


def test_hybrid_rejects_an_unknown_collaborative_model():
    with pytest.raises(ValueError, match="collab must be one of"):
        Hybrid(collab="bpr")  # type: ignore[arg-type]


def test_hybrid_without_content_weight_ranks_as_ease(content_data):
    train = content_data.matrix()
    users = _all_users(content_data)

    hybrid = Hybrid(weight=0.0, reg=5.0).fit(train, data=content_data)
    ease = EASE(reg=5.0).fit(train)

    np.testing.assert_array_equal(
        hybrid.recommend(users, 4, exclude=train), ease.recommend(users, 4, exclude=train)
    )


def test_cold_item_reaches_the_hybrid_top_k_but_not_ease(content_data):
    train = content_data.matrix()
    fan = np.array([content_data.user_index["fan"]])
    cold = content_data.item_index["cold"]
    assert train[:, cold].nnz == 0

    ease_top = EASE(reg=5.0).fit(train).recommend(fan, 3, exclude=train)[0]
    hybrid_top = Hybrid(weight=0.3, reg=5.0).fit(train, data=content_data)
    hybrid_items = hybrid_top.recommend(fan, 3, exclude=train)[0]

    assert cold not in ease_top
    assert cold in hybrid_items


def _movielens() -> InteractionData:
    """ML-100K from the cached recbole wheel; skipped without it, except on CI."""
    if not MOVIELENS_WHEEL.is_file():
        message = f"no {MOVIELENS_WHEEL}; run: python -m pip download --no-deps recbole==1.2.1"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return from_movielens_wheel(MOVIELENS_WHEEL)


def test_hybrid_beats_ease_on_movielens_validation():
    data = _movielens()
    split = random_split(data, seed=2020)
    started = time.perf_counter()

    ease = EASE(reg=500.0).fit(split.train)
    hybrid = Hybrid(weight=0.1, reg=500.0).fit(split.train, data=data)

    def valid_ndcg(model: Recommender) -> float:
        return evaluate_full_ranking(model, split.valid, split.train, split.train).metrics[
            "ndcg@10"
        ]

    assert valid_ndcg(hybrid) >= valid_ndcg(ease)
    print(f"ML-100K hybrid vs EASE: {time.perf_counter() - started:.1f} s")
