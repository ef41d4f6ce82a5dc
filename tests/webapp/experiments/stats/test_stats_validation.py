"""Bad input anywhere in the engine is a ValueError that says what is wrong."""

from collections.abc import Callable

import pytest

from webapp.experiments.stats import (
    mean_summary,
    mean_summary_from_moments,
    probability_beta_greater,
    proportion_summary,
    sample_ratio_mismatch,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: proportion_summary(0, 0), "n must be >= 1"),
        (lambda: proportion_summary(11, 10), r"conversions \(11\) cannot exceed n \(10\)"),
        (lambda: proportion_summary(-1, 10), "conversions must be >= 0"),
        (lambda: proportion_summary(2.5, 10), "conversions must be an integer"),  # type: ignore[arg-type]
        (lambda: proportion_summary(1, 10, confidence=1.0), "confidence"),
        (lambda: wilson_interval(1, 0), "n must be >= 1"),
        (lambda: mean_summary(1, 2.0, 4.0), "n must be >= 2"),
        (lambda: mean_summary(10, float("nan"), 4.0), "total must be finite"),
        (lambda: mean_summary(10, 2.0, -4.0), "sum_squares must be >= 0"),
        (lambda: mean_summary_from_moments(10, 1.0, -0.5), "variance must be >= 0"),
        (lambda: probability_beta_greater(0, 1, 1, 1), "treatment_alpha"),
        (lambda: sample_ratio_mismatch([10, 10], [1, -1]), r"weights\[1\] must be >= 0"),
        (lambda: sample_ratio_mismatch([10, 10], [0, 0]), "positive sum"),
        (lambda: sample_ratio_mismatch([10, 10, 10], [1, 1]), "same length"),
        (lambda: sample_ratio_mismatch([10], [1]), "at least 2 variants"),
        (lambda: sample_ratio_mismatch([10, -3], [1, 1]), r"observed\[1\] must be >= 0"),
        (lambda: sample_ratio_mismatch([10, 10], [1, 1], threshold=0), "threshold"),
    ],
)
def test_bad_input_raises_value_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
