"""Celery tasks of the webapp: thin wrappers that take ids/values and call services."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from webapp.services.retention import interactions_delete_older_than, retention_cutoff

logger = logging.getLogger(__name__)


@shared_task(name="webapp.tasks.interactions_apply_retention", time_limit=60 * 60)
def interactions_apply_retention() -> int:
    """Delete raw events older than EVENT_RETENTION_DAYS (0 = keep forever)."""
    if settings.EVENT_RETENTION_DAYS <= 0:
        logger.info("retention: disabled (EVENT_RETENTION_DAYS=0)")
        return 0
    deleted = interactions_delete_older_than(cutoff=retention_cutoff())
    logger.info("retention: deleted %d events", deleted)
    return deleted


@shared_task(name="webapp.tasks.ratelimit_purge", time_limit=10 * 60, soft_time_limit=9 * 60)
def ratelimit_purge() -> int:
    """Drop rate-limit windows that ended more than an hour ago."""
    from webapp.services.ratelimit import ratelimit_purge_expired

    return ratelimit_purge_expired(older_than=timedelta(hours=1))
