"""A small catalog with four clusters of taste, and models trained on it for real."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.cache import caches
from django.utils import timezone

from ml.models import TrainingRunStatus
from ml.services.training import training_run_execute
from ml.services.training_runs import training_run_create
from recommender.active_models import ACTIVE_MODELS
from recommender.merchandising import merchandising_rules_cache_clear
from recommender.trending import serving_caches_clear
from webapp.models import Category, EventType, Interaction, Item, Visitor

SERVING_PLAN = {
    "home": {"ease": {"reg": [10.0]}},
    "similar": {"itemknn": {"k": [20], "shrink": [0.0]}},
    "session": {"itemknn": {"k": [20], "shrink": [0.0]}},
}
CLUSTERS = 4
ITEMS_PER_CLUSTER = 8


@dataclass
class ServingWorld:
    clusters: list[list[Item]]
    categories: list[Category]

    def cluster_of(self, pk: int) -> int:
        return next(c for c, items in enumerate(self.clusters) if pk in {i.pk for i in items})


@pytest.fixture(autouse=True)
def _fresh_serving_state(settings: Any, tmp_path: Path) -> Iterator[None]:
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    settings.RECOMMENDER_MODEL_REFRESH_SECONDS = 0.0
    settings.RECOMMENDER_LATENCY_BUDGET_MS = 10_000.0  # a loaded CI box must not time out
    settings.RECOMMENDER_STATEMENT_TIMEOUT_MS = 10_000
    settings.RECOMMENDER_MAX_CATEGORY_SHARE = 1.0  # clusters are categories: tested apart
    reset_serving()
    yield
    reset_serving()


def reset_serving() -> None:
    ACTIVE_MODELS.clear()
    serving_caches_clear()
    merchandising_rules_cache_clear()
    caches["recommendations"].clear()


def build_world(*, visitors_per_cluster: int = 12) -> ServingWorld:
    """Items in four clusters (one category each); each visitor views 6 of one cluster."""
    rng = np.random.default_rng(7)
    categories = [
        Category.objects.create(name=f"Genre {c}", slug=f"genre-{c}") for c in range(CLUSTERS)
    ]
    clusters = [
        list(
            Item.objects.bulk_create(
                Item(external_id=f"sku-{c}-{i}", title=f"Film {c}-{i}", category=categories[c])
                for i in range(ITEMS_PER_CLUSTER)
            )
        )
        for c in range(CLUSTERS)
    ]
    start = timezone.now() - timedelta(days=3)
    events = []
    for members in clusters:
        for _ in range(visitors_per_cluster):
            visitor = Visitor.objects.create(consent_given_at=timezone.now())
            chosen = rng.choice(ITEMS_PER_CLUSTER, size=6, replace=False)
            for hour, index in enumerate(chosen):
                events.append(
                    Interaction(
                        event_id=uuid.uuid4(),
                        visitor=visitor,
                        item=members[index],
                        event_type=EventType.VIEW,
                        timestamp=start + timedelta(hours=hour, minutes=int(rng.integers(60))),
                    )
                )
    Interaction.objects.bulk_create(events)
    return ServingWorld(clusters, categories)


def train(plan: dict[str, Any] | None = None) -> None:
    run = training_run_create(trigger="test", plan=plan or SERVING_PLAN)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRunStatus.SUCCEEDED, run.error
    reset_serving()


@pytest.fixture
def world(db: Any) -> ServingWorld:
    """The clustered catalog with home/similar/session models active."""
    built = build_world()
    train()
    return built


def view(visitor: Visitor, item: Item, *, minutes_ago: float = 0.0, kind: str = "view") -> None:
    Interaction.objects.create(
        visitor=visitor,
        item=item,
        event_type=kind,
        value=5 if kind == EventType.RATING else None,
        timestamp=timezone.now() - timedelta(minutes=minutes_ago),
    )
    # As a new request would see it: the trigger bumped the row, not this instance.
    visitor.refresh_from_db(fields=["generation"])
