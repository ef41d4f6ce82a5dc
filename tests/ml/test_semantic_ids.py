"""Semantic IDs: the residual VQ-VAE, code accounting, disambiguation and the recommender."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from ml.algorithms import registry
from ml.algorithms.ease import EASE
from ml.algorithms.rqvae import (
    RQVAE,
    QuantizerConfig,
    code_statistics,
    disambiguated,
    residual_kmeans,
    residual_kmeans_reconstruction,
)
from ml.algorithms.semantic_ids import SemanticIDs
from ml.data.dataset import InteractionData, ItemRecord, from_arrays
from ml.data.splits import random_split
from ml.evaluation.isolated import evaluate_isolated
from ml.models import ModelRole, ModelVersion
from ml.services.artifacts import artifact_write
from ml.services.semantic_ids import SemanticIdError, item_semantic_ids_store
from tests.factories import ItemFactory
from webapp.models import Item

GENRES = {"space": "Sci-Fi", "love": "Romance", "ranch": "Western"}
TINY: dict[str, Any] = {
    "levels": 2,
    "codebook_size": 4,
    "content_dim": 6,
    "collab_dim": 4,
    "hidden": 16,
    "latent": 4,
    "epochs": 40,
    "weight": 1.0,
    "device": "cpu",
    "progress": False,
}
CONFIG = QuantizerConfig(codebook_sizes=(8, 8, 8), hidden=16, latent=4, epochs=5)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and threads crawl on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _record(word: str, number: int) -> ItemRecord:
    return ItemRecord(title=f"{word} story {number}", categories=(GENRES[word],))


@pytest.fixture
def genre_data() -> InteractionData:
    """30 users, each into one of three genres of 8 items; "space new" has no interactions."""
    rng = np.random.default_rng(11)
    records = {f"{word}{n}": _record(word, n) for word in GENRES for n in range(8)} | {
        "space-new": ItemRecord(title="space saga", categories=("Sci-Fi",))
    }
    users, items = [], []
    for user in range(30):
        word = list(GENRES)[user % 3]
        for n in rng.choice(8, size=5, replace=False):
            users.append(f"u{user}")
            items.append(f"{word}{n}")
    return from_arrays(users, items, item_records=records)


def _fit(data: InteractionData, **overrides: Any) -> SemanticIDs:
    return SemanticIDs(**{**TINY, **overrides}).fit(data.matrix(), data=data)


def test_rqvae_shapes() -> None:
    network = RQVAE(12, CONFIG)

    reconstruction, codes, commitment = network(torch.randn(40, 12))

    assert reconstruction.shape == (40, 12)
    assert codes.shape == (40, 3)
    assert int(codes.max()) < 8
    assert commitment.ndim == 0
    assert network.decode(codes[:, :1]).shape == (40, 12)


def test_straight_through_gradient_reaches_the_encoder() -> None:
    network = RQVAE(12, CONFIG).train()
    x = torch.randn(40, 12)
    network(x)  # the first pass initialises the codebooks by k-means
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str, tensor: torch.Tensor) -> None:
        tensor.register_hook(lambda gradient: seen.__setitem__(name, gradient))

    network.encoder.register_forward_hook(lambda _m, _i, output: keep("encoder", output))
    network.decoder.register_forward_pre_hook(lambda _m, inputs: keep("decoder", inputs[0]))
    reconstruction, _, _ = network(x)
    # The reconstruction alone: without straight-through it could not reach the encoder.
    F.mse_loss(reconstruction, x).backward()

    # Each level copies the gradient of the quantized sum to its residual input unchanged
    # (the library detaches codes along the residual chain), so the encoder gets it 3 times.
    torch.testing.assert_close(seen["encoder"], 3 * seen["decoder"])
    gradients = [parameter.grad for parameter in network.encoder.parameters()]
    assert all(gradient is not None and float(gradient.abs().sum()) > 0 for gradient in gradients)


def test_usage_perplexity_and_collisions_of_constructed_codes() -> None:
    codes = np.array([[0, 0], [1, 0], [2, 1], [3, 1], [3, 1]])

    stats = code_statistics(codes, (4, 4))

    # Level 1: four codes used (shares 1/5, 1/5, 1/5, 2/5); level 2: two of four (2/5, 3/5).
    assert stats.usage == (1.0, 0.5)
    level1 = np.exp(-(3 * 0.2 * np.log(0.2) + 0.4 * np.log(0.4)))
    level2 = np.exp(-(0.4 * np.log(0.4) + 0.6 * np.log(0.6)))
    assert stats.perplexity == pytest.approx((level1, level2))
    assert stats.collision_rate == pytest.approx(1 / 5)
    assert code_statistics(np.array([[0], [1]]), (2,)).perplexity == pytest.approx((2.0,))


@pytest.mark.parametrize(
    ("codes", "sizes"), [(np.array([[0, 4]]), (4, 4)), (np.array([[0, 1]]), (4,))]
)
def test_code_statistics_rejects_codes_that_do_not_fit(codes: np.ndarray, sizes: tuple) -> None:
    with pytest.raises(ValueError, match=r"codebook size|codes must be"):
        code_statistics(codes, sizes)


def test_disambiguation_makes_every_tuple_unique() -> None:
    codes = np.array([[1, 2], [1, 2], [0, 0], [1, 2], [0, 0]])

    tuples = disambiguated(codes)

    assert tuples[:, -1].tolist() == [0, 1, 0, 2, 1]
    assert len(np.unique(tuples, axis=0)) == len(codes)
    extended = disambiguated(np.array([[1, 2], [5, 5]]), taken=tuples)
    assert extended[:, -1].tolist() == [3, 0]


def test_residual_kmeans_error_falls_with_depth() -> None:
    x = np.random.default_rng(0).normal(size=(60, 5)).astype(np.float32)

    codebooks = residual_kmeans(x, (6, 6))
    errors = [np.mean((x - residual_kmeans_reconstruction(x, codebooks[:d])) ** 2) for d in (1, 2)]

    assert errors[1] < errors[0] < np.mean((x - x.mean(axis=0)) ** 2)


def test_fit_codes_every_item_uniquely_and_reports_the_quantizer(
    genre_data: InteractionData,
) -> None:
    model = _fit(genre_data)

    assert model.codes.shape == (genre_data.n_items, 3)
    assert len(np.unique(model.codes, axis=0)) == genre_data.n_items
    report = model.evaluation_report()
    assert len(report["codebook_usage"]) == len(report["perplexity"]) == 2
    assert all(0 < usage <= 1 for usage in report["codebook_usage"])
    assert 0 <= report["collision_rate"] < 1
    assert report["reconstruction_mse"] > 0 and report["baseline_reconstruction_mse"] > 0
    assert model.semantic_id(0) == "-".join(str(code) for code in model.codes[0])


def test_same_seed_gives_the_same_codes_and_scores(genre_data: InteractionData) -> None:
    first, second = _fit(genre_data, seed=3), _fit(genre_data, seed=3)

    np.testing.assert_array_equal(first.codes, second.codes)
    np.testing.assert_array_equal(first.score(np.arange(5)), second.score(np.arange(5)))


def test_save_and_load_round_trip(genre_data: InteractionData, tmp_path: Path) -> None:
    model = _fit(genre_data, weight=0.5)
    history = np.array([0, 3, 7])

    loaded = registry.load(model.save(tmp_path / "model"))

    assert isinstance(loaded, SemanticIDs)
    np.testing.assert_array_equal(loaded.codes, model.codes)
    np.testing.assert_allclose(loaded.score_history(history), model.score_history(history))
    assert loaded.evaluation_report() == model.evaluation_report()
    new = [ItemRecord(title="love letters", categories=("Romance",))]
    np.testing.assert_array_equal(loaded.add_items(new), model.add_items(new))
    np.testing.assert_array_equal(loaded.codes, model.codes)


def test_cold_item_is_coded_from_content_and_reaches_users_of_its_prefix(
    genre_data: InteractionData,
) -> None:
    # Given a model whose quantizer never saw the cold "space-new" item
    model = _fit(genre_data)
    cold = genre_data.item_index["space-new"]
    space = [genre_data.item_index[f"space{n}"] for n in range(8)]
    # then its content puts it under the first-level code of most sci-fi items
    first_codes = model.codes[space, 0]
    assert model.codes[cold, 0] == np.bincount(first_codes).argmax()
    # and a visitor who likes items of that prefix gets it ranked above items of others
    fans = [item for item in space if model.codes[item, 0] == model.codes[cold, 0]]
    scores = model.score_history(np.array(fans))
    others = np.flatnonzero(model.codes[:, 0] != model.codes[cold, 0])
    assert scores[cold] > scores[others].max()


def test_added_item_gets_a_new_tuple_at_once(genre_data: InteractionData) -> None:
    model = _fit(genre_data)
    before = model.n_items
    space = [genre_data.item_index[f"space{n}"] for n in range(8)]
    love = [genre_data.item_index[f"love{n}"] for n in range(8)]

    added = model.add_items(
        [_record("space", 99), ItemRecord(title="love in paris", categories=("Romance",))]
    )

    assert added.tolist() == [before, before + 1]
    assert len(np.unique(model.codes, axis=0)) == model.n_items
    space_scores = model.score_history(np.array(space))
    love_scores = model.score_history(np.array(love))
    assert space_scores[added[0]] > space_scores[added[1]]
    assert love_scores[added[1]] > love_scores[added[0]]
    assert model.recommend(np.array([0]), 3).shape == (1, 3)


def test_fit_needs_content_and_enough_items(genre_data: InteractionData) -> None:
    bare = from_arrays(["u1", "u2"], ["i1", "i2"])
    with pytest.raises(ValueError, match="item content"):
        SemanticIDs(**TINY).fit(bare.matrix(), data=bare)
    with pytest.raises(ValueError, match="fewer than the 64 codes"):
        _fit(genre_data, codebook_size=64)


def test_evaluate_reports_quantizer_figures(genre_data: InteractionData) -> None:
    split = random_split(genre_data, seed=1)
    grid = {name: [value] for name, value in TINY.items()}

    (row,) = evaluate_isolated(["semantic_ids"], {"semantic_ids": grid}, split, 1, genre_data)

    assert 0 <= row["ndcg@10"] <= 1
    assert len(row["codebook_usage"]) == len(row["perplexity"]) == 2
    for name in ("collision_rate", "reconstruction_mse", "baseline_reconstruction_mse"):
        assert isinstance(row[name], float)


def _version(data: InteractionData, model: Any, path: str) -> ModelVersion:
    """A candidate version row whose saved artifact is `model`."""
    artifact_write(
        root=Path(settings.ML_ARTIFACT_DIR),
        relative_path=path,
        model=model,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
    )
    return ModelVersion.objects.create(
        kind=model.name, role=ModelRole.SIMILAR, artifact_path=path, trained_at=timezone.now()
    )


@pytest.mark.django_db
def test_codes_are_stored_on_items_and_shown_by_the_api(
    genre_data: InteractionData,
    tmp_path: Path,
    settings: Any,
    api_client: APIClient,
    admin_client: Client,
) -> None:
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    model = _fit(genre_data)
    version = _version(genre_data, model, "similar/semantic")
    ItemFactory(external_id="space0")
    ItemFactory(external_id="love3")
    stranger = ItemFactory.create(external_id="not-in-the-model")

    assert item_semantic_ids_store(version=version) == 2

    index = genre_data.item_index["space0"]
    stored = Item.objects.get(external_id="space0")
    assert stored.semantic_id == model.semantic_id(index)
    assert stored.semantic_id_version_id == version.pk
    stranger.refresh_from_db()
    assert (stranger.semantic_id, stranger.semantic_id_version_id) == ("", None)
    prefix = f"{model.codes[index, 0]}-"
    assert Item.objects.filter(semantic_id__startswith=prefix).filter(pk=stored.pk).exists()
    url = reverse("api-item-detail", kwargs={"external_id": "space0"})
    body = api_client.get(url).json()
    assert (body["semantic_id"], body["semantic_id_version"]) == (stored.semantic_id, version.pk)
    page = admin_client.get(reverse("admin:webapp_item_change", args=[stored.pk]))
    assert stored.semantic_id in page.content.decode()


@pytest.mark.django_db
def test_a_version_without_semantic_ids_is_refused(
    genre_data: InteractionData, tmp_path: Path, settings: Any
) -> None:
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    version = _version(genre_data, EASE().fit(genre_data.matrix()), "similar/ease")
    ItemFactory(external_id="space0")

    with pytest.raises(SemanticIdError, match="has no semantic IDs"):
        item_semantic_ids_store(version=version)
    assert Item.objects.get(external_id="space0").semantic_id == ""


@pytest.mark.django_db
def test_a_promoted_semantic_ids_model_writes_its_codes_on_the_items(
    settings: Any, tmp_path: Any
) -> None:
    from tests.ml.test_registry import create_clustered_interactions, run_plan
    from webapp.models import Item

    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    create_clustered_interactions()
    tiny: dict[str, list[Any]] = {"levels": [2], "codebook_size": [4], "content_dim": [8]}
    tiny |= {"collab_dim": [8], "hidden": [16], "latent": [8], "epochs": [40], "progress": [False]}

    run = run_plan({"home": {"semantic_ids": tiny}})

    assert run.status == "succeeded", run.error
    codes = list(Item.objects.values_list("semantic_id", "semantic_id_version__kind"))
    assert codes and all(code.count("-") == 2 and kind == "semantic_ids" for code, kind in codes)
    assert len({code for code, _ in codes}) == len(codes)  # disambiguated: one per item
