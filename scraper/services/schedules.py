"""Writes of crawl schedules: one django-celery-beat PeriodicTask per scheduled source."""

import json

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from scraper.models import Source

SOURCE_CRAWL_TASK = "scraper.tasks.crawl.source_crawl"
CRAWL_QUEUE = "scrape"


def source_schedule_name(source: Source) -> str:
    """The PeriodicTask name of a source's schedule (unique per source)."""
    return f"Crawl source #{source.pk}"


@transaction.atomic
def source_schedule_sync(*, source: Source) -> PeriodicTask | None:
    """Make beat's entry match `source.schedule` (a validated crontab in UTC): created or
    updated when set, enabled only while the source is active, removed when blank."""
    if not source.schedule.strip():
        source_schedule_remove(source=source)
        return None
    minute, hour, day_of_month, month_of_year, day_of_week = source.schedule.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    periodic, _ = PeriodicTask.objects.update_or_create(
        name=source_schedule_name(source),
        defaults={
            "task": SOURCE_CRAWL_TASK,
            "crontab": crontab,
            "interval": None,
            "kwargs": json.dumps({"source_id": source.pk, "trigger": "schedule"}),
            "queue": CRAWL_QUEUE,
            "enabled": source.is_active,
            "description": f"Crawl of {source.name}; edit the schedule on the source.",
        },
    )
    if source.periodic_task_id != periodic.pk:
        source.periodic_task = periodic
        Source.objects.filter(pk=source.pk).update(periodic_task=periodic)
    return periodic


@transaction.atomic
def source_schedule_remove(*, source: Source) -> None:
    """Delete the source's beat entry (when its schedule is cleared or it is deleted)."""
    PeriodicTask.objects.filter(name=source_schedule_name(source)).delete()
    if source.periodic_task_id is not None:
        source.periodic_task = None
        Source.objects.filter(pk=source.pk).update(periodic_task=None)
