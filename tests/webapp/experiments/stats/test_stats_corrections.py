"""Holm and Benjamini-Hochberg against statsmodels.multipletests."""

import pytest
from statsmodels.stats.multitest import multipletests

from webapp.experiments.stats import adjust_p_values

P_VALUE_SETS = [
    [0.01, 0.04, 0.03, 0.2, 0.005],
    [0.5],
    [0.001, 0.001, 0.04, 0.04, 0.9, 0.6],
    [0.8, 0.02, 0.049, 0.03],
    [0.0, 1.0, 0.3],
]


@pytest.mark.parametrize("p_values", P_VALUE_SETS)
@pytest.mark.parametrize(("method", "reference_method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_matches_statsmodels(p_values: list[float], method: str, reference_method: str) -> None:
    _, expected, _, _ = multipletests(p_values, method=reference_method)

    adjusted = adjust_p_values(p_values, method)  # type: ignore[arg-type]

    assert adjusted == pytest.approx(tuple(expected))


def test_none_and_empty() -> None:
    assert adjust_p_values([0.2, 0.01], "none") == (0.2, 0.01)
    assert adjust_p_values([], "holm") == ()


@pytest.mark.parametrize(
    ("p_values", "method", "message"),
    [
        ([0.1], "bonferroni", "unknown correction method"),
        ([1.2], "bh", "within"),
        ([float("nan")], "holm", "finite"),
    ],
)
def test_bad_input(p_values: list[float], method: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        adjust_p_values(p_values, method)  # type: ignore[arg-type]
