"""webapp.cache.RedisCache against a real (private) Redis: one client per pool, Django's
behaviour otherwise."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.db import connection

from webapp.cache import RedisCache

ROOT = Path(__file__).resolve().parents[2]


def test_one_client_serves_every_call_and_the_cache_behaves_as_djangos(redis_url: str) -> None:
    ours, django = RedisCache(redis_url, {}), DjangoRedisCache(redis_url, {"KEY_PREFIX": "dj"})

    first, again = ours._cache.get_client(), ours._cache.get_client(write=True)
    results: list[list[Any]] = []
    for cache in (ours, django):
        cache.set("answer", {"items": [1, 2]}, 30)
        added = [cache.add("count", 1), cache.add("count", 5)]
        results.append(
            [
                cache.get("answer"),
                cache.get_many(["answer", "missing"]),
                cache.has_key("answer"),
                added,
                cache.incr("count"),
                cache.delete("answer"),
                cache.get("answer", "gone"),
            ]
        )

    assert first is again  # Django's own backend builds a new client for each call
    assert django._cache.get_client() is not django._cache.get_client()
    assert results[0] == results[1]
    assert results[0] == [
        {"items": [1, 2]},
        {"answer": {"items": [1, 2]}},
        True,
        [True, False],
        2,
        True,
        "gone",
    ]


@pytest.mark.django_db(transaction=True)
def test_with_redis_url_both_caches_are_this_backend_and_shared_between_processes(
    redis_url: str,
) -> None:
    s = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}",
        DJANGO_SETTINGS_MODULE="webapp.settings.test",
        REDIS_URL=redis_url,
    )
    code = (
        "from django.core.cache import caches; "
        "print(type(caches['default']).__module__, type(caches['recommendations']).__module__); "
        "caches['recommendations'].set('probe', 'from the child', 60)"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert done.stdout.splitlines()[-1].split() == ["webapp.cache", "webapp.cache"], done.stderr
    assert RedisCache(redis_url, {"KEY_PREFIX": ""}).get("probe") == "from the child"
