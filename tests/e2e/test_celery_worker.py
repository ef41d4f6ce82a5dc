"""A real Celery worker and beat (DatabaseScheduler) run a scheduled task end to end."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.factories import InteractionFactory
from webapp.celery import app, broker_queues_declare
from webapp.models import Interaction

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def _test_database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def worker_and_beat(tmp_path: Path) -> Iterator[None]:
    env = dict(
        os.environ,
        DATABASE_URL=_test_database_url(),
        CELERY_BROKER_URL=app.conf.broker_url,
        DJANGO_SETTINGS_MODULE="webapp.settings.test",
        EVENT_RETENTION_DAYS="3650",
    )
    assert "default" in broker_queues_declare()  # no race between beat and worker over it
    base = [sys.executable, "-m", "celery", "-A", "webapp"]
    commands = [
        [*base, "worker", "-Q", "default", "--concurrency", "1", "--pool", "solo", "-n", "e2e@%h"],
        [*base, "beat", "--schedule", str(tmp_path / "beat"), "--max-interval", "1"],
    ]
    processes = [
        subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for cmd in commands
    ]
    yield
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_beat_schedules_retention_and_worker_runs_it(worker_and_beat: None, settings) -> None:
    # Given an event past retention and a fresh one
    old = InteractionFactory.create(timestamp=timezone.now() - timedelta(days=5000))
    fresh = InteractionFactory.create()
    # When a schedule created through the database (as in the admin) fires every second
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(
        name="e2e retention",
        task="webapp.tasks.interactions_apply_retention",
        interval=every_second,
    )
    # Then the real worker deletes the old event and keeps the fresh one
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and Interaction.objects.filter(pk=old.pk).exists():
        time.sleep(1)
    assert not Interaction.objects.filter(pk=old.pk).exists()
    assert Interaction.objects.filter(pk=fresh.pk).exists()
