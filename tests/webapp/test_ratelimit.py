"""Fixed-window rate limits counted in Postgres."""

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from webapp.models import RateLimitCounter
from webapp.services.ratelimit import ratelimit_hit, ratelimit_purge_expired

pytestmark = pytest.mark.django_db

WINDOW = 3600  # long windows keep these tests clear of a window boundary


@pytest.fixture(autouse=True)
def _fresh_window() -> None:
    left = WINDOW - time.time() % WINDOW
    if left < 5:
        time.sleep(left + 0.1)


def test_hits_are_allowed_up_to_the_limit() -> None:
    results = [ratelimit_hit(key="k", limit=3, window_seconds=WINDOW) for _ in range(4)]

    assert [(r.allowed, r.count, r.limit) for r in results] == [
        (True, 1, 3),
        (True, 2, 3),
        (True, 3, 3),
        (False, 4, 3),
    ]
    assert all(1 <= r.retry_after <= WINDOW for r in results)


def test_keys_and_costs_are_counted_apart() -> None:
    ratelimit_hit(key="a", limit=10, window_seconds=WINDOW, cost=7)

    assert ratelimit_hit(key="a", limit=10, window_seconds=WINDOW, cost=4).allowed is False
    assert ratelimit_hit(key="b", limit=10, window_seconds=WINDOW).count == 1


def test_window_starts_on_a_window_boundary() -> None:
    ratelimit_hit(key="w", limit=1, window_seconds=WINDOW)

    start = RateLimitCounter.objects.get(key="w").window_start
    assert start.timestamp() % WINDOW == 0
    assert timezone.now() - start < timedelta(seconds=WINDOW)


def test_very_long_keys_are_stored_shortened_but_distinct() -> None:
    first, second = "x" * 300 + "1", "x" * 300 + "2"

    ratelimit_hit(key=first, limit=5, window_seconds=WINDOW)
    ratelimit_hit(key=second, limit=5, window_seconds=WINDOW)

    assert ratelimit_hit(key=first, limit=5, window_seconds=WINDOW).count == 2
    assert all(len(k) <= 200 for k in RateLimitCounter.objects.values_list("key", flat=True))


def test_purge_deletes_only_old_windows() -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    RateLimitCounter.objects.create(key="old", window_start=old, count=3)
    ratelimit_hit(key="new", limit=5, window_seconds=WINDOW)

    deleted = ratelimit_purge_expired(older_than=timedelta(days=1))

    assert deleted == 1
    assert list(RateLimitCounter.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_counter_is_shared_by_separate_connections() -> None:
    per_thread, threads = 25, 4
    counts: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def hit_many() -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                result = ratelimit_hit(key="shared", limit=1000, window_seconds=WINDOW)
                with lock:
                    counts.append(result.count)
        finally:
            connection.close()

    workers: list[Any] = [threading.Thread(target=hit_many) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)

    total = per_thread * threads
    assert sorted(counts) == list(range(1, total + 1))  # every hit saw its own count
    assert RateLimitCounter.objects.get(key="shared").count == total
