"""Next-item models (NextItNet, SASRec): causality, order, save/load, seeding, learning."""

from typing import Any

import numpy as np
import pytest
import torch

from ml.algorithms import registry
from ml.algorithms.nextitnet import NextItNet
from ml.algorithms.sasrec import SASRec
from ml.algorithms.sequences import (
    IGNORE,
    PAD,
    Sequences,
    padded,
    train_sequences,
    training_windows,
)
from ml.algorithms.sequential import SequentialRecommender
from ml.data.dataset import InteractionData, from_arrays
from ml.data.splits import Split, temporal_split

N_ITEMS = 20
TINY: dict[str, Any] = {
    "dim": 16,
    "dropout": 0.0,
    "max_length": 8,
    "epochs": 2,
    "batch_size": 16,
    "device": "cpu",
    "progress": False,
}
MODELS: list[tuple[type[SequentialRecommender], dict[str, Any]]] = [
    (NextItNet, {**TINY, "blocks": 4}),
    (SASRec, {**TINY, "layers": 2, "heads": 2}),
]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and threads crawl on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def successor_data() -> InteractionData:
    """60 users, each consuming 7 to 12 consecutive items i, i+1, ... (mod 20) in time."""
    rng = np.random.default_rng(11)
    users, items, times = [], [], []
    for user in range(60):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(7, 13))
        for step in range(length):
            users.append(f"u{user}")
            items.append(f"i{(start + step) % N_ITEMS}")
            times.append(1000.0 * user + step)
    catalog = [f"i{item}" for item in range(N_ITEMS)]
    # A first user holding the whole catalog in order fixes the item ids: "i<k>" is id k.
    users = ["first"] * N_ITEMS + users
    items = catalog + items
    times = [-1.0] * N_ITEMS + times
    return from_arrays(users, items, None, times)


@pytest.fixture(scope="module")
def successor_split(successor_data: InteractionData) -> Split:
    return temporal_split(successor_data)


def fitted(
    model_class: type[SequentialRecommender],
    settings: dict[str, Any],
    data: InteractionData,
    split: Split,
    **overrides: Any,
) -> SequentialRecommender:
    return model_class(**{**settings, **overrides}).fit(split.train, data=data)


def test_item_ids_follow_the_fixture_names(successor_data):
    assert successor_data.item_ids[:N_ITEMS] == tuple(f"i{k}" for k in range(N_ITEMS))


def test_train_sequences_are_time_ordered_and_hold_the_train_part_only(
    successor_data, successor_split
):
    sequences = train_sequences(successor_data, successor_split.train)

    for user in range(successor_data.n_users):
        np.testing.assert_array_equal(sequences.of(user), successor_split.train_sequence(user))
    assert len(sequences.items) == successor_split.train.nnz


def test_train_sequences_need_the_data(successor_split):
    with pytest.raises(ValueError, match="InteractionData"):
        train_sequences(None, successor_split.train)


def test_padding_keeps_the_most_recent_items_as_tokens():
    np.testing.assert_array_equal(padded(np.array([4, 5]), 4), [PAD, PAD, 5, 6])
    np.testing.assert_array_equal(padded(np.array([1, 2, 3, 4, 5]), 3), [4, 5, 6])


