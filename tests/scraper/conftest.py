"""Loopback sites for the scraper tests: each test gets a freshly started server."""

from collections.abc import Iterator

import pytest

from tests.scraper.sites.books import BooksSite
from tests.scraper.sites.fixture_shop import FixtureShop


@pytest.fixture
def fixture_shop() -> Iterator[FixtureShop]:
    """The fixture shop on 127.0.0.1 (fresh state and hit counts per test)."""
    with FixtureShop() as shop:
        yield shop


@pytest.fixture
def books_site() -> Iterator[BooksSite]:
    """The 200 books.toscrape.com pages on 127.0.0.1, with generated listings."""
    with BooksSite() as site:
        yield site
