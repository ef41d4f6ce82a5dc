"""Create the default periodic tasks in django-celery-beat (editable in the admin)."""

from typing import Any

from django.core.management.base import BaseCommand
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

# name -> (task, schedule kind, schedule kwargs); existing rows are left as edited.
DEFAULT_SCHEDULES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "Delete events past retention (daily)": (
        "webapp.tasks.interactions_apply_retention",
        "crontab",
        {"minute": "30", "hour": "3"},
    ),
    "Retrain recommendation models (nightly)": (
        "ml.tasks.train_models",
        "crontab",
        {"minute": "0", "hour": "3"},
    ),
    "Refresh trending items (every 5 minutes)": (
        "recommender.tasks.refresh_trending",
        "interval",
        {"every": 5, "period": IntervalSchedule.MINUTES},
    ),
    "Reweight bandit campaigns' creatives (hourly)": (
        "webapp.campaigns.tasks.campaigns_bandit_update_all",
        "interval",
        {"every": 1, "period": IntervalSchedule.HOURS},
    ),
    "Purge old rate-limit windows (hourly)": (
        "webapp.tasks.ratelimit_purge",
        "interval",
        {"every": 1, "period": IntervalSchedule.HOURS},
    ),
}


class Command(BaseCommand):
    help = "Create the platform's default Celery beat schedules if they do not exist."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, (task, kind, params) in DEFAULT_SCHEDULES.items():
            if kind == "crontab":
                crontab, _ = CrontabSchedule.objects.get_or_create(**params, timezone="UTC")
                defaults: dict[str, Any] = {"task": task, "crontab": crontab}
            else:
                interval, _ = IntervalSchedule.objects.get_or_create(**params)
                defaults = {"task": task, "interval": interval}
            _, created = PeriodicTask.objects.get_or_create(name=name, defaults=defaults)
            self.stdout.write(f"{'created' if created else 'kept'}: {name}")
