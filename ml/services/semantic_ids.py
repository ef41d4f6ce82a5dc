"""Writes of semantic IDs: copy a semantic-IDs model version's item codes and anomaly scores
onto the item rows, and code and score new catalog items from their content with the newest
such model."""

import logging
from collections.abc import Collection
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Value, When

from ml.models import ModelVersion, ModelVersionStatus
from ml.selectors import item_records_by_pk
from ml.services.artifacts import LoadedArtifact, artifact_read
from webapp.models import Item

logger = logging.getLogger(__name__)

# Items updated per UPDATE statement.
BATCH_SIZE = 1000
SEMANTIC_IDS_KIND = "semantic_ids"
# New items of one version are coded one batch at a time, so two batches never hand out
# the same disambiguation token.
ASSIGN_LOCK = "ml.item_semantic_ids_assign:{version}"


class SemanticIdError(ValueError):
    """A version whose model has no semantic IDs, with a message fit for the admin."""


def item_semantic_ids_store(*, version: ModelVersion) -> int:
    """Set `semantic_id`, `semantic_id_version` and `anomaly_score` of the catalog items the
    version codes.

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
    scores = dict(zip(map(str, artifact.item_ids), _anomaly_scores(artifact.model), strict=True))
    updated = 0
    with transaction.atomic():
        items = Item.objects.filter(external_id__in=list(codes)).order_by("pk")
        batch: list[Item] = []
        for item in items.only("pk", "external_id").iterator(chunk_size=BATCH_SIZE):
            item.semantic_id, item.semantic_id_version = codes[item.external_id], version
            item.anomaly_score = scores[item.external_id]
            batch.append(item)
            if len(batch) == BATCH_SIZE:
                updated += _write(batch)
                batch = []
        updated += _write(batch)
    return updated


def _write(items: list[Item]) -> int:
    """One UPDATE of the batch's semantic-ID and anomaly-score columns."""
    if not items:
        return 0
    return Item.objects.bulk_update(items, ["semantic_id", "semantic_id_version", "anomaly_score"])


def _anomaly_scores(model: object) -> list[float | None]:
    """The model's anomaly score of each of its items (None where unknown: an artifact saved
    before scores existed, or a model without them)."""
    scores = getattr(model, "anomaly_scores", None)
    n_items = int(getattr(model, "n_items", 0))
    if not callable(scores):
        return [None] * n_items
    return [float(score) if np.isfinite(score) else None for score in scores()]


def item_semantic_ids_assign(*, item_ids: Collection[int]) -> int:
    """Give the items semantic IDs and anomaly scores with the newest semantic-IDs version
    whose model loads (an active one first): items it knows get their codes, new ones are
    coded and scored from their content (`add_items`) with tuples no other item of the
    version holds.

    Items already coded by that version are left alone (safe to repeat). Returns the number
    of items updated; 0, logged, when no semantic-IDs model loads.
    """
    items = list(
        Item.objects.filter(pk__in=list(item_ids))
        .order_by("pk")
        .only("pk", "external_id", "semantic_id_version")
    )
    if not items:
        return 0
    newest = _semantic_ids_model_newest()
    if newest is None:
        logger.info("no semantic-IDs model loads: %d new items keep no semantic ID", len(items))
        return 0
    version, artifact = newest
    pending = [item for item in items if item.semantic_id_version_id != version.pk]
    if not pending:
        return 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            lock = ASSIGN_LOCK.format(version=version.pk)
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [lock])
        codes = _codes(version, artifact, pending)
        pending = [item for item in pending if item.pk in codes]  # deleted meanwhile: skipped
        for item in pending:
            item.semantic_id, item.anomaly_score = codes[item.pk]
            item.semantic_id_version = version
        updated = sum(
            _write(pending[start : start + BATCH_SIZE])
            for start in range(0, len(pending), BATCH_SIZE)
        )
    logger.info("semantic IDs of version #%s given to %d items", version.pk, updated)
    return updated


def _semantic_ids_model_newest() -> tuple[ModelVersion, LoadedArtifact] | None:
    """The active semantic-IDs versions, then the others newest first: the first that loads."""
    from ml.algorithms.semantic_ids import SemanticIDs  # torch: imported only when used

    active_first = Case(
        When(status=ModelVersionStatus.ACTIVE, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    versions = ModelVersion.objects.filter(kind=SEMANTIC_IDS_KIND).order_by(
        active_first, "-trained_at", "-pk"
    )
    for version in versions:
        try:
            artifact = artifact_read(Path(settings.ML_ARTIFACT_DIR) / version.artifact_path)
        except (OSError, ValueError, KeyError) as error:
            logger.warning("semantic-IDs version #%s does not load: %s", version.pk, error)
            continue
        if isinstance(artifact.model, SemanticIDs):
            return version, artifact
        logger.warning("version #%s of kind %s has no semantic IDs", version.pk, version.kind)
    return None


def _codes(
    version: ModelVersion, artifact: LoadedArtifact, items: list[Item]
) -> dict[int, tuple[str, float | None]]:
    """Each item's code text and anomaly score: the model's own for items it knows, new
    tuples for the rest (disambiguated against the model's and those the version already
    gave new items) and their scores from content."""
    from ml.algorithms.rqvae import disambiguated
    from ml.algorithms.semantic_ids import SemanticIDs

    model = artifact.model
    assert isinstance(model, SemanticIDs)  # checked by _semantic_ids_model_newest
    index = {str(external): position for position, external in enumerate(artifact.item_ids)}
    scores = _anomaly_scores(model)
    codes = {
        item.pk: (model.semantic_id(index[item.external_id]), scores[index[item.external_id]])
        for item in items
        if item.external_id in index
    }
    records = item_records_by_pk(item_ids=[item.pk for item in items if item.pk not in codes])
    new = list(records)
    if not new:
        return codes
    known = model.codes
    added = model.add_items([records[pk] for pk in new])
    taken = np.vstack([known, _stored_codes(version, width=known.shape[1])])
    tuples = disambiguated(model.codes[added, :-1], taken=taken)
    new_scores = _anomaly_scores(model)
    codes.update(
        (pk, ("-".join(str(code) for code in row), new_scores[position]))
        for pk, row, position in zip(new, tuples, added.tolist(), strict=True)
    )
    return codes


def _stored_codes(version: ModelVersion, *, width: int) -> np.ndarray:
    """The well-formed codes the version gave items, as rows of `width` integers."""
    stored = Item.objects.filter(semantic_id_version=version).values_list("semantic_id", flat=True)
    rows = [
        [int(part) for part in code.split("-")]
        for code in stored.iterator(chunk_size=BATCH_SIZE)
        if code.count("-") == width - 1 and all(part.isdigit() for part in code.split("-"))
    ]
    return np.asarray(rows, dtype=np.int64).reshape(-1, width)
