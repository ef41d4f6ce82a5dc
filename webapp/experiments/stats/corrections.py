"""Multiple-comparison adjustment of p-values (apply to non-guardrail metrics only)."""

from collections.abc import Sequence
from typing import Literal

import numpy as np

from webapp.experiments.stats.validation import require_finite

CorrectionMethod = Literal["holm", "bh", "none"]
CORRECTION_METHODS: tuple[CorrectionMethod, ...] = ("holm", "bh", "none")


def adjust_p_values(p_values: Sequence[float], method: CorrectionMethod) -> tuple[float, ...]:
    """Adjusted p-values in input order.

    ``holm``: Holm-Bonferroni step-down (controls the family-wise error rate).
    ``bh``: Benjamini-Hochberg step-up (controls the false discovery rate).
    ``none``: returned unchanged.
    """
    if method not in CORRECTION_METHODS:
        raise ValueError(
            f"unknown correction method {method!r}, expected one of {CORRECTION_METHODS}"
        )
    values = np.array([_require_p_value(p, index) for index, p in enumerate(p_values)], dtype=float)
    if method == "none" or values.size == 0:
        return tuple(float(p) for p in values)
    adjusted = _holm(values) if method == "holm" else _benjamini_hochberg(values)
    return tuple(float(p) for p in adjusted)


def _holm(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    count = values.size
    scaled = (count - np.arange(count)) * values[order]
    adjusted = np.empty_like(values)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def _benjamini_hochberg(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    count = values.size
    scaled = count * values[order] / np.arange(1, count + 1)
    adjusted = np.empty_like(values)
    adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return adjusted


def _require_p_value(value: float, index: int) -> float:
    number = require_finite(value, f"p_values[{index}]")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"p_values[{index}] must be within [0, 1], got {value}")
    return number
