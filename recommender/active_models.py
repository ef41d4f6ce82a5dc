"""The active model of each role, loaded once per process and swapped when a new one wins.

Serving asks `active_model(role=...)` on every request; the registry is re-read at most
every `RECOMMENDER_MODEL_REFRESH_SECONDS`, and an artifact is read from disk only when
the active version of its role changes. A version whose artifact cannot be read is
remembered as broken (and the failure counted by the caller) instead of being re-read
on every request.
"""

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

from ml.algorithms.base import Recommender
from ml.models import ModelVersion, ModelVersionStatus
from ml.selectors import model_version_artifact
from webapp.models import Item

if TYPE_CHECKING:
    from recommender.ann import ItemVectorIndex

logger = logging.getLogger(__name__)
PK_LOOKUP_BATCH = 20_000


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
    _user_rows: dict[str, int] = field(repr=False)
    _index: "ItemVectorIndex | None" = field(default=None, repr=False)

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
        return cls(
            version_id=version.pk,
            kind=version.kind,
            role=version.role,
            trained_at=version.trained_at,
            model=model,
            item_pks=item_pks,
            _pk_order=np.argsort(item_pks, kind="stable"),
            _user_rows={str(user): row for row, user in enumerate(user_ids)},
        )

    def columns_of(self, pks: Sequence[int]) -> np.ndarray:
        """Model columns of the given item pks, in order; items it never saw are left out."""
        if len(pks) == 0 or len(self.item_pks) == 0:
            return np.empty(0, dtype=np.int64)
        wanted = np.asarray(pks, dtype=np.int64)
        sorted_pks = self.item_pks[self._pk_order]
        positions = np.searchsorted(sorted_pks, wanted).clip(0, len(sorted_pks) - 1)
        found = sorted_pks[positions] == wanted
        return self._pk_order[positions[found]].astype(np.int64)

    def row_of_user(self, user_key: str) -> int | None:
        """The model row of a visitor seen in training (user ids are visitor pks)."""
        return self._user_rows.get(user_key)

    def vector_index(self) -> "ItemVectorIndex | None":
        """An ANN index over the item vectors, for catalogs past RECOMMENDER_ANN_THRESHOLD."""
        if self.model.n_items <= settings.RECOMMENDER_ANN_THRESHOLD:
            return None
        if self._index is None:
            vectors = self.model.item_vectors()
            if vectors is None:
                return None
            from recommender.ann import ItemVectorIndex, limit_threads

            limit_threads()
            self._index = ItemVectorIndex.from_vectors(vectors)
        return self._index


def item_pks_of(external_ids: np.ndarray) -> np.ndarray:
    """Item pks of a model's columns, in chunks (large catalogs); -1 where unknown."""
    pks = np.full(len(external_ids), -1, dtype=np.int64)
    position = {str(external_id): column for column, external_id in enumerate(external_ids)}
    names = list(position)
    for start in range(0, len(names), PK_LOOKUP_BATCH):
        chunk = names[start : start + PK_LOOKUP_BATCH]
        for external_id, pk in Item.objects.filter(external_id__in=chunk).values_list(
            "external_id", "pk"
        ):
            pks[position[external_id]] = pk
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


def active_model(*, role: str) -> ActiveModel:
    """The active model of a role, loaded in this process (ModelUnavailable if none)."""
    return ACTIVE_MODELS.get(role)


def serving_warm_up(*, roles: Sequence[str] = ("home", "similar", "session")) -> list[str]:
    """Load every active model now (a web worker calls this before its first request)."""
    from ml.runtime import limit_threads_for_serving

    limit_threads_for_serving()
    loaded = []
    for role in roles:
        try:
            loaded.append(f"{role}:{ACTIVE_MODELS.get(role).version_id}")
        except ModelUnavailable as error:
            logger.info("warm-up: %s", error)
    return loaded
