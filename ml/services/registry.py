"""Writes to the model registry: record, promote and retire model versions."""

from datetime import datetime
from pathlib import Path
from typing import Any, Final

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ml.algorithms.registry import algorithm_names
from ml.models import ModelRole, ModelVersion, ModelVersionStatus, TrainingRun

# Promotions of one role queue on this transaction-scoped lock: locking the active row
# alone is not enough, since a role without an active version has no row to lock, and a
# waiter on a row that stops being active would find none once it gets the lock.
PROMOTE_LOCK = "ml.model_version_promote:{role}"


class RegistryError(ValueError):
    """A registry change that cannot be made, with a message fit for the admin."""


class _AnyActive:
    def __repr__(self) -> str:
        return "ANY_ACTIVE"


ANY_ACTIVE: Final = _AnyActive()


def model_version_create(
    *,
    kind: str,
    role: str,
    hyperparameters: dict[str, Any],
    dataset: dict[str, Any],
    metrics: dict[str, Any],
    artifact_path: str,
    trained_at: datetime,
    duration_seconds: float,
    training_run: TrainingRun | None = None,
) -> ModelVersion:
    """Record a trained model as a candidate of `role` (promote it separately)."""
    if kind not in algorithm_names():  # torch models included (imported only when used)
        known = ", ".join(algorithm_names())
        raise RegistryError(f"unknown algorithm {kind!r}; known: {known}")
    if role not in ModelRole.values:
        raise RegistryError(f"unknown role {role!r}; known: {', '.join(ModelRole.values)}")
    return ModelVersion.objects.create(
        kind=kind,
        role=role,
        hyperparameters=hyperparameters,
        dataset=dataset,
        metrics=metrics,
        artifact_path=artifact_path,
        trained_at=trained_at,
        duration_seconds=duration_seconds,
        training_run=training_run,
    )


def model_version_promote(
    *, version: ModelVersion, replacing: ModelVersion | _AnyActive | None = ANY_ACTIVE
) -> ModelVersion | None:
    """Make `version` its role's active one; return the version it retired, if any.

    With `replacing`, refuse (RegistryError) unless that is still the role's active
    version (None: still none), so a decision made against one active version is
    never applied over another one promoted meanwhile.
    """
    if not (Path(settings.ML_ARTIFACT_DIR) / version.artifact_path).is_dir():
        raise RegistryError(f"version #{version.pk} has no saved model at {version.artifact_path}")
    with transaction.atomic():
        with connection.cursor() as cursor:
            lock = PROMOTE_LOCK.format(role=version.role)
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [lock])
        return _promote_locked(version, replacing)


def _promote_locked(
    version: ModelVersion, replacing: ModelVersion | _AnyActive | None
) -> ModelVersion | None:
    """The promotion itself, inside a transaction holding the role's promotion lock."""
    current = (
        ModelVersion.objects.select_for_update()
        .filter(role=version.role, status=ModelVersionStatus.ACTIVE)
        .first()
    )
    if not isinstance(replacing, _AnyActive):
        expected = None if replacing is None else replacing.pk
        if (current.pk if current else None) != expected:
            raise RegistryError(
                f"the active {version.get_role_display()} model changed while training "
                f"(now {'#' + str(current.pk) if current else 'none'})"
            )
    if current is not None and current.pk == version.pk:
        return None
    now = timezone.now()
    if current is not None:
        current.status, current.retired_at = ModelVersionStatus.RETIRED, now
        current.save(update_fields=["status", "retired_at"])
    version.status, version.promoted_at, version.retired_at = ModelVersionStatus.ACTIVE, now, None
    version.save(update_fields=["status", "promoted_at", "retired_at"])
    return current


def model_version_retire(*, version: ModelVersion) -> None:
    """Stop serving (or offering) `version`; a retired active leaves its role without one."""
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if locked.status == ModelVersionStatus.RETIRED:
            return
        locked.status, locked.retired_at = ModelVersionStatus.RETIRED, timezone.now()
        locked.save(update_fields=["status", "retired_at"])
    version.status, version.retired_at = locked.status, locked.retired_at
