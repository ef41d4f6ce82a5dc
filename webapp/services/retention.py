"""Retention of the raw interaction log."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.models import Interaction

RETENTION_BATCH_SIZE = 10_000


def retention_cutoff(*, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)


def interactions_delete_older_than(
    *, cutoff: datetime, batch_size: int = RETENTION_BATCH_SIZE
) -> int:
    """Delete raw events older than `cutoff` in primary-key batches; returns the count."""
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                Interaction.objects.filter(timestamp__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return deleted
            count, _ = Interaction.objects.filter(pk__in=ids).delete()
            deleted += count
