"""Input checks shared by the statistics engine; every failure is a ``ValueError``."""

import math
from collections.abc import Sequence


def require_count(value: int, name: str) -> int:
    """A non-negative integer count (numpy integers accepted)."""
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def require_positive_count(value: int, name: str, minimum: int = 1) -> int:
    """An integer count of at least ``minimum``."""
    count = require_count(value, name)
    if count < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {count}")
    return count


def require_finite(value: float, name: str) -> float:
    """A finite real number."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def require_non_negative(value: float, name: str) -> float:
    """A finite number >= 0."""
    number = require_finite(value, name)
    if number < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return number


def require_open_unit(value: float, name: str) -> float:
    """A probability strictly between 0 and 1 (alpha, power, a baseline rate)."""
    number = require_finite(value, name)
    if not 0.0 < number < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")
    return number


def require_conversions(conversions: int, n: int) -> tuple[int, int]:
    """Conversions and exposures of a rate metric: n >= 1 and 0 <= conversions <= n."""
    exposures = require_positive_count(n, "n")
    converted = require_count(conversions, "conversions")
    if converted > exposures:
        raise ValueError(f"conversions ({converted}) cannot exceed n ({exposures})")
    return converted, exposures


def require_same_length(first: Sequence[object], second: Sequence[object], names: str) -> None:
    """Two parallel sequences must have the same length."""
    if len(first) != len(second):
        raise ValueError(f"{names} must have the same length, got {len(first)} and {len(second)}")


def require_weights(weights: Sequence[float], name: str = "weights") -> list[float]:
    """Non-negative finite weights with a positive sum, returned normalised to sum to 1."""
    values = [
        require_non_negative(weight, f"{name}[{index}]") for index, weight in enumerate(weights)
    ]
    total = sum(values)
    if total <= 0:
        raise ValueError(f"{name} must have a positive sum")
    return [value / total for value in values]
