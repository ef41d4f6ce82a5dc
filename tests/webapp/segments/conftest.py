"""Every test starts without this process's snapshot of segment definitions."""

from typing import Any

import pytest

from webapp.experiments.selectors import experiments_cache_clear
from webapp.segments.selectors import segments_snapshot_clear


@pytest.fixture(autouse=True)
def _segments_snapshot(db: Any) -> None:
    segments_snapshot_clear()
    experiments_cache_clear()


@pytest.fixture(autouse=True)
def _generous_budget(settings: Any) -> None:
    """The shared test machine is slow; the budget's own tests set a small one."""
    settings.SEGMENTS_BUDGET_MS = 5000.0
