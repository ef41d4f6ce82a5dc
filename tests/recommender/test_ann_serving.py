"""Serving through the ANN index: saved with the artifact once, read back by every process."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ml.models import ModelVersion, ModelVersionStatus
from recommender.active_models import ACTIVE_MODELS, ANN_DIR, stored_vector_index
from recommender.ann import ItemVectorIndex
from recommender.candidates import Section
from recommender.selectors import Served, home_shelves, item_shelves
from tests.recommender.conftest import ServingWorld, build_world, reset_serving, train, view
from webapp.models import Visitor

pytestmark = pytest.mark.django_db

ALS_PLAN = {
    role: {"als": {"factors": [8], "regularization": [0.1], "alpha": [2.0], "iterations": [10]}}
    for role in ("home", "similar", "session")
}


@pytest.fixture
def als_world(db: Any) -> ServingWorld:
    """The clustered catalog (32 items) with ALS active in every role."""
    built = build_world()
    train(ALS_PLAN)
    return built


def ann_folder(role: str, settings: Any) -> Path:
    version = ModelVersion.objects.get(role=role, status=ModelVersionStatus.ACTIVE)
    return Path(settings.ML_ARTIFACT_DIR) / version.artifact_path / ANN_DIR


def shown(served: Served, section: str) -> list[int]:
    shelf = served.shelf(section)
    assert shelf is not None and shelf.fallback == ""
    return [entry.card.pk for entry in shelf.items]


def exact_then_ann(settings: Any, serve: Any) -> tuple[Served, Served]:
    """The same request served by exact scoring, then (fresh caches) through the index."""
    exact = serve()
    reset_serving()
    settings.RECOMMENDER_ANN_THRESHOLD = 10
    return exact, serve()


def test_item_page_is_served_through_a_saved_index_with_the_exact_results(
    als_world: ServingWorld, settings: Any
) -> None:
    item = als_world.clusters[1][0]
    assert not ann_folder("similar", settings).exists()

    exact, ann = exact_then_ann(settings, lambda: item_shelves(visitor=None, item_pk=item.pk, k=5))

    assert (ann_folder("similar", settings) / "meta.json").is_file()
    assert ACTIVE_MODELS.get("similar").vector_index() is not None
    assert shown(ann, Section.SIMILAR) == shown(exact, Section.SIMILAR)
    assert len(shown(ann, Section.SIMILAR)) == 5 and item.pk not in shown(ann, Section.SIMILAR)


def test_top_picks_through_the_index_equal_exact_scoring(
    als_world: ServingWorld, settings: Any
) -> None:
    visitor = Visitor.objects.create()
    for minutes, item in enumerate(als_world.clusters[2][:3]):
        view(visitor, item, minutes_ago=10 - minutes)

    exact, ann = exact_then_ann(settings, lambda: home_shelves(visitor=visitor, k=4))

    assert (ann_folder("home", settings) / "meta.json").is_file()
    assert shown(ann, Section.TOP_PICKS) == shown(exact, Section.TOP_PICKS)
    assert shown(ann, Section.BECAUSE_VIEWED) == shown(exact, Section.BECAUSE_VIEWED)


def test_another_process_reads_the_saved_index_instead_of_building_one(
    als_world: ServingWorld, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RECOMMENDER_ANN_THRESHOLD = 10
    item = als_world.clusters[0][2]
    first = item_shelves(visitor=None, item_pk=item.pk, k=4)
    reset_serving()  # as a fresh worker: nothing loaded in memory

    def no_build(*args: Any, **kwargs: Any) -> ItemVectorIndex:
        raise AssertionError("the saved index should have been read")

    monkeypatch.setattr(ItemVectorIndex, "from_vectors", no_build)
    second = item_shelves(visitor=None, item_pk=item.pk, k=4)

    assert shown(second, Section.SIMILAR) == shown(first, Section.SIMILAR)


def test_an_index_that_does_not_fit_the_vectors_is_replaced_in_memory(tmp_path: Path) -> None:
    folder = tmp_path / ANN_DIR
    rng = np.random.default_rng(0)
    ItemVectorIndex.from_vectors(rng.standard_normal((20, 4)).astype(np.float32)).save(folder)
    vectors = rng.standard_normal((30, 4)).astype(np.float32)

    index = stored_vector_index(folder, vectors)

    assert len(index) == 30
    assert index.search(vectors[3], 1)[0].tolist() == [int(np.argmax(vectors @ vectors[3]))]
