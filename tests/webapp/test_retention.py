"""Retention deletes raw events past the configured age, in batches."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tests.factories import InteractionFactory
from webapp.models import Interaction
from webapp.services.retention import interactions_delete_older_than, retention_cutoff

pytestmark = pytest.mark.django_db


def test_deletes_only_events_older_than_cutoff_across_batches(settings) -> None:
    settings.EVENT_RETENTION_DAYS = 30
    now = timezone.now()
    InteractionFactory.create_batch(5, timestamp=now - timedelta(days=31))
    recent = InteractionFactory.create_batch(2, timestamp=now - timedelta(days=29))

    deleted = interactions_delete_older_than(cutoff=retention_cutoff(now=now), batch_size=2)

    assert deleted == 5
    assert set(Interaction.objects.values_list("pk", flat=True)) == {e.pk for e in recent}


def test_setup_schedules_is_idempotent_and_keeps_admin_edits() -> None:
    call_command("setup_schedules")
    task = PeriodicTask.objects.get(task="webapp.tasks.interactions_apply_retention")
    task.enabled = False
    task.save()
    call_command("setup_schedules")
    assert (
        PeriodicTask.objects.filter(task="webapp.tasks.interactions_apply_retention").count() == 1
    )
    task.refresh_from_db()
    assert task.enabled is False
