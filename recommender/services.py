"""Writes of the serving layer: failure counts (impressions and clicks come from the
site's beacon and the widget, through the events API, when the items are really seen)."""

import logging

from django.db import DatabaseError, connection
from django.utils import timezone

logger = logging.getLogger(__name__)

MAX_ERROR_TEXT = 2000

FAILURE_UPSERT = """
    INSERT INTO recommender_servingfailure (day, placement, reason, count, last_error, last_at)
    VALUES (%s, %s, %s, 1, %s, %s)
    ON CONFLICT (day, placement, reason) DO UPDATE
    SET count = recommender_servingfailure.count + 1,
        last_error = EXCLUDED.last_error, last_at = EXCLUDED.last_at
"""


def serving_failure_record(*, placement: str, reason: str, error: object) -> None:
    """Count one fallback of a section (per day, placement and reason); never raises."""
    now = timezone.now()
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    logger.warning("recommendations %s fell back (%s): %s", placement, reason, text)
    if connection.needs_rollback:
        return  # inside a broken transaction: the log line is all we can keep
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                FAILURE_UPSERT,
                [now.date(), placement[:64], reason[:32], text[:MAX_ERROR_TEXT], now],
            )
    except DatabaseError:
        logger.exception("cannot count the serving failure")
