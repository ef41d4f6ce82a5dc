"""Fixtures for the framework-free ML tests: tiny synthetic datasets, no database."""

import numpy as np
import pytest
import scipy.sparse as sp

from ml.data.dataset import InteractionData, from_arrays


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Overrides the root fixture: ml code touches neither the database nor the cache."""


@pytest.fixture
def small_data() -> InteractionData:
    """Twelve users with 3 to 14 interactions each over 15 items, timestamps shuffled."""
    rng = np.random.default_rng(7)
    users, items = [], []
    for user in range(12):
        chosen = rng.choice(15, size=3 + user, replace=False)
        users += [f"u{user}"] * len(chosen)
        items += [f"i{item}" for item in chosen]
    timestamps = rng.integers(0, 50, size=len(users)).astype(float)
    return from_arrays(users, items, None, timestamps)


@pytest.fixture
def train_matrix() -> sp.csr_matrix:
    """A random binary 30 x 20 user-item matrix where every user has some items."""
    rng = np.random.default_rng(3)
    dense = (rng.random((30, 20)) < 0.3).astype(np.float32)
    dense[np.arange(30), rng.integers(0, 20, size=30)] = 1.0
    return sp.csr_matrix(dense)
