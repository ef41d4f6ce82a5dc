"""Celery tasks of the ml app: thin wrappers that take ids and call services."""

import logging

from celery import Task, current_app, shared_task
from django.conf import settings

from ml.models import TrainingRunStatus
from ml.services.semantic_ids import item_semantic_ids_assign
from ml.services.training import training_run_execute
from ml.services.training_runs import TrainingError, training_run_create

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="ml.tasks.train_models",
    soft_time_limit=settings.ML_TRAINING_SOFT_TIME_LIMIT,
    time_limit=settings.ML_TRAINING_TIME_LIMIT,
    acks_late=True,
)
def train_models(self: Task, run_id: int | None = None) -> str:
    """Execute training run `run_id` (None: create one, as the nightly schedule does).

    Routed to the "train" queue by CELERY_TASK_ROUTES ("ml.tasks.*").

    Never retried: a failed run is recorded as failed, and a run that is not queued
    any more (finished, or taken by another worker) is left alone.
    """
    task_id = self.request.id or ""
    try:
        if run_id is None:
            run_id = training_run_create(trigger="nightly schedule", celery_task_id=task_id).pk
        run = training_run_execute(run_id=run_id, celery_task_id=task_id)
    except TrainingError as error:
        logger.warning("training run %s refused: %s", run_id, error)
        return "failed"
    if run is None:
        return "skipped"
    if run.status == TrainingRunStatus.SUCCEEDED and settings.ML_AFTER_TRAINING_TASK:
        # Serving precomputes answers with the versions now active (by name: the
        # recommender is not imported here).
        current_app.send_task(settings.ML_AFTER_TRAINING_TASK)
    return run.status


@shared_task(name="ml.tasks.items_semantic_ids_assign", acks_late=True)
def items_semantic_ids_assign(item_ids: list[int]) -> int:
    """Code items a catalog crawl created with the newest semantic-IDs model; return how
    many got a semantic ID (0 when no such model exists).

    Queued on commit by the crawl's ingest (SCRAPER_NEW_ITEMS_TASK) and routed to the
    "train" queue, whose workers have torch; repeating it changes nothing.
    """
    return item_semantic_ids_assign(item_ids=item_ids)
