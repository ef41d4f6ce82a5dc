"""Root fixtures: real Postgres (pytest-django), factories, API clients."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import ItemFactory, UserFactory, VisitorFactory
from tests.workers import redis_server


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def api_key(db: Any) -> str:
    """A valid API key (as a server-to-server client would hold it)."""
    from rest_framework_api_key.models import APIKey

    _, key = APIKey.objects.create_key(name="test client")
    return key


@pytest.fixture
def keyed_client(api_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key)
    return client


@pytest.fixture
def user(db: Any) -> Any:
    return UserFactory.create()


@pytest.fixture
def visitor(db: Any) -> Any:
    return VisitorFactory.create()


@pytest.fixture
def item(db: Any) -> Any:
    return ItemFactory.create()


@pytest.fixture(autouse=True)
def _clear_cache(db: Any) -> None:
    from django.core.cache import cache, caches

    from recommender.active_models import ACTIVE_MODELS
    from recommender.merchandising import merchandising_rules_cache_clear
    from recommender.trending import serving_caches_clear
    from webapp.experiments.selectors import experiments_cache_clear

    cache.clear()
    caches["recommendations"].clear()
    ACTIVE_MODELS.clear()
    serving_caches_clear()
    merchandising_rules_cache_clear()
    experiments_cache_clear()  # a running experiment of an earlier test must not leak


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private Redis server for this test (CI installs redis-server; .ci/run)."""
    with redis_server(tmp_path) as url:
        yield url
