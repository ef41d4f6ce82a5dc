"""TIGER-style generative retrieval: trie-constrained decoding, causality, save/load, learning."""

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from ml.algorithms import registry
from ml.algorithms.code_transformer import PAD, CodeTransformer, TokenLayout
from ml.algorithms.generative import TIGER
from ml.algorithms.prefix_trie import TIER_GAP, beam_search, prefix_trie
from ml.algorithms.sequences import padded
from ml.data.dataset import InteractionData, ItemRecord, from_arrays
from ml.data.splits import Split, temporal_split

N_ITEMS = 20
# Three levels of 4 codes hold 64 tuples, so most tuples are not items; the pairs (0, 0, 0)
# and (1, 0, 0) are shared by two items each and told apart by the disambiguation token.
CODES = np.array(
    [[item % 4, (item // 4) % 4, item // 16, 0] for item in range(N_ITEMS - 2)]
    + [[0, 0, 0, 1], [1, 0, 0, 1]]
)
TINY: dict[str, Any] = {
    "levels": 3,
    "codebook_size": 4,
    "dim": 16,
    "layers": 2,
    "heads": 2,
    "dropout": 0.0,
    "max_length": 6,
    "beam": 4,
    "epochs": 2,
    "batch_size": 16,
    "device": "cpu",
    "progress": False,
}


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
    records = {name: ItemRecord(title=f"item {name}", categories=(name[-1],)) for name in catalog}
    return from_arrays(
        ["first"] * N_ITEMS + users,
        catalog + items,
        None,
        [-1.0] * N_ITEMS + times,
        item_records=records,
    )


@pytest.fixture(scope="module")
def successor_split(successor_data: InteractionData) -> Split:
    return temporal_split(successor_data)


def fitted(data: InteractionData, split: Split, codes: Any = CODES, **overrides: Any) -> TIGER:
    model = TIGER(**{**TINY, **overrides})
    model.given_codes = codes
    return model.fit(split.train, data=data)


@pytest.fixture(scope="module")
def model(successor_data: InteractionData, successor_split: Split) -> TIGER:
    return fitted(successor_data, successor_split)


def test_item_ids_follow_the_fixture_names(successor_data):
    assert successor_data.item_ids[:N_ITEMS] == tuple(f"i{k}" for k in range(N_ITEMS))


def test_beam_search_yields_only_existing_allowed_items():
    trie = prefix_trie(CODES)
    rng = np.random.default_rng(0)
    allowed = torch.from_numpy(rng.random((5, N_ITEMS)) > 0.4)

    def random_log_probs(level: int, prefixes: torch.Tensor) -> torch.Tensor:
        # Favour codes of no item (3 at every level) so the trie has to refuse them.
        logits = torch.from_numpy(rng.normal(size=(*prefixes.shape[:2], 4)))
        logits[..., 3] += 5.0
        return torch.log_softmax(logits, dim=-1)

    result = beam_search(trie, random_log_probs, allowed, beam=3)

    assert result.items.shape == (5, 3)
    for row, items in enumerate(result.items.tolist()):
        decoded = [item for item in items if item >= 0]
        assert decoded and len(set(decoded)) == len(decoded)
        assert all(allowed[row, item] for item in decoded)
    assert torch.isinf(result.scores[~allowed]).all()
    assert torch.isfinite(result.scores[allowed]).all()
    # Decoded items carry joint log-probabilities, above every item that was cut short.
    best = result.scores.gather(1, result.items[:, :1])
    assert (best > -TIER_GAP / 2).all()
    assert (result.scores <= best).all()


def test_decoded_items_are_real_code_tuples_not_excluded(model, successor_split):
    users = np.arange(successor_split.n_users)
    rng = np.random.default_rng(3)
    excluded = [rng.choice(N_ITEMS, size=8, replace=False) for _ in users]
    exclude = sp.csr_matrix(
        (np.ones(8 * len(users)), (np.repeat(users, 8), np.concatenate(excluded))),
        shape=(len(users), N_ITEMS),
    )

    top = model.recommend(users, 10, exclude=exclude)
    scores = model.score(users)

    assert top.shape == (len(users), 10)
    assert set(top.ravel().tolist()) <= set(range(N_ITEMS))
    for user, items in zip(users, top, strict=True):
        assert not set(items.tolist()) & set(exclude[user].indices.tolist())
    assert np.isfinite(scores).all()


def test_codes_must_be_distinct_tuples_of_the_configured_shape(successor_data, successor_split):
    with pytest.raises(ValueError, match="distinct"):
        fitted(successor_data, successor_split, codes=np.zeros((N_ITEMS, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="levels"):
        fitted(successor_data, successor_split, codes=CODES[:, 1:])
    with pytest.raises(ValueError, match="codebook_size"):
        fitted(successor_data, successor_split, codes=CODES * 2)


def test_a_later_token_never_changes_an_earlier_state():
    torch.manual_seed(0)
    layout = TokenLayout((4, 4, 4, 2))
    network = CodeTransformer(layout, dim=16, layers=2, heads=2, slots=4, dropout=0.0).eval()
    tokens = torch.randint(1, layout.vocabulary, (3, 15))
    tokens[2, :4] = PAD
    changed = tokens.clone()
    changed[:, 9] = tokens[:, 9] % (layout.vocabulary - 1) + 1

    with torch.no_grad():
        before, _ = network.hidden(tokens)
        after, _ = network.hidden(changed)

    torch.testing.assert_close(before[:, :9], after[:, :9], rtol=0, atol=0)
    assert not torch.allclose(before[:, 9:], after[:, 9:])


def test_decoded_scores_are_the_teacher_forced_joint_log_probabilities(model):
    history = np.array([3, 4, 5, 6])
    network = model.network
    assert network is not None
    scores = model.score_history(history)
    decoded = np.flatnonzero(scores > -TIER_GAP / 2)
    item_tokens = torch.from_numpy(network.layout.item_tokens(model.codes))
    context = item_tokens[torch.from_numpy(padded(history, model.max_length))].flatten()

    assert 1 <= len(decoded) < N_ITEMS
    for item in decoded:
        tokens = torch.cat([context, item_tokens[item + 1][:-1]])[None, :]
        with torch.no_grad():
            states, _ = network.hidden(tokens)
        start = len(context) - 1
        joint = sum(
            torch.log_softmax(network.level_logits(states[0, start + level], level), -1)[
                model.codes[item, level]
            ].item()
            for level in range(4)
        )
        assert scores[item] == pytest.approx(joint, abs=1e-4)


def test_save_load_round_trip_gives_identical_scores(tmp_path, model, successor_data):
    users = np.arange(successor_data.n_users)

    loaded = registry.load(model.save(tmp_path / "model"))

    assert isinstance(loaded, TIGER)
    assert loaded.hyperparameters == model.hyperparameters
    np.testing.assert_array_equal(loaded.codes, model.codes)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    history = np.array([7, 1, 12])
    np.testing.assert_array_equal(loaded.score_history(history), model.score_history(history))


def test_history_order_and_the_latest_click_change_the_scores(model):
    history = np.array([2, 9, 14, 5])

    forward = model.score_history(history)

    assert not np.allclose(forward, model.score_history(history[::-1]))
    np.testing.assert_array_equal(
        forward, model.score_history(np.append(history, 11), np.array([1, 1, 1, 1, 0]))
    )


def test_same_seed_same_scores_other_seed_other_scores(successor_data, successor_split):
    users = np.arange(successor_data.n_users)
    runs = [fitted(successor_data, successor_split, seed=seed, dropout=0.2) for seed in (1, 1, 2)]
    first, again, other = (run.score(users) for run in runs)

    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_learns_that_item_i_is_followed_by_item_i_plus_one(successor_data, successor_split):
    model = TIGER(**{**TINY, "epochs": 30, "patience": 30, "learning_rate": 0.01})
    model.given_codes = CODES
    model.fit(successor_split.train, data=successor_data, valid=successor_split.valid)
    starts = np.arange(N_ITEMS)
    histories = [(start + np.arange(4)) % N_ITEMS for start in starts]

    predicted = np.array([np.argmax(model.score_history(items)) for items in histories])
    hit_rate = np.mean(predicted == (starts + 4) % N_ITEMS)

    # Chance is 1 in 20.
    assert hit_rate >= 0.9
    assert model.report is not None and model.report.best_epoch >= 1


def test_fit_codes_the_items_with_semantic_ids(successor_data, successor_split):
    model = TIGER(**{**TINY, "levels": 2, "semantic_dim": 4, "quantizer_epochs": 5})

    model.fit(successor_split.train, data=successor_data)

    assert model.codes.shape == (N_ITEMS, 3)
    assert len(np.unique(model.codes, axis=0)) == N_ITEMS
    assert (model.codes[:, :2] < 4).all()
    assert np.isfinite(model.score_history(np.array([0, 1]))).all()


def test_registered_under_its_name():
    assert registry.algorithm_class("tiger") is TIGER
    assert TIGER.needs_data and TIGER.uses_seed


@pytest.mark.parametrize(
    "settings", [{"dim": 10, "heads": 3}, {"beam": 0}, {"levels": 0}, {"dropout": 1.0}]
)
def test_bad_hyperparameters_are_refused(settings):
    with pytest.raises(ValueError, match="must"):
        TIGER(**settings)
