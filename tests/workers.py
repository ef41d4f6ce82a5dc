"""Real Celery workers for tests: child processes against the test database and broker."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from webapp.celery import app, broker_queues_declare

ROOT = Path(__file__).resolve().parent.parent


def database_url_of_tests() -> str:
    """The pytest-django test database, for child processes."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: the test database, settings and broker."""
    return dict(
        os.environ,
        DATABASE_URL=database_url_of_tests(),
        DJANGO_SETTINGS_MODULE="webapp.settings.test",
        CELERY_BROKER_URL=app.conf.broker_url,
        OMP_NUM_THREADS="1",
        **extra,
    )


@contextmanager
def celery_worker(queue: str, log: Path, **env: str) -> Iterator[Path]:
    """A real worker (solo pool) consuming `queue`; yields its log file. The broker's
    queues are declared first, so neither the worker nor the test races to create them."""
    assert queue in broker_queues_declare()
    command = [
        *(sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", queue),
        *("--concurrency", "1", "--pool", "solo", "-n", f"e2e-{queue}@%h", "--loglevel", "INFO"),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env(**env), stdout=output, stderr=output
        )
        try:
            yield log
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
