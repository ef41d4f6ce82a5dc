"""The active model of each role, loaded once per process and swapped when a new one wins.

Serving asks `active_model(role=...)` on every request; the registry is re-read at most
every `RECOMMENDER_MODEL_REFRESH_SECONDS`, and an artifact is read from disk only when
the active version of its role changes. A version whose artifact cannot be read is
remembered as broken (and the failure counted by the caller) instead of being re-read
on every request.
"""

import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import connection

from ml.algorithms.base import Recommender
from ml.models import ModelVersion, ModelVersionStatus
from ml.selectors import model_version_artifact

if TYPE_CHECKING:
    from recommender.ann import ItemVectorIndex

logger = logging.getLogger(__name__)
PK_LOOKUP_BATCH = 250_000  # external ids per lookup query
ANN_DIR = "ann"  # the index's folder inside a version's artifact folder
_INDEX_LOCK = threading.Lock()  # one build per process, not one per waiting thread


class ModelUnavailable(Exception):
    """No usable active model for a role (none promoted, or its artifact is broken)."""


class ModelBroken(ModelUnavailable):
    """The active version's artifact could not be loaded."""


@dataclass(eq=False)
class ActiveModel:
    """A loaded model version with lookups between its columns and catalog item pks."""

    version_id: int
    kind: str
    role: str
    trained_at: datetime
    model: Recommender
    item_pks: np.ndarray  # column -> Item.pk (-1: no longer in the catalog)
    _pk_order: np.ndarray = field(repr=False)
    _sorted_pks: np.ndarray = field(repr=False)  # item_pks[_pk_order], kept: 7 ms at 1M items
    _user_rows: dict[str, int] = field(repr=False)
    _index: "ItemVectorIndex | None" = field(default=None, repr=False)
    artifact_path: str = ""  # the version's folder under ML_ARTIFACT_DIR ("": none on disk)

    @classmethod
    def build(
        cls,
        *,
        version: ModelVersion,
        model: Recommender,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
    ) -> "ActiveModel":
        item_pks = item_pks_of(item_ids)
        pk_order = np.argsort(item_pks, kind="stable")
        return cls(
            version_id=version.pk,
            kind=version.kind,
            role=version.role,
            trained_at=version.trained_at,
            model=model,
            item_pks=item_pks,
            _pk_order=pk_order,
            _sorted_pks=item_pks[pk_order],
            _user_rows={str(user): row for row, user in enumerate(user_ids)},
            artifact_path=version.artifact_path,
        )

    def columns_of(self, pks: Sequence[int]) -> np.ndarray:
        """Model columns of the given item pks, in order; items it never saw are left out."""
        if len(pks) == 0 or len(self.item_pks) == 0:
            return np.empty(0, dtype=np.int64)
        wanted = np.asarray(pks, dtype=np.int64)
        sorted_pks = self._sorted_pks
        positions = np.searchsorted(sorted_pks, wanted).clip(0, len(sorted_pks) - 1)
        found = sorted_pks[positions] == wanted
        return self._pk_order[positions[found]].astype(np.int64)

    def row_of_user(self, user_key: str) -> int | None:
        """The model row of a visitor seen in training (user ids are visitor pks)."""
        return self._user_rows.get(user_key)

    def vector_index(self) -> "ItemVectorIndex | None":
        """An ANN index over the item vectors, for catalogs past RECOMMENDER_ANN_THRESHOLD.

        Read memory-mapped from the artifact's `ann/` folder (shared by every worker's page
        cache); the first process to need it builds it and saves it there for the others.
        """
        if self.model.n_items <= settings.RECOMMENDER_ANN_THRESHOLD:
            return None
        if self._index is None:
            with _INDEX_LOCK:
                if self._index is None:
                    vectors = self.model.item_vectors()
                    if vectors is None:
                        return None
                    folder = None
                    if self.artifact_path:
                        folder = Path(settings.ML_ARTIFACT_DIR) / self.artifact_path / ANN_DIR
                    self._index = stored_vector_index(folder, vectors)
        return self._index


def stored_vector_index(folder: Path | None, vectors: np.ndarray) -> "ItemVectorIndex":
    """The index saved in `folder` if it matches `vectors`, else a new one saved there.

    Built in a sibling folder and renamed into place, so a process never reads half an
    index; when two processes build at once the first rename wins and both map that one.
    """
    from recommender.ann import ItemVectorIndex, limit_threads

    limit_threads()
    if folder is None:
        return ItemVectorIndex.from_vectors(vectors)
    stored = _saved_vector_index(folder, vectors)
    if stored is not None:
        return stored
    started = time.perf_counter()
    built = ItemVectorIndex.from_vectors(vectors)
    incoming = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}")
    try:
        built.save(incoming)
        os.rename(incoming, folder)  # fails (not empty) if another process got there first
        logger.info("built the ANN index in %s in %.1f s", folder, time.perf_counter() - started)
    except OSError as error:
        logger.info("ANN index for %s not saved: %s", folder, error)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    saved = _saved_vector_index(folder, vectors)
    return built if saved is None else saved


