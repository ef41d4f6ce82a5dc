"""The Django edge of `ml`: datasets read from the interaction log and the catalog;
the model registry's reads."""

import json
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import QuerySet

from ml.data.dataset import DEFAULT_EVENT_WEIGHTS, InteractionData, ItemRecord, from_arrays
from ml.models import ModelVersion, ModelVersionStatus, TrainingRun, TrainingRunStatus
from ml.services.artifacts import LoadedArtifact, artifact_read
from webapp.models import Category, Interaction, Item

# Every rating counts as a positive interaction (as in RecBole's ML-100K defaults).
DATABASE_EVENT_WEIGHTS: Mapping[str, float] = {**DEFAULT_EVENT_WEIGHTS, "rating": 1.0}
READ_CHUNK_SIZE = 50_000


def interaction_data_from_database(
    *,
    event_weights: Mapping[str, float] = DATABASE_EVENT_WEIGHTS,
    since: datetime | None = None,
) -> InteractionData:
    """The interaction log as a dataset: bots and non-item events left out, one row per
    (visitor, item) keeping the largest event weight (latest timestamp); item content from
    the catalog, whose active items without interactions join the item vocabulary."""
    events = Interaction.objects.filter(
        is_bot=False, item__isnull=False, event_type__in=list(event_weights)
    )
    if since is not None:
        events = events.filter(timestamp__gte=since)
    rows = list(
        events.order_by("timestamp", "pk")
        .values_list("visitor_id", "item__external_id", "event_type", "timestamp")
        .iterator(chunk_size=READ_CHUNK_SIZE)
    )
    users = [row[0] for row in rows]
    items = [row[1] for row in rows]
    weights = np.array([event_weights[row[2]] for row in rows], dtype=np.float32)
    timestamps = np.array([row[3].timestamp() for row in rows], dtype=np.float64)
    return from_arrays(
        users,
        items,
        weights,
        timestamps,
        item_records=catalog_item_records(include=set(items)),
        on_duplicate="max",
        source="database",
    )


def catalog_item_records(*, include: Collection[str] = ()) -> dict[str, ItemRecord]:
    """Content of the active catalog items and of those in `include`, by external id.

    Categories are the path from the root category down to the item's own.
    """
    paths = _category_paths()
    records: dict[str, ItemRecord] = {}
    catalog = Item.objects.order_by("pk").values_list(
        "external_id", "title", "description", "category_id", "attributes", "is_active"
    )
    for external_id, title, description, category_id, attributes, is_active in catalog.iterator(
        chunk_size=READ_CHUNK_SIZE
    ):
        if is_active or external_id in include:
            records[external_id] = ItemRecord(
                title=title,
                categories=paths.get(category_id, ()) if category_id is not None else (),
                description=description,
                attributes=_attribute_strings(attributes),
            )
    return records


def item_records_by_pk(*, item_ids: Collection[int]) -> dict[int, ItemRecord]:
    """Content of the given catalog items (active or not), by primary key, as
    `catalog_item_records` builds it."""
    paths = _category_paths()
    rows = Item.objects.filter(pk__in=list(item_ids)).values_list(
        "pk", "title", "description", "category_id", "attributes"
    )
    return {
        pk: ItemRecord(
            title=title,
            categories=paths.get(category_id, ()) if category_id is not None else (),
            description=description,
            attributes=_attribute_strings(attributes),
        )
        for pk, title, description, category_id, attributes in rows
    }


def _category_paths() -> dict[int, tuple[str, ...]]:
    """Every category's names from the root down, read in one query (the tree is small)."""
    nodes = {
        pk: (name, parent)
        for pk, name, parent in Category.objects.values_list("pk", "name", "parent_id")
    }
    paths: dict[int, tuple[str, ...]] = {}
    for pk in nodes:
        path: list[str] = []
        node: int | None = pk
        # The length bound stops at a longer cycle (a → b → a), which the constraint allows.
        while node is not None and node in nodes and len(path) < len(nodes):
            name, node = nodes[node]
            path.insert(0, name)
        paths[pk] = tuple(path)
    return paths


def _attribute_strings(attributes: Any) -> dict[str, str]:
    """The item's JSON attributes as strings (non-string values as compact JSON, nulls left out)."""
    if not isinstance(attributes, dict):
        return {}
    return {
        str(key): value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        for key, value in attributes.items()
        if value is not None
    }


def model_version_active(*, role: str) -> ModelVersion | None:
    """The version serving `role` now, if any."""
    return ModelVersion.objects.filter(role=role, status=ModelVersionStatus.ACTIVE).first()


def model_versions_history(*, role: str) -> QuerySet[ModelVersion]:
    """Every version of `role`, oldest first."""
    return ModelVersion.objects.filter(role=role).order_by("trained_at", "pk")


def training_run_latest() -> TrainingRun | None:
    """The most recently created training run, if any."""
    return TrainingRun.objects.order_by("-created_at", "-pk").first()


def training_run_in_progress() -> TrainingRun | None:
    """A run that is queued or running, if any (the oldest)."""
    busy = [TrainingRunStatus.QUEUED, TrainingRunStatus.RUNNING]
    return TrainingRun.objects.filter(status__in=busy).order_by("created_at", "pk").first()


def model_version_artifact(*, version: ModelVersion) -> LoadedArtifact:
    """The saved model of `version` with the external user and item ids of its rows/columns."""
    return artifact_read(Path(settings.ML_ARTIFACT_DIR) / version.artifact_path)
