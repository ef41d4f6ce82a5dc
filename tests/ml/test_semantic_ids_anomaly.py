"""Anomaly scores of semantic IDs: content unlike the catalog reconstructs badly, and the score
reaches the item rows, the item admin and the API."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from ml.algorithms import registry
from ml.algorithms.semantic_ids import SemanticIDs
from ml.data.dataset import InteractionData, ItemRecord, from_arrays
from ml.models import ModelVersion, ModelVersionStatus
from ml.services.semantic_ids import item_semantic_ids_store
from ml.services.training import training_run_execute
from ml.services.training_runs import training_run_create
from ml.tasks import items_semantic_ids_assign
from tests.factories import ItemFactory
from tests.ml.test_semantic_ids import GENRES, TINY, _record, _version
from tests.ml.test_semantic_ids_new_items import TINY_PLAN, _genre_catalog
from webapp.models import Item
from webapp.selectors.catalog import item_anomaly_threshold

# Enough steps for the tiny quantizer to reconstruct typical items well (about a second):
# at TINY's 40 its error is still close to the embeddings' variance for every item.
TRAINED: dict[str, Any] = {**TINY, "epochs": 200}
GARBAGE = ItemRecord(title="xq7zv kkwp0 ttrz", categories=())
# Garbage none of whose words the catalog has: it embeds as an empty content row.
NEW_GARBAGE = ItemRecord(title="zzq#@ wq0rr 7vvk!", categories=())


@pytest.fixture(autouse=True)
def _one_thread_and_artifacts(settings: Any, tmp_path: Path) -> Iterator[None]:
    """Tiny tensors gain nothing from threads; each test saves models in its own folder."""
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data_with_junk() -> InteractionData:
    """The three-genre catalog of test_semantic_ids plus "junk", a scrape gone wrong (random
    characters, no category) that a few users of every genre still viewed."""
    rng = np.random.default_rng(11)
    records = {f"{word}{n}": _record(word, n) for word in GENRES for n in range(8)}
    records["junk"] = GARBAGE
    users, items = [], []
    for user in range(30):
        word = list(GENRES)[user % 3]
        picked = [f"{word}{n}" for n in rng.choice(8, size=5, replace=False)]
        picked += ["junk"] if user % 10 == 0 else []
        users += [f"u{user}"] * len(picked)
        items += picked
    return from_arrays(users, items, item_records=records)


def _fit(data: InteractionData, **overrides: Any) -> SemanticIDs:
    return SemanticIDs(**{**TRAINED, **overrides}).fit(data.matrix(), data=data)


@pytest.mark.parametrize("seed", [0, 1])
def test_garbage_content_scores_above_every_typical_item(
    data_with_junk: InteractionData, seed: int
) -> None:
    model = _fit(data_with_junk, seed=seed)
    scores = model.anomaly_scores()
    junk = data_with_junk.item_index["junk"]
    typical = np.delete(scores, junk)

    assert scores.shape == (data_with_junk.n_items,)
    assert np.median(scores) == pytest.approx(1.0)  # scaled to the catalog's median
    assert scores[junk] > 2 * typical.max()
    # and a new garbage item (no known word at all) scores far above a typical new item
    added = model.add_items([NEW_GARBAGE, ItemRecord(title="space story", categories=("Sci-Fi",))])
    garbage, plain = model.anomaly_scores(added)
    assert garbage > 2 * typical.max()
    assert plain < np.median(typical)
    empty = model.add_items([ItemRecord()])  # no title, no category: nothing to embed
    assert model.anomaly_scores(empty)[0] > 2 * typical.max()


def test_scores_survive_saving_and_new_items_keep_the_scale(
    data_with_junk: InteractionData, tmp_path: Path
) -> None:
    model = _fit(data_with_junk)

    loaded = registry.load(model.save(tmp_path / "model"))

    assert isinstance(loaded, SemanticIDs)
    np.testing.assert_allclose(loaded.anomaly_scores(), model.anomaly_scores())
    new = [NEW_GARBAGE, ItemRecord(title="love letters", categories=("Romance",))]
    np.testing.assert_allclose(
        loaded.anomaly_scores(loaded.add_items(new)), model.anomaly_scores(model.add_items(new))
    )


def test_a_model_saved_before_scores_existed_has_none(
    data_with_junk: InteractionData, tmp_path: Path
) -> None:
    model = _fit(data_with_junk)
    folder = model.save(tmp_path / "model")
    arrays_file = next(folder.glob("*.npz"))
    with np.load(arrays_file) as stored:
        arrays = {key: stored[key] for key in stored.files if not key.startswith("anomaly")}
    np.savez(arrays_file, **arrays)  # type: ignore[arg-type]

    loaded = registry.load(folder)

    assert isinstance(loaded, SemanticIDs)
    assert np.isnan(loaded.anomaly_scores()).all()
    assert np.isnan(loaded.anomaly_scores(loaded.add_items([NEW_GARBAGE]))).all()


@pytest.mark.django_db
def test_storing_a_version_writes_its_scores_on_the_items(
    data_with_junk: InteractionData,
) -> None:
    model = _fit(data_with_junk)
    version = _version(data_with_junk, model, "similar/semantic")
    ItemFactory(external_id="junk", title=GARBAGE.title, category=None)
    ItemFactory(external_id="space0")
    stranger = ItemFactory.create(external_id="not-in-the-model")

    assert item_semantic_ids_store(version=version) == 2

    stored = dict(Item.objects.values_list("external_id", "anomaly_score"))
    for external in ("junk", "space0"):
        expected = model.anomaly_scores()[data_with_junk.item_index[external]]
        assert stored[external] == pytest.approx(expected)
    assert stored[stranger.external_id] is None


@pytest.fixture
def promoted() -> ModelVersion:
    """The genre catalog of the new-items tests with a semantic-IDs model trained and promoted
    through the registry."""
    _genre_catalog()
    plan = {"home": {"semantic_ids": {**TINY_PLAN["home"]["semantic_ids"], "epochs": [200]}}}
    run = training_run_create(trigger="test", plan=plan)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return ModelVersion.objects.get(kind="semantic_ids", status=ModelVersionStatus.ACTIVE)


@pytest.mark.django_db
def test_promotion_scores_the_catalog(promoted: ModelVersion) -> None:
    stored = list(Item.objects.values_list("anomaly_score", flat=True))
    scores = [score for score in stored if score is not None]

    assert stored and len(scores) == len(stored) and min(scores) > 0
    assert np.median(scores) == pytest.approx(1.0, rel=0.25)  # the fit catalog's median is 1


@pytest.mark.django_db
def test_new_garbage_item_is_scored_and_listed_first_as_anomalous(
    promoted: ModelVersion, admin_client: Client, api_client: APIClient
) -> None:
    # Given items a crawl just created: one plain, one a broken scrape
    plain = ItemFactory.create(external_id="new-plain", title="space story", category=None)
    junk = ItemFactory.create(external_id="new-junk", title=NEW_GARBAGE.title, category=None)
    warm = Item.objects.exclude(pk__in=[plain.pk, junk.pk]).filter(anomaly_score__isnull=False)
    warm_max = max(score or 0.0 for score in warm.values_list("anomaly_score", flat=True))

    # When the task the crawl queues codes them
    assert items_semantic_ids_assign.apply(kwargs={"item_ids": [plain.pk, junk.pk]}).get() == 2

    # Then both are scored by the promoted version, the broken scrape far above the rest
    plain.refresh_from_db()
    junk.refresh_from_db()
    assert junk.semantic_id_version_id == promoted.pk
    assert plain.anomaly_score is not None and junk.anomaly_score is not None
    assert warm_max > 0
    assert junk.anomaly_score > 2 * max(warm_max, plain.anomaly_score)
    assert item_anomaly_threshold() is not None
    # and the admin's "anomalous content" filter lists it first (and only it: top 1%)
    url = reverse("admin:webapp_item_changelist")
    page = admin_client.get(url, {"anomalous": "top"})
    assert page.status_code == 200
    listed = [item.pk for item in page.context["cl"].result_list]
    assert listed[0] == junk.pk
    assert plain.pk not in listed
    assert "anomaly score (1 = typical)" in page.content.decode().lower()
    # and the full list sorts by the column, most anomalous first, unscored items last
    unscored = ItemFactory.create(external_id="unscored")
    column = page.context["cl"].list_display.index("anomaly")
    ranked = admin_client.get(url, {"o": f"-{column}"}).context["cl"].result_list
    assert [ranked[0].pk, ranked[len(ranked) - 1].pk] == [junk.pk, unscored.pk]
    # and the API shows the score next to the semantic ID
    body = api_client.get(reverse("api-item-detail", kwargs={"external_id": "new-junk"})).json()
    assert body["anomaly_score"] == pytest.approx(junk.anomaly_score)
    assert body["semantic_id"] == junk.semantic_id
