"""Geometry of small line charts drawn as inline SVG by admin templates (no JavaScript).

Framework-free: takes series of (time, value) points, returns pixel coordinates,
ticks and colours; the template only draws them.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WIDTH, HEIGHT = 760, 320
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 50, 40, 55
TICKS = 5
# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9")


@dataclass(frozen=True)
class PointInput:
    """One observation: when, how much, its tooltip, and whether to mark it."""

    at: datetime
    value: float
    title: str
    marked: bool = False


@dataclass(frozen=True)
class SeriesInput:
    label: str
    points: Sequence[PointInput]


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    title: str
    marked: bool


@dataclass(frozen=True)
class ChartSeries:
    label: str
    colour: str
    points: tuple[ChartPoint, ...]
    legend_x: int

    @property
    def polyline(self) -> str:
        """The `points` attribute of an SVG polyline through the series."""
        return " ".join(f"{point.x:.1f},{point.y:.1f}" for point in self.points)


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LineChart:
    """Everything an SVG template needs: canvas, plot area, ticks, series, labels."""

    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    series: tuple[ChartSeries, ...]
    x_label: str
    y_label: str

    @property
    def x_label_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def y_label_y(self) -> float:
        return (self.top + self.bottom) / 2


def line_chart(series: Sequence[SeriesInput], *, x_label: str, y_label: str) -> LineChart | None:
    """A time-by-value chart of the non-empty series; None when there is nothing to draw."""
    drawn = [one for one in series if one.points]
    if not drawn:
        return None
    times = [point.at for one in drawn for point in one.points]
    start, end = min(times), max(times)
    if end - start < timedelta(hours=1):
        start, end = start - timedelta(days=1), end + timedelta(days=1)
    peak = max(point.value for one in drawn for point in one.points)
    y_step = nice_ceiling(peak / (TICKS - 1))
    y_count = max(1, math.ceil(peak / y_step - 1e-9))
    top_value = y_step * y_count
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = WIDTH - MARGIN_RIGHT, HEIGHT - MARGIN_BOTTOM

    def x_of(at: datetime) -> float:
        return left + (right - left) * (at - start) / (end - start)

    def y_of(value: float) -> float:
        return bottom - (bottom - top) * value / top_value

    time_format = "%Y-%m-%d" if end - start > timedelta(days=3) else "%m-%d %H:%M"
    x_ticks = tuple(
        Tick(x_of(at), at.strftime(time_format))
        for at in (start + (end - start) * i / (TICKS - 1) for i in range(TICKS))
    )
    y_ticks = tuple(Tick(y_of(y_step * i), f"{round(y_step * i, 6):g}") for i in range(y_count + 1))
    chart_series = tuple(
        ChartSeries(
            label=one.label,
            colour=PALETTE[index % len(PALETTE)],
            points=tuple(
                ChartPoint(x_of(p.at), y_of(p.value), p.title, p.marked)
                for p in sorted(one.points, key=lambda p: p.at)
            ),
            legend_x=left + index * 190,
        )
        for index, one in enumerate(drawn)
    )
    return LineChart(
        WIDTH, HEIGHT, left, top, right, bottom, x_ticks, y_ticks, chart_series, x_label, y_label
    )


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 or 10 times a power of ten at or above `value`."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * power >= value * (1 - 1e-9):
            return step * power
    return 10.0 * power