def test_training_windows_pair_each_position_with_the_next_item():
    sequences = Sequences(np.array([0, 1, 2, 3, 4, 7]), np.array([0, 5, 5, 6]))

    inputs, targets = training_windows(sequences, max_length=3)

    np.testing.assert_array_equal(inputs, [[2, 3, 4], [PAD, PAD, 1]])
    np.testing.assert_array_equal(targets, [[2, 3, 4], [IGNORE, IGNORE, 1]])


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_a_later_item_never_changes_an_earlier_prediction(
    successor_data, successor_split, model_class, settings
):
    model = fitted(model_class, settings, successor_data, successor_split)
    tokens = np.random.default_rng(0).integers(1, N_ITEMS + 1, size=(3, 8))
    tokens[2, :3] = PAD
    changed = tokens.copy()
    changed[:, 5] = tokens[:, 5] % N_ITEMS + 1

    before, after = model.position_scores(tokens), model.position_scores(changed)

    assert before.shape == (3, 8, N_ITEMS)
    np.testing.assert_array_equal(before[:, :5], after[:, :5])
    assert not np.allclose(before[:, 5:], after[:, 5:])


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_scores_have_one_float32_value_per_item(
    successor_data, successor_split, model_class, settings
):
    model = fitted(model_class, settings, successor_data, successor_split)

    scores = model.score(np.arange(successor_data.n_users))
    history = model.score_history(np.array([3, 4, 5]))

    assert scores.shape == (successor_data.n_users, N_ITEMS)
    assert scores.dtype == history.dtype == np.float32
    assert history.shape == (N_ITEMS,)
    np.testing.assert_allclose(
        model.item_vectors() @ model.history_vector(np.array([3, 4, 5])),
        history,
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_history_order_and_the_latest_click_change_the_scores(
    successor_data, successor_split, model_class, settings
):
    model = fitted(model_class, settings, successor_data, successor_split)
    history = np.array([2, 9, 14, 5])

    forward = model.score_history(history)

    assert not np.allclose(forward, model.score_history(history[::-1]))
    assert not np.allclose(forward, model.score_history(np.append(history, 11)))
    np.testing.assert_array_equal(
        forward, model.score_history(np.append(history, 11), np.array([1, 1, 1, 1, 0]))
    )


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
@pytest.mark.parametrize("items", [np.array([], dtype=np.int64), np.array([3, N_ITEMS])])
def test_bad_histories_are_refused(successor_data, successor_split, model_class, settings, items):
    model = fitted(model_class, settings, successor_data, successor_split)

    with pytest.raises(ValueError, match="item ids"):
        model.score_history(items)


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_save_load_round_trip_gives_identical_scores(
    tmp_path, successor_data, successor_split, model_class, settings
):
    model = fitted(model_class, settings, successor_data, successor_split)
    users = np.arange(successor_data.n_users)

    loaded = registry.load(model.save(tmp_path / "model"))

    assert isinstance(loaded, model_class)
    assert loaded.hyperparameters == model.hyperparameters
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    history = np.array([7, 1, 12])
    np.testing.assert_array_equal(loaded.score_history(history), model.score_history(history))


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_same_seed_same_scores_other_seed_other_scores(
    successor_data, successor_split, model_class, settings
):
    users = np.arange(successor_data.n_users)
    runs = [
        fitted(model_class, settings, successor_data, successor_split, seed=seed, dropout=0.2)
        for seed in (1, 1, 2)
    ]
    first, again, other = (run.score(users) for run in runs)

    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_learns_that_item_i_is_followed_by_item_i_plus_one(
    successor_data, successor_split, model_class, settings
):
    model = model_class(**{**settings, "epochs": 40, "patience": 40, "learning_rate": 0.01})
    model.fit(successor_split.train, data=successor_data, valid=successor_split.valid)
    starts = np.arange(N_ITEMS)
    histories = [(start + np.arange(4)) % N_ITEMS for start in starts]

    predicted = np.array([np.argmax(model.score_history(items)) for items in histories])
    hit_rate = np.mean(predicted == (starts + 4) % N_ITEMS)

    assert hit_rate >= 0.9
    assert model.report is not None and model.report.best_epoch >= 1


@pytest.mark.parametrize(("name", "model_class"), [("nextitnet", NextItNet), ("sasrec", SASRec)])
def test_registered_under_their_names(name, model_class):
    assert registry.algorithm_class(name) is model_class
    assert model_class.needs_data and model_class.uses_seed


@pytest.mark.parametrize(
    ("model_class", "settings"),
    [(NextItNet, {"blocks": 0}), (SASRec, {"dim": 10, "heads": 3}), (SASRec, {"dropout": 1.0})],
)
def test_bad_hyperparameters_are_refused(model_class, settings):
    with pytest.raises(ValueError, match="must"):
        model_class(**settings)
