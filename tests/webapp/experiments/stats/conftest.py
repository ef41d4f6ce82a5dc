"""Fixtures for the framework-free experiment statistics tests: no database."""

import pytest


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Overrides the root fixture: the statistics engine touches neither database nor cache."""
    return None
