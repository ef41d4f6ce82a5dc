"""PyTorch models: device choice, seeding, early stopping, validation NDCG, save and load."""

import io
import sys
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from ml.algorithms import registry
from ml.algorithms.base import Recommender
from ml.algorithms.multvae import MultVAE
from ml.algorithms.recvae import RecVAE
from ml.algorithms.torch_training import (
    EarlyStopping,
    RankingValidator,
    resolve_device,
    seeded,
    show_progress,
    train_epochs,
)
from ml.data.splits import random_split
from ml.evaluation.metrics import evaluate_full_ranking
from ml.evaluation.protocol import tune_and_evaluate

CPU = torch.device("cpu")
TINY: dict[str, Any] = {
    "hidden": 16,
    "latent": 8,
    "epochs": 4,
    "batch_size": 8,
    "device": "cpu",
    "progress": False,
}
MODELS: list[tuple[type[Recommender], dict[str, Any]]] = [
    (MultVAE, TINY),
    (RecVAE, {**TINY, "encoder_passes": 2}),
]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and threads crawl on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def train_valid(train_matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The fixture matrix with about a fifth of its entries moved to a validation part."""
    coo = train_matrix.tocoo()
    held = np.random.default_rng(5).random(coo.nnz) < 0.2
    parts = [
        sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)
        for keep in (~held, held)
    ]
    return parts[0], parts[1]


def test_auto_device_is_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"

    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == CPU
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")


def test_seeded_block_restores_the_callers_random_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)

    with seeded(7, CPU) as rng:
        inside = torch.rand(3)
    with seeded(7, CPU):
        again = torch.rand(3)

    assert isinstance(rng, np.random.Generator)
    assert torch.equal(inside, again)
    assert not torch.equal(inside, expected)
    assert torch.equal(torch.rand(3), expected)


def test_progress_bar_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())

    assert not show_progress(True)
    assert not show_progress(False)


def test_early_stopping_counts_misses_and_keeps_the_best_weights():
    layer = nn.Linear(1, 1)
    stopper = EarlyStopping(patience=2)
    stops = []
    for epoch, score in enumerate([0.1, 0.3, 0.3, 0.2], start=1):
        nn.init.constant_(layer.weight, epoch)
        stops.append(stopper.update(epoch, score, layer))

    stopper.restore(layer)

    assert stops == [False, False, False, True]
    assert (stopper.best_epoch, stopper.best_score) == (2, 0.3)
    assert stopper.history == [0.1, 0.3, 0.3, 0.2]
    assert layer.weight.item() == 2.0


def test_training_stops_early_and_restores_the_best_epoch():
    layer = nn.Linear(1, 1)
    scores = iter([0.1, 0.5, 0.4, 0.3, 0.2, 0.6, 0.7])
    seen: list[tuple[int, dict[str, float]]] = []

    def run_epoch(epoch: int) -> float:
        nn.init.constant_(layer.weight, epoch)
        return 1.0 / epoch

    report = train_epochs(
        layer,
        run_epoch,
        epochs=7,
        validate=lambda: next(scores),
        patience=3,
        progress=False,
        on_epoch=lambda epoch, metrics: seen.append((epoch, dict(metrics))),
    )

    assert (report.epochs_run, report.best_epoch) == (5, 2)
    assert layer.weight.item() == 2.0
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4, 5]
    assert seen[1][1] == {"loss": 0.5, "ndcg@10": 0.5}
    assert report.history[1] == seen[1][1]


def test_training_without_validation_runs_every_epoch():
    report = train_epochs(nn.Linear(1, 1), lambda epoch: 0.0, epochs=3, progress=False)

    assert (report.epochs_run, report.best_epoch) == (3, 3)
    assert report.history == ({"loss": 0.0},) * 3


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_torch_ndcg_matches_the_evaluation_metric(train_valid, model_class, settings):
    train, valid = train_valid
    model = model_class(**settings).fit(train)

    scores = RankingValidator(train, valid, CPU)(lambda users: torch.from_numpy(model.score(users)))
    expected = evaluate_full_ranking(model, valid, train, train).metrics["ndcg@10"]

    assert scores == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_same_seed_same_scores_other_seed_other_scores(train_matrix, model_class, settings):
    users = np.arange(train_matrix.shape[0])

    first = model_class(**settings, seed=1).fit(train_matrix).score(users)
    again = model_class(**settings, seed=1).fit(train_matrix).score(users)
    other = model_class(**settings, seed=2).fit(train_matrix).score(users)

    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_fit_with_validation_keeps_the_best_epoch(train_valid, model_class, settings):
    train, valid = train_valid
    model = model_class(**{**settings, "epochs": 12, "patience": 3}).fit(train, valid=valid)

    report = model.report
    final = RankingValidator(train, valid, CPU)(lambda users: torch.from_numpy(model.score(users)))

    assert report is not None
    assert 1 <= report.best_epoch <= report.epochs_run <= 12
    assert final == pytest.approx(max(entry["ndcg@10"] for entry in report.history))
    assert final == pytest.approx(report.history[report.best_epoch - 1]["ndcg@10"])


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_save_load_round_trip_on_cpu(tmp_path, train_matrix, model_class, settings):
    model = model_class(**settings).fit(train_matrix)
    users = np.arange(train_matrix.shape[0])

    loaded = model_class.load(model.save(tmp_path / "model"))

    assert loaded.hyperparameters == model.hyperparameters
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    assert model.score(users).dtype == np.float32


@pytest.mark.parametrize(("model_class", "settings"), MODELS)
def test_models_report_every_epoch(train_matrix, model_class, settings):
    model = model_class(**settings)
    seen: list[int] = []
    model.on_epoch = lambda epoch, metrics: seen.append(epoch)

    model.fit(train_matrix)

    assert seen == list(range(1, settings["epochs"] + 1))
    assert model.report is not None and model.report.epochs_run == settings["epochs"]


def test_recvae_prior_holds_the_last_encoder(train_matrix):
    model = RecVAE(**TINY).fit(train_matrix)
    network = model.network

    assert network is not None
    previous = network.prior.previous_encoder.state_dict()
    for name, tensor in network.encoder.state_dict().items():
        assert torch.equal(previous[name], tensor)


def test_protocol_gives_the_validation_part_to_fit(monkeypatch, small_data):
    monkeypatch.setitem(registry.ALGORITHMS, "multvae", MultVAE)
    split = random_split(small_data, seed=4)

    result = tune_and_evaluate("multvae", {key: [value] for key, value in TINY.items()}, split)

    assert isinstance(result.model, MultVAE)
    assert result.model.report is not None
    assert "ndcg@10" in result.model.report.history[0]
    assert result.model.hyperparameters["seed"] == 2020
