"""Deterministic assignment of persons to experiments' traffic and variants (no Django).

`unit_hash(seed, unit)` maps a (seed, unit) pair to a number in [0, 1): the first 15 hex
digits (60 bits) of SHA-256 of the UTF-8 text f"{seed}.{unit}", divided by 16**15 (like
PostHog's feature flags, which take 15 hex digits of SHA-1); the value is the same in
every process, machine and Python version (unlike `hash()`). The 64 largest of the 2**60
values would round to 1.0 as floats, so they are capped just below it; variant buckets
are computed on the exact integer instead.

Two independent hashes decide a person's fate:

- **traffic**: `in_traffic` uses the salt f"{seed}.traffic": a person is in when their
  hash is below the traffic share, so lowering the share only takes people out and
  raising it only adds people;
- **variant**: `variant_for` uses the salt f"{seed}.v{bucket_version}", unaffected by the
  traffic share; a new bucket version (weights changed after exposures) is a fresh split
  for new persons, while exposed persons keep their logged variant.

Different experiments have different seeds (the key by default), so their splits of the
same persons are independent.
"""

import hashlib
import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

HASH_HEX_DIGITS = 15
HASH_SCALE = 16**HASH_HEX_DIGITS
BELOW_ONE = math.nextafter(1.0, 0.0)


def unit_hash(seed: str, unit: str) -> float:
    """A uniform number in [0, 1) fixed by `seed` and `unit` (e.g. "user:42")."""
    return min(_hash_int(seed, unit) / HASH_SCALE, BELOW_ONE)


def _hash_int(seed: str, unit: str) -> int:
    digest = hashlib.sha256(f"{seed}.{unit}".encode()).hexdigest()
    return int(digest[:HASH_HEX_DIGITS], 16)


def in_traffic(seed: str, unit: str, share: float) -> bool:
    """Whether `unit` takes part in the experiment that lets `share` (0..1) of units in."""
    return unit_hash(f"{seed}.traffic", unit) < share


def variant_for(seed: str, bucket_version: int, unit: str, weights: Sequence[int]) -> int:
    """Index of `unit`'s variant, each variant taking its weight's share of the hash range.

    Variants of weight 0 are never chosen; at least one weight must be positive.
    """
    if any(weight < 0 for weight in weights) or sum(weights) <= 0:
        raise ValueError(f"Weights must be non-negative with a positive sum, not {weights}.")
    bounds = list(accumulate(weights))
    point = _hash_int(f"{seed}.v{bucket_version}", unit) * bounds[-1] // HASH_SCALE
    return bisect_right(bounds, point)
