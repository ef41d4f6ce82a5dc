"""Settings: production passes Django's deploy checks; shared state is really shared."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.mark.django_db
def test_check_deploy_passes_with_production_environment() -> None:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="webapp.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="shop.example.com",
        DATABASE_URL=_database_url(),
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_production_refuses_to_start_without_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="webapp.settings.production", ALLOWED_HOSTS="x.example")
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "SECRET_KEY" in done.stderr


def test_cache_is_shared_between_processes() -> None:
    backend = settings.CACHES["default"]["BACKEND"]
    assert "locmem" not in backend.lower()
    assert backend.endswith(("DatabaseCache", "RedisCache"))


@pytest.mark.django_db(transaction=True)
def test_cache_value_written_here_is_read_by_another_process() -> None:
    from django.core.cache import cache

    token = secrets.token_hex(8)
    cache.set("shared-probe", token, 60)
    env = dict(
        os.environ, DATABASE_URL=_database_url(), DJANGO_SETTINGS_MODULE="webapp.settings.test"
    )
    code = "from django.core.cache import cache; print(cache.get('shared-probe'))"
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip().splitlines()[-1] == token, done.stderr
