"""A real worker renders a visitor's answer into Redis after their event: the next call hits."""

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.utils import timezone

from recommender.answers import home_answer_key
from tests.recommender.conftest import build_world, reset_serving, train
from tests.recommender.test_api import cookie_client
from tests.workers import celery_worker
from webapp.models import Visitor
from webapp.services.interactions import ValidatedEvent, interactions_ingest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REFRESH_TIMEOUT_SECONDS = 90


@pytest.fixture
def shared_serving(settings: Any, tmp_path: Path, redis_url: str) -> Iterator[dict[str, str]]:
    """This process and the worker share the recommendations cache (Redis) and artifacts."""
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    settings.RECOMMENDER_MODEL_REFRESH_SECONDS = 0.0
    settings.RECOMMENDER_LATENCY_BUDGET_MS = 10_000.0  # a loaded CI box must not time out
    settings.RECOMMENDER_STATEMENT_TIMEOUT_MS = 10_000
    settings.RECOMMENDER_MAX_CATEGORY_SHARE = 1.0
    redis_cache = {"BACKEND": "webapp.cache.RedisCache"}
    settings.CACHES = {**settings.CACHES, "recommendations": redis_cache | {"LOCATION": redis_url}}
    reset_serving()
    yield {
        "REDIS_URL": redis_url,
        "ML_ARTIFACT_DIR": str(settings.ML_ARTIFACT_DIR),
        "RECOMMENDER_MODEL_REFRESH_SECONDS": "0",
        "RECOMMENDER_LATENCY_BUDGET_MS": "10000",
        "RECOMMENDER_STATEMENT_TIMEOUT_MS": "10000",
        "RECOMMENDER_MAX_CATEGORY_SHARE": "1.0",
    }
    reset_serving()


@pytest.fixture
def default_worker(shared_serving: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    """A worker on the default queue, on this test's broker; yields its log file."""
    with celery_worker("default", tmp_path / "worker.log", **shared_serving) as log:
        yield log


def refreshes_done(log: Path) -> int:
    """How many refresh tasks the worker has finished, from its log."""
    text = log.read_text(errors="replace")
    return len(re.findall(r"recommender\.tasks\.refresh_answers\[[^\]]+\] succeeded", text))


def test_after_an_event_the_worker_renders_the_answer_the_next_request_hits(
    default_worker: Path,
) -> None:
    # Given trained models and a visitor with one view of the second cluster
    world = build_world(visitors_per_cluster=6)
    train()
    visitor = Visitor.objects.create(consent_given_at=timezone.now())
    item = world.clusters[1][0]
    now = timezone.now()
    # When they log another view (committed: the receiver queues the refresh)
    for viewed in (item, world.clusters[1][1]):
        event = ValidatedEvent("view", visitor.key, now, None, viewed.external_id)
        interactions_ingest(events=[event])
    visitor.refresh_from_db()
    key = home_answer_key(visitor)
    # Then the worker runs one refresh per stored event and the answer of their latest
    # generation is in Redis
    deadline = time.monotonic() + REFRESH_TIMEOUT_SECONDS
    while time.monotonic() < deadline and refreshes_done(default_worker) < 2:
        time.sleep(0.2)
    log = default_worker.read_text(errors="replace")
    assert refreshes_done(default_worker) == 2, log[-3000:]
    assert caches["recommendations"].has_key(key)
    # and the visitor's next request is a hit with what a miss computes
    hit = cookie_client(visitor).get("/api/recommendations/", {"placement": "home"})
    caches["recommendations"].delete(key)
    miss = cookie_client(visitor).get("/api/recommendations/", {"placement": "home"})
    assert hit.headers["X-Recommendations-Cache"] == "hit"
    assert miss.headers["X-Recommendations-Cache"] == "miss"
    assert hit.json() == miss.json()
    assert hit.json()["items"][0]["id"].startswith("sku-1-")  # the cluster they viewed