def _saved_vector_index(folder: Path, vectors: np.ndarray) -> "ItemVectorIndex | None":
    """The memory-mapped index in `folder`, or None if there is none fit for `vectors`."""
    from recommender.ann import ItemVectorIndex

    if not folder.is_dir():
        return None
    try:
        index = ItemVectorIndex.load(folder, mmap=True)
    except (OSError, ValueError, KeyError, RuntimeError):
        logger.exception("cannot read the ANN index in %s", folder)
        return None
    if (len(index), index.dim) != vectors.shape:
        logger.warning("the ANN index in %s does not match the model's item vectors", folder)
        return None
    return index


def item_pks_of(external_ids: np.ndarray) -> np.ndarray:
    """Item pks of a model's columns, in large chunks (1M items: ~4 s); -1 where unknown."""
    pks = np.full(len(external_ids), -1, dtype=np.int64)
    names = [str(external_id) for external_id in external_ids.tolist()]
    # One array parameter per chunk: Postgres joins it in one pass over the unique index,
    # where `external_id__in` of 20k-id chunks took 29 s at 1M items.
    sql = (
        "SELECT ids.ord, item.id FROM unnest(%s::text[]) WITH ORDINALITY AS ids(eid, ord) "
        "JOIN webapp_item AS item ON item.external_id = ids.eid"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(names), PK_LOOKUP_BATCH):
            cursor.execute(sql, [names[start : start + PK_LOOKUP_BATCH]])
            found = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2)
            pks[found[:, 0] - 1 + start] = found[:, 1]
    return pks


@dataclass
class _Slot:
    version_id: int | None = None
    loaded: ActiveModel | None = None
    broken: str = ""


class ActiveModels:
    """Per-process registry of loaded active models; thread-safe for gthread workers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self._active: dict[str, tuple[int, str]] = {}
        self._checked_at = -1e18

    def get(self, role: str) -> ActiveModel:
        """The loaded active model of `role`, or ModelUnavailable saying why not."""
        self._refresh_registry()
        active = self._active.get(role)
        if active is None:
            raise ModelUnavailable(f"no active model for role {role!r}")
        version_id, artifact_path = active
        slot = self._slots.setdefault(role, _Slot())
        if slot.version_id != version_id:
            self._load(slot, role, version_id, artifact_path)
        if slot.loaded is None:
            raise ModelBroken(f"model version {version_id} ({role}) is broken: {slot.broken}")
        return slot.loaded

    def pinned(self, version_id: int) -> ActiveModel:
        """One given model version, active or not (an experiment variant pins it), loaded once."""
        slot = self._slots.setdefault(f"version:{version_id}", _Slot())
        if slot.version_id != version_id:
            self._load(slot, f"pinned #{version_id}", version_id, "")
        if slot.loaded is None:
            raise ModelBroken(f"pinned model version {version_id} is broken: {slot.broken}")
        return slot.loaded

    def signature(self) -> str:
        """The active version of every role, e.g. "home:12,similar:9" (part of cache keys)."""
        self._refresh_registry()
        return ",".join(f"{role}:{pk}" for role, (pk, _) in sorted(self._active.items()))

    def clear(self) -> None:
        """Forget everything (tests, or after a manual change of artifacts)."""
        with self._lock:
            self._slots.clear()
            self._active.clear()
            self._checked_at = -1e18

    def _refresh_registry(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < settings.RECOMMENDER_MODEL_REFRESH_SECONDS:
            return
        rows = ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).values_list(
            "role", "pk", "artifact_path"
        )
        self._active = {role: (pk, path) for role, pk, path in rows}
        self._checked_at = now

    def _load(self, slot: _Slot, role: str, version_id: int, artifact_path: str) -> None:
        with self._lock:
            if slot.version_id == version_id:
                return  # another thread loaded it meanwhile
            try:
                version = ModelVersion.objects.get(pk=version_id)
                artifact = model_version_artifact(version=version)
                slot.loaded = ActiveModel.build(
                    version=version,
                    model=artifact.model,
                    user_ids=artifact.user_ids,
                    item_ids=artifact.item_ids,
                )
                slot.broken = ""
                logger.info("serving %s model version %s (%s)", role, version_id, version.kind)
            except Exception as error:
                slot.loaded = None
                slot.broken = f"{type(error).__name__}: {error}"
                logger.exception("cannot load model version %s (%s)", version_id, artifact_path)
            slot.version_id = version_id


ACTIVE_MODELS = ActiveModels()


def active_model(*, role: str, version_id: int | None = None) -> ActiveModel:
    """The active model of a role (or a pinned version), loaded in this process.

    ModelUnavailable when the role has none; ModelBroken when its artifact cannot be read.
    """
    return ACTIVE_MODELS.get(role) if version_id is None else ACTIVE_MODELS.pinned(version_id)


def serving_warm_up(*, roles: Sequence[str] = ("home", "similar", "session")) -> list[str]:
    """Load every active model now (a web worker calls this before its first request)."""
    from ml.runtime import limit_threads_for_serving

    limit_threads_for_serving()
    loaded = []
    for role in roles:
        try:
            active = ACTIVE_MODELS.get(role)
            active.vector_index()  # large catalogs: map (or build once) the ANN index now
            loaded.append(f"{role}:{active.version_id}")
        except ModelUnavailable as error:
            logger.info("warm-up: %s", error)
    return loaded
