"""Wavelet analytics of a price series (PyWavelets), framework-free.

- `regular_series` resamples price changes (observations are stored only on change) onto a
  regular grid, carrying the last price forward.
- `denoise` removes noise by soft-thresholding the detail coefficients of a Haar wavelet
  decomposition with the universal threshold sigma * sqrt(2 log n) (Donoho-Johnstone),
  sigma estimated from the finest level's median absolute deviation.
- `detect_level_shifts` finds steps where the energy of the stationary (undecimated) Haar
  detail coefficients, summed over levels, exceeds what noise explains, and
  `classify_shifts` calls a drop that comes back within `max_promo_length` a temporary
  promotion and any other step a permanent change.
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pywt

WAVELET = "haar"  # prices move in steps; Haar's step-shaped wavelets fit them best
MAX_LEVEL = 3
# Noise below this share of the price level is treated as none (a flat series has MAD 0).
MIN_RELATIVE_SIGMA = 0.002
MIN_RELATIVE_SHIFT = 0.01  # steps smaller than 1% of the price are not level shifts
PROMO_RETURN_TOLERANCE = 0.03  # back within 3% of the old level counts as a return


@dataclass(frozen=True, slots=True)
class LevelShift:
    """A step in the (denoised) series at `index`: the level before and after it."""

    index: int
    before: float
    after: float
    kind: str = "permanent"  # "promotion_start", "promotion_end" or "permanent"

    @property
    def relative_change(self) -> float:
        return (self.after - self.before) / self.before if self.before else math.inf


def regular_series(
    points: Sequence[tuple[datetime, float]],
    *,
    step: timedelta = timedelta(days=1),
    until: datetime | None = None,
) -> np.ndarray:
    """The last known price at every `step` from the first point to `until` (or the last)."""
    if not points:
        return np.zeros(0)
    ordered = sorted(points)
    start, end = ordered[0][0], until or ordered[-1][0]
    count = int((end - start) / step) + 1
    values = np.empty(count)
    current, cursor = ordered[0][1], 0
    for i in range(count):
        at = start + i * step
        while cursor < len(ordered) and ordered[cursor][0] <= at:
            current = ordered[cursor][1]
            cursor += 1
        values[i] = current
    return values


def noise_sigma(values: np.ndarray) -> float:
    """Noise level from the finest Haar details (MAD / 0.6745), floored relative to the level."""
    floor = MIN_RELATIVE_SIGMA * float(np.median(np.abs(values))) if values.size else 0.0
    if values.size < 2:
        return floor
    detail = pywt.wavedec(values, WAVELET, level=1)[-1]
    mad = float(np.median(np.abs(detail - np.median(detail))))
    return max(mad / 0.6745, floor, 1e-12)


def denoise(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Soft universal-threshold wavelet denoising; same length as the input."""
    series = np.asarray(values, dtype=np.float64)
    if series.size < 4:
        return series.copy()
    level = min(MAX_LEVEL + 2, pywt.dwt_max_level(series.size, WAVELET))
    coefficients = pywt.wavedec(series, WAVELET, level=level, mode="symmetric")
    threshold = noise_sigma(series) * math.sqrt(2 * math.log(series.size))
    kept = [coefficients[0]] + [pywt.threshold(c, threshold, mode="soft") for c in coefficients[1:]]
    return np.asarray(pywt.waverec(kept, WAVELET, mode="symmetric")[: series.size])


def detail_energy(values: np.ndarray, levels: int = MAX_LEVEL) -> np.ndarray:
    """Sum over levels of the squared stationary Haar details, aligned so that a step
    between positions t-1 and t peaks at t."""
    n = values.size
    padded_length = int(math.ceil(n / 2**levels) * 2**levels) + 2**levels
    pad = padded_length - n
    padded = np.pad(values, (0, pad), mode="edge")
    coefficients = pywt.swt(padded, WAVELET, level=levels, trim_approx=True, norm=True)
    energy = np.zeros(padded_length)
    for j, detail in enumerate(reversed(coefficients[1:]), start=1):
        # The level-j Haar filter spans 2**j samples; centre it on the step.
        energy += np.roll(detail, 2 ** (j - 1)) ** 2
    return energy[:n]


def detect_level_shifts(
    values: Sequence[float] | np.ndarray, *, min_gap: int = 2**MAX_LEVEL
) -> list[LevelShift]:
    """Steps whose detail energy exceeds the noise's (universal threshold per level)."""
    series = np.asarray(values, dtype=np.float64)
    if series.size < 2**MAX_LEVEL:
        return []
    sigma = noise_sigma(series)
    energy = detail_energy(series)
    threshold = MAX_LEVEL * sigma**2 * 2 * math.log(series.size)
    candidates = [int(i) for i in np.argsort(-energy) if energy[i] > threshold]
    chosen: list[int] = []
    for index in candidates:  # strongest first; suppress their neighbours
        if index > 0 and all(abs(index - other) >= min_gap for other in chosen):
            chosen.append(index)
    # Each segment's level is its median: robust to noise, and exact on clean steps
    # (the soft-thresholded reconstruction would shrink the steps a little).
    bounds = [0, *sorted(chosen), series.size]
    levels = [float(np.median(series[a:b])) for a, b in itertools.pairwise(bounds)]
    shifts = []
    for index, before, after in zip(sorted(chosen), levels, levels[1:], strict=False):
        if before and abs(after - before) / abs(before) >= MIN_RELATIVE_SHIFT:
            shifts.append(LevelShift(index, before, after))
    return shifts


def classify_shifts(
    shifts: Sequence[LevelShift], *, max_promo_length: int = 21
) -> list[LevelShift]:
    """A drop followed, within `max_promo_length` steps, by a rise back to about the old
    level is a promotion (start and end); every other shift is a permanent change."""
    result = list(shifts)
    for i, drop in enumerate(result):
        if drop.kind != "permanent" or drop.after >= drop.before:
            continue
        for j in range(i + 1, len(result)):
            rise = result[j]
            if rise.index - drop.index > max_promo_length:
                break
            if (
                rise.after > rise.before
                and abs(rise.after - drop.before) <= PROMO_RETURN_TOLERANCE * drop.before
            ):
                result[i] = LevelShift(drop.index, drop.before, drop.after, "promotion_start")
                result[j] = LevelShift(rise.index, rise.before, rise.after, "promotion_end")
                break
    return result


def analyse_prices(
    values: Sequence[float] | np.ndarray, *, max_promo_length: int = 21
) -> list[LevelShift]:
    """Level shifts of a regular price series, classified as promotions or permanent."""
    return classify_shifts(detect_level_shifts(values), max_promo_length=max_promo_length)
