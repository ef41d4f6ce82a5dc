"""Chart geometry for the dashboard: line charts from `ml.charts`, bars as widths in percent."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ml.charts import LineChart, PointInput, SeriesInput, line_chart
from recommender.dashboard.selectors import DayRow, Metrics


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value_text: str
    width_percent: float  # of the longest bar
    title: str


@dataclass(frozen=True, slots=True)
class BarChart:
    """Horizontal bars drawn with HTML and CSS; the longest bar fills the track."""

    bars: tuple[Bar, ...]


def ctr_bar_chart(rows: Sequence[tuple[str, Metrics]]) -> BarChart | None:
    """Click-through rate of each labelled slice that had impressions; None if none had."""
    measured = [(label, metrics) for label, metrics in rows if metrics.ctr is not None]
    if not measured:
        return None
    top = max(metrics.ctr or 0.0 for _, metrics in measured)
    return BarChart(
        bars=tuple(
            Bar(
                label=label,
                value_text=metrics.ctr_text,
                width_percent=100 * (metrics.ctr or 0.0) / top if top else 0.0,
                title=f"{label}: {metrics.clicks} clicks / {metrics.impressions} impressions",
            )
            for label, metrics in measured
        )
    )


def ctr_by_day_chart(days: Sequence[DayRow]) -> LineChart | None:
    """Daily click-through rate (percent), one line per placement."""
    points: dict[str, list[PointInput]] = {}
    for row in days:
        metrics = row.metrics
        if metrics.ctr is None:
            continue
        title = (
            f"{row.day:%Y-%m-%d}: {metrics.ctr_text} "
            f"({metrics.clicks} clicks / {metrics.impressions} impressions)"
        )
        points.setdefault(row.placement, []).append(
            PointInput(at=row.day, value=100 * metrics.ctr, title=title)
        )
    series = [SeriesInput(label=label, points=points[label]) for label in sorted(points)]
    return line_chart(series, x_label="Day (UTC)", y_label="Click-through rate (%)")


def counts_by_day_chart(
    days: Sequence[DayRow], *, counted: Sequence[tuple[str, str]], y_label: str
) -> LineChart | None:
    """Daily counts of all placements together, one line per (label, Metrics field)."""
    totals: dict[datetime, Metrics] = {}
    for row in days:
        totals[row.day] = totals.get(row.day, Metrics()) + row.metrics
    series = [
        SeriesInput(
            label=label,
            points=[
                PointInput(
                    at=day,
                    value=getattr(metrics, field),
                    title=f"{day:%Y-%m-%d}: {getattr(metrics, field)} {label.lower()}",
                )
                for day, metrics in totals.items()
            ],
        )
        for label, field in counted
    ]
    return line_chart(series, x_label="Day (UTC)", y_label=y_label)
