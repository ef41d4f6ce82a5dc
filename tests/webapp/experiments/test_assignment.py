"""Assignment hashing: pinned values, uniform and independent splits, stickiness."""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2_contingency, chisquare

from webapp.experiments.assignment import in_traffic, unit_hash, variant_for

ROOT = Path(__file__).resolve().parents[3]
IDS = [f"visitor:{n}" for n in range(100_000)]
ALPHA = 0.001


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Overrides the root fixture: assignment is pure and needs no database."""


# Pinned once (and checked with `printf 'home-ranker.user:42' | sha256sum`): a change of
# the hash would move every running experiment's visitors to other variants.
@pytest.mark.parametrize(
    ("seed", "unit", "expected"),
    [
        ("home-ranker", "visitor:1", 0.814284240464942),  # sha256 d074ee9671f3c3b...
        ("home-ranker", "user:1", 0.8650937632779314),  # dd76c8ed40957d9...
        ("home-ranker", "user:42", 0.003145674789308746),  # 00ce27aa580bfa2...
        ("checkout-copy", "visitor:7", 0.2707440859754815),
    ],
)
def test_unit_hash_matches_pinned_vectors(seed: str, unit: str, expected: float) -> None:
    assert unit_hash(seed, unit) == expected


def test_variants_and_traffic_match_pinned_vectors() -> None:
    def row(values: list[int] | list[bool]) -> str:
        return "".join(str(int(v)) for v in values)

    units = [f"user:{n}" for n in range(10)]

    assert row([variant_for("home-ranker", 1, u, [50, 50]) for u in units]) == "1011001011"
    assert row([variant_for("home-ranker", 2, u, [50, 50]) for u in units]) == "0000110000"
    assert row([variant_for("home-ranker", 1, u, [20, 30, 50]) for u in units]) == "2022112122"
    assert row([in_traffic("home-ranker", u, 0.5) for u in units]) == "0010010110"


@pytest.mark.parametrize("variants", [2, 3, 10])
def test_equal_weights_split_uniformly(variants: int) -> None:
    counts = Counter(variant_for("uniform", 1, unit, [1] * variants) for unit in IDS)

    assert sorted(counts) == list(range(variants))
    assert chisquare([counts[i] for i in range(variants)]).pvalue > ALPHA


def test_unequal_weights_split_in_proportion() -> None:
    weights = [10, 20, 70]
    counts = Counter(variant_for("unequal", 1, unit, weights) for unit in IDS)

    expected = [len(IDS) * w / 100 for w in weights]
    assert chisquare([counts[i] for i in range(3)], expected).pvalue > ALPHA


def test_zero_weight_variant_is_never_chosen() -> None:
    counts = Counter(variant_for("zero", 1, unit, [0, 50, 0, 50]) for unit in IDS[:5000])

    assert set(counts) == {1, 3}


@pytest.mark.parametrize("weights", [[], [0, 0], [50, -10, 60]])
def test_bad_weights_are_refused(weights: list[int]) -> None:
    with pytest.raises(ValueError, match="Weights"):
        variant_for("bad", 1, "visitor:1", weights)


def test_two_experiments_split_the_same_people_independently() -> None:
    table = np.zeros((3, 3), dtype=int)
    for unit in IDS:
        table[
            variant_for("first", 1, unit, [1, 1, 1]), variant_for("second", 1, unit, [1, 1, 1])
        ] += 1

    assert chi2_contingency(table).pvalue > ALPHA


def test_traffic_and_variant_hashes_are_independent() -> None:
    table = np.zeros((2, 2), dtype=int)
    for unit in IDS:
        table[int(in_traffic("salted", unit, 0.5)), variant_for("salted", 1, unit, [1, 1])] += 1

    assert chi2_contingency(table).pvalue > ALPHA


def test_traffic_share_lets_in_its_share() -> None:
    inside = sum(in_traffic("share", unit, 0.2) for unit in IDS)

    assert chisquare([inside, len(IDS) - inside], [0.2 * len(IDS), 0.8 * len(IDS)]).pvalue > ALPHA


def test_lowering_traffic_share_only_excludes_and_never_moves() -> None:
    def assignment(share: float) -> dict[str, int]:
        return {
            unit: variant_for("ramp", 1, unit, [50, 50])
            for unit in IDS[:20_000]
            if in_traffic("ramp", unit, share)
        }

    full, most, some = assignment(1.0), assignment(0.7), assignment(0.3)

    assert len(full) == 20_000
    assert some.keys() < most.keys() < full.keys()
    assert all(full[unit] == variant for unit, variant in most.items())
    assert all(full[unit] == variant for unit, variant in some.items())


def test_new_bucket_version_is_a_fresh_split() -> None:
    table = np.zeros((2, 2), dtype=int)
    for unit in IDS[:20_000]:
        table[variant_for("bump", 1, unit, [1, 1]), variant_for("bump", 2, unit, [1, 1])] += 1

    assert chi2_contingency(table).pvalue > ALPHA


def test_assignment_is_the_same_in_another_process() -> None:
    units = IDS[:2000]
    here = [variant_for("sticky", 3, unit, [25, 25, 50]) for unit in units]
    code = (
        "from webapp.experiments.assignment import variant_for\n"
        "print(''.join(str(variant_for('sticky', 3, f'visitor:{n}', [25, 25, 50])) "
        "for n in range(2000)))"
    )
    # Another interpreter with another str-hash salt: only a stable hash survives this.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT
    ).stdout.strip()

    assert there == "".join(map(str, here))
