"""The life of a training run: create and queue it, start it once, report progress, finish.

A run whose worker died (killed at the hard time limit, out of memory, machine lost)
stays "running" in the database. No live task can run past the hard time limit, so a
run started longer ago than that is dead for sure: the next run marks it failed. Its
folders in the artifacts' incoming area are deleted then too.
"""

import logging
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ml.algorithms.registry import algorithm_names
from ml.models import ModelRole, TrainingRun, TrainingRunStatus
from ml.services.artifacts import artifacts_discard_incoming

logger = logging.getLogger(__name__)

# Margin past the hard time limit before a "running" run is declared dead.
STALE_MARGIN = timedelta(minutes=10)
# A queued run whose task never started (lost message) is given up after this long.
QUEUED_TOO_LONG = timedelta(days=1)
# Serializes the "is another run going?" check with marking a run as running.
START_LOCK_KEY = 0x6D6C_7472  # "mltr"
ERROR_MAX_CHARS = 4000
CODE_KINDS = ("semantic_ids",)  # algorithms that give items semantic IDs


class TrainingError(RuntimeError):
    """A training that cannot go on, with a message fit for the admin."""


def training_plan_validate(plan: dict[str, Any]) -> dict[str, dict[str, dict[str, list[Any]]]]:
    """The plan if every role, algorithm and grid in it is known, else TrainingError."""
    if not plan:
        raise TrainingError("the training plan is empty (setting ML_TRAINING_PLAN)")
    for role, models in plan.items():
        if role not in ModelRole.values:
            raise TrainingError(f"unknown role {role!r} in the plan; known: {ModelRole.values}")
        if not models:
            raise TrainingError(f"role {role!r} has no models in the plan")
        for kind, grid in models.items():
            if kind not in algorithm_names():
                known = ", ".join(algorithm_names())
                raise TrainingError(f"unknown algorithm {kind!r}; known: {known}")
            if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
                raise TrainingError(f"{role}/{kind}: the grid must map names to lists of values")
            if role == ModelRole.CODES and kind not in CODE_KINDS:
                raise TrainingError(
                    f"role 'codes' codes the items: only {', '.join(CODE_KINDS)} can train "
                    f"there, not {kind!r}"
                )
    return plan


def training_run_create(
    *, trigger: str = "", plan: dict[str, Any] | None = None, celery_task_id: str = ""
) -> TrainingRun:
    """A queued run of `plan` (default: the ML_TRAINING_PLAN setting)."""
    training_runs_fail_stale()
    chosen = training_plan_validate(plan if plan is not None else settings.ML_TRAINING_PLAN)
    return TrainingRun.objects.create(
        trigger=trigger[:100], plan=chosen, celery_task_id=celery_task_id
    )


def training_run_queue(*, trigger: str, plan: dict[str, Any] | None = None) -> TrainingRun:
    """Create a run and queue its task once the surrounding transaction commits."""
    from ml.tasks import train_models

    run = training_run_create(trigger=trigger, plan=plan, celery_task_id=str(uuid.uuid4()))
    transaction.on_commit(
        lambda: train_models.apply_async(args=(run.pk,), task_id=run.celery_task_id)
    )
    return run


def training_runs_fail_stale() -> int:
    """Mark failed the runs whose task is certainly gone; return how many."""
    now = timezone.now()
    dead_after = timedelta(seconds=settings.ML_TRAINING_TIME_LIMIT) + STALE_MARGIN
    running = TrainingRun.objects.filter(
        status=TrainingRunStatus.RUNNING, started_at__lt=now - dead_after
    ).update(
        status=TrainingRunStatus.FAILED,
        finished_at=now,
        updated_at=now,
        error="The training stopped without reporting (worker killed or time limit reached).",
    )
    queued = TrainingRun.objects.filter(
        status=TrainingRunStatus.QUEUED, created_at__lt=now - QUEUED_TOO_LONG
    ).update(
        status=TrainingRunStatus.FAILED,
        finished_at=now,
        updated_at=now,
        error="The training never started (no worker took its task within a day).",
    )
    artifacts_discard_incoming(
        root=Path(settings.ML_ARTIFACT_DIR), older_than_seconds=dead_after.total_seconds()
    )
    if running or queued:
        logger.warning("training: marked %d dead and %d lost runs failed", running, queued)
    return running + queued


def training_run_start(*, run_id: int, celery_task_id: str = "") -> TrainingRun | None:
    """Mark the run running and return it; None when it must not run (again)."""
    training_runs_fail_stale()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [START_LOCK_KEY])
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != TrainingRunStatus.QUEUED:
            logger.info("training: run %s is %s; not starting it", run_id, run and run.status)
            return None
        other = TrainingRun.objects.filter(status=TrainingRunStatus.RUNNING).first()
        run.started_at = timezone.now()
        run.celery_task_id = celery_task_id or run.celery_task_id
        if other is not None:
            run.status, run.finished_at = TrainingRunStatus.FAILED, run.started_at
            run.error = f"Training run #{other.pk} was still running; start this one later."
        else:
            run.status, run.stage = TrainingRunStatus.RUNNING, "starting"
        run.save(
            update_fields=[
                "status",
                "started_at",
                "finished_at",
                "celery_task_id",
                "error",
                "stage",
                "updated_at",
            ]
        )
    return run if run.status == TrainingRunStatus.RUNNING else None


def training_run_progress(*, run: TrainingRun, progress: int, stage: str) -> None:
    """Report how far the run is (percent) and what it is doing."""
    run.progress, run.stage = max(0, min(100, progress)), stage[:200]
    run.save(update_fields=["progress", "stage", "updated_at"])


def training_run_succeed(*, run: TrainingRun, log: list[dict[str, Any]]) -> None:
    """Close the run as succeeded with its per-role decisions."""
    run.status, run.progress, run.stage = TrainingRunStatus.SUCCEEDED, 100, "done"
    run.log, run.finished_at = log, timezone.now()
    run.save(update_fields=["status", "progress", "stage", "log", "finished_at", "updated_at"])


def training_run_fail(*, run: TrainingRun, error: str, log: list[dict[str, Any]]) -> None:
    """Close the run as failed; the registry is left as it was."""
    run.status, run.finished_at = TrainingRunStatus.FAILED, timezone.now()
    run.error, run.log = error[:ERROR_MAX_CHARS], log
    run.save(update_fields=["status", "finished_at", "error", "log", "updated_at"])
