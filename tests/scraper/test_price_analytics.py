"""Wavelet price analytics on synthetic series with known change points (no database)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from scraper.price_analytics import (
    analyse_prices,
    denoise,
    detect_level_shifts,
    regular_series,
)


def steps(*segments: tuple[int, float], noise: float = 0.0, seed: int = 0) -> np.ndarray:
    values = np.concatenate([np.full(length, level) for length, level in segments])
    return values + np.random.default_rng(seed).normal(0, noise, values.size)


def test_denoising_removes_most_noise_and_keeps_steps() -> None:
    clean = steps((64, 100.0), (64, 120.0))
    noisy = clean + np.random.default_rng(1).normal(0, 1.0, clean.size)

    smooth = denoise(noisy)

    assert smooth.shape == noisy.shape
    assert np.abs(smooth - clean).mean() < 0.5 * np.abs(noisy - clean).mean()
    assert smooth[:60].mean() == pytest.approx(100, abs=0.5)
    assert smooth[68:].mean() == pytest.approx(120, abs=0.5)


@pytest.mark.parametrize("at", [13, 40, 77, 100])
def test_a_single_step_is_found_where_it_is(at: int) -> None:
    series = steps((at, 50.0), (140 - at, 45.0), noise=0.3, seed=at)

    shifts = detect_level_shifts(series)

    assert [s.index for s in shifts] == [pytest.approx(at, abs=1)]
    assert shifts[0].before == pytest.approx(50, abs=0.3)
    assert shifts[0].after == pytest.approx(45, abs=0.3)


def test_noise_alone_is_not_a_level_shift() -> None:
    assert detect_level_shifts(steps((200, 80.0), noise=0.8, seed=4)) == []
    assert detect_level_shifts(steps((60, 80.0))) == []


def test_promotion_and_permanent_change_are_told_apart() -> None:
    # 60 days at 100, a 12-day promotion at 79, back to 100, then a permanent rise to 110.
    series = steps((60, 100.0), (12, 79.0), (48, 100.0), (60, 110.0), noise=0.4, seed=7)

    shifts = analyse_prices(series)

    assert [(s.index, s.kind) for s in shifts] == [
        (pytest.approx(60, abs=1), "promotion_start"),
        (pytest.approx(72, abs=1), "promotion_end"),
        (pytest.approx(120, abs=1), "permanent"),
    ]


def test_a_long_drop_is_permanent_even_if_prices_come_back_much_later() -> None:
    series = steps((40, 100.0), (60, 80.0), (40, 100.0))

    kinds = [s.kind for s in analyse_prices(series, max_promo_length=21)]

    assert kinds == ["permanent", "permanent"]


def test_price_changes_are_resampled_daily_carrying_the_last_price() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [(start, 10.0), (start + timedelta(days=3), 8.0), (start + timedelta(days=5), 9.0)]

    assert regular_series(points).tolist() == [10, 10, 10, 8, 8, 9]
    assert regular_series(points, until=start + timedelta(days=7)).tolist()[-2:] == [9, 9]
    assert regular_series([]).size == 0
