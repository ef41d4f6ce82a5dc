"""Real services for tests: Celery workers (child processes against the test database and
broker) and a private Redis server."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from webapp.celery import app, broker_queues_declare

ROOT = Path(__file__).resolve().parent.parent


def database_url_of_tests() -> str:
    """The pytest-django test database, for child processes."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: the test database, settings and broker, then
    `extra` (which may override any of them)."""
    env = dict(
        os.environ,
        DATABASE_URL=database_url_of_tests(),
        DJANGO_SETTINGS_MODULE="webapp.settings.test",
        CELERY_BROKER_URL=app.conf.broker_url,
        OMP_NUM_THREADS="1",
    )
    env.update(extra)
    return env


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A private Redis server (CI installs redis-server; .ci/run)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir"]
    process = subprocess.Popen(
        [*command, str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
