"""New catalog items get semantic IDs from their content, through the task a crawl queues."""

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from django.utils import timezone

from ml.models import ModelRole, ModelVersion, ModelVersionStatus
from ml.services.semantic_ids import item_semantic_ids_assign
from ml.services.training import training_run_execute
from ml.services.training_runs import training_run_create
from ml.tasks import items_semantic_ids_assign
from tests.factories import CategoryFactory, ItemFactory
from webapp.celery import app
from webapp.models import Category, EventType, Interaction, Item, Visitor

pytestmark = pytest.mark.django_db

GENRES = {"space": "Sci-Fi", "love": "Romance", "ranch": "Western"}
ITEMS_PER_GENRE = 8
# Small enough to train in about a second (as at the end of test_semantic_ids.py).
TINY_PLAN: dict[str, Any] = {
    "home": {
        "semantic_ids": {
            "levels": [2],
            "codebook_size": [4],
            "content_dim": [8],
            "collab_dim": [8],
            "hidden": [16],
            "latent": [8],
            "epochs": [40],
            "progress": [False],
        }
    }
}
CODE = re.compile(r"^\d+-\d+-\d+$")  # two levels and the disambiguation token


@pytest.fixture(autouse=True)
def _one_thread_and_artifacts(settings: Any, tmp_path: Path) -> Iterator[None]:
    """Tiny tensors gain nothing from threads; each test saves models in its own folder."""
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _genre_catalog() -> dict[str, Category]:
    """Per genre a category with 8 items ("space story 3", ...) and 10 visitors who each
    view 5 of that genre's items; returns the categories by genre word."""
    rng = np.random.default_rng(4)
    start = timezone.now() - timedelta(days=10)
    categories: dict[str, Category] = {}
    events: list[Interaction] = []
    for word, name in GENRES.items():
        category = categories[word] = CategoryFactory.create(name=name, slug=name.lower())
        items = [
            ItemFactory.create(
                external_id=f"{word}{n}", title=f"{word} story {n}", category=category
            )
            for n in range(ITEMS_PER_GENRE)
        ]
        for _ in range(10):
            visitor = Visitor.objects.create()
            for hour, index in enumerate(rng.choice(ITEMS_PER_GENRE, size=5, replace=False)):
                events.append(
                    Interaction(
                        event_id=uuid.uuid4(),
                        visitor=visitor,
                        item=items[index],
                        event_type=EventType.VIEW,
                        timestamp=start + timedelta(hours=hour),
                    )
                )
    Interaction.objects.bulk_create(events)
    return categories


def _first_level(code: str) -> str:
    return code.split("-")[0]


def test_new_items_are_coded_from_content_by_the_newest_model() -> None:
    # Given a semantic-IDs model trained and promoted through the registry (which codes
    # the warm items), and a broken newer version that cannot be loaded
    categories = _genre_catalog()
    run = training_run_create(trigger="test", plan=TINY_PLAN)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    version = ModelVersion.objects.get(kind="semantic_ids", status=ModelVersionStatus.ACTIVE)
    ModelVersion.objects.create(
        kind="semantic_ids",
        role=ModelRole.SIMILAR,
        status=ModelVersionStatus.ACTIVE,
        artifact_path="similar/gone",
        trained_at=timezone.now(),
    )
    warm = dict(Item.objects.values_list("external_id", "semantic_id"))
    assert len(warm) == 3 * ITEMS_PER_GENRE and all(CODE.match(code) for code in warm.values())
    # and items a crawl just created, one per genre, unknown to the model
    titles = {"space": "space saga", "love": "love in paris", "ranch": "ranch at dawn"}
    new = {
        word: ItemFactory.create(external_id=f"new-{word}", title=title, category=categories[word])
        for word, title in titles.items()
    }

    # When the task the crawl queues runs (here in-process, as a worker would)
    assigned = items_semantic_ids_assign.apply(
        kwargs={"item_ids": [item.pk for item in new.values()]}
    ).get()

    # Then each new item has a well-formed code of that version, unique in the catalog
    assert assigned == 3
    codes = {}
    for word, item in new.items():
        item.refresh_from_db()
        assert CODE.match(item.semantic_id), item.semantic_id
        assert item.semantic_id_version_id == version.pk
        codes[word] = item.semantic_id
    assert len(set(Item.objects.values_list("semantic_id", flat=True))) == Item.objects.count()
    # and most share the first level most of their genre's warm items have
    matches = 0
    for word, code in codes.items():
        genre = [warm[f"{word}{n}"] for n in range(ITEMS_PER_GENRE)]
        usual = Counter(_first_level(c) for c in genre).most_common(1)[0][0]
        matches += _first_level(code) == usual
    assert matches >= 2, (codes, warm)
    # and repeating the task changes nothing
    assert item_semantic_ids_assign(item_ids=[item.pk for item in new.values()]) == 0

    # When a later batch brings an item whose content is the same as an earlier new one
    twin = ItemFactory.create(
        external_id="new-space-2", title="space saga", category=categories["space"]
    )
    assert item_semantic_ids_assign(item_ids=[twin.pk]) == 1

    # Then it gets the same coarse codes yet its own tuple
    twin.refresh_from_db()
    assert twin.semantic_id.rsplit("-", 1)[0] == codes["space"].rsplit("-", 1)[0]
    assert twin.semantic_id != codes["space"]


def test_without_a_semantic_ids_model_nothing_is_assigned() -> None:
    item = ItemFactory.create()
    ModelVersion.objects.create(
        kind="semantic_ids",
        role=ModelRole.HOME,
        artifact_path="home/never-written",
        trained_at=timezone.now(),
    )

    assert item_semantic_ids_assign(item_ids=[item.pk]) == 0
    assert item_semantic_ids_assign(item_ids=[]) == 0

    item.refresh_from_db()
    assert (item.semantic_id, item.semantic_id_version_id) == ("", None)


def test_crawls_queue_the_task_on_the_train_queue(settings: Any) -> None:
    name = settings.SCRAPER_NEW_ITEMS_TASK

    assert name == items_semantic_ids_assign.name == "ml.tasks.items_semantic_ids_assign"
    assert name in app.tasks
    assert app.amqp.router.route({}, name, (), {})["queue"].name == "train"
