"""Writes of semantic IDs: copy a semantic-IDs model version's item codes onto the item rows."""

from pathlib import Path

from django.conf import settings
from django.db import transaction

from ml.models import ModelVersion
from ml.services.artifacts import artifact_read
from webapp.models import Item

# Items updated per UPDATE statement.
BATCH_SIZE = 1000


class SemanticIdError(ValueError):
    """A version whose model has no semantic IDs, with a message fit for the admin."""


def item_semantic_ids_store(*, version: ModelVersion) -> int:
    """Set `semantic_id` and `semantic_id_version` of the catalog items the version codes.

    All or nothing; items the model does not know keep what they had (and the version
    that gave it). Returns the number of items updated.
    """
    artifact = artifact_read(Path(settings.ML_ARTIFACT_DIR) / version.artifact_path)
    semantic_id = getattr(artifact.model, "semantic_id", None)
    if not callable(semantic_id):
        raise SemanticIdError(f"version #{version.pk} ({version.kind}) has no semantic IDs")
    codes = {
        str(external): str(semantic_id(index)) for index, external in enumerate(artifact.item_ids)
    }
    updated = 0
    with transaction.atomic():
        items = Item.objects.filter(external_id__in=list(codes)).order_by("pk")
        batch: list[Item] = []
        for item in items.only("pk", "external_id").iterator(chunk_size=BATCH_SIZE):
            item.semantic_id, item.semantic_id_version = codes[item.external_id], version
            batch.append(item)
            if len(batch) == BATCH_SIZE:
                updated += _write(batch)
                batch = []
        updated += _write(batch)
    return updated


def _write(items: list[Item]) -> int:
    """One UPDATE of the batch's two semantic-ID columns."""
    if not items:
        return 0
    return Item.objects.bulk_update(items, ["semantic_id", "semantic_id_version"])
