"""The staff results page of an experiment (charts, warnings, tables) and its CSV export.

Reached from the Experiment admin (`ExperimentAdmin.get_urls`), so only staff with the
view permission get here. GET parameters: `metric` (which metric the charts show),
`correction` (holm / bh), `mode` (fixed / sequential) and `format=csv`.
"""

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse

from ml.charts import PALETTE, LineChart, PointInput, SeriesInput, line_chart
from webapp.experiments.metrics import metric_choices
from webapp.experiments.models import Correction, Experiment
from webapp.experiments.results import ExperimentResults, MetricResult, experiment_results

BAR_WIDTH, BAR_ROW_HEIGHT, BAR_LEFT, BAR_RIGHT = 760, 44, 170, 60


class ResultsForm(forms.Form):
    """The page's selectors; anything invalid falls back to the experiment's settings."""

    metric = forms.ChoiceField(choices=metric_choices, required=False)
    correction = forms.ChoiceField(choices=Correction.choices, required=False)
    mode = forms.ChoiceField(
        choices=[("fixed", "Fixed horizon"), ("sequential", "Sequential (always valid)")],
        required=False,
    )


@dataclass(frozen=True)
class LiftBar:
    """One treatment's lift with its interval, in pixels of the lift chart."""

    label: str
    y: int
    x_estimate: float
    x_lower: float
    x_upper: float
    colour: str
    title: str


@dataclass(frozen=True)
class LiftChart:
    width: int
    height: int
    zero_x: float
    left: int
    right: int
    bars: tuple[LiftBar, ...]
    axis_label: str
    ticks: tuple[tuple[float, str], ...]


def results_page_context(request: HttpRequest, experiment: Experiment) -> dict[str, Any]:
    """Results and charts for the selectors in `request.GET`."""
    form = ResultsForm(request.GET or None)
    chosen = form.cleaned_data if form.is_valid() else {}
    metric = chosen.get("metric") or experiment.primary_metric
    mode = chosen.get("mode") or ("sequential" if experiment.sequential else "fixed")
    results = experiment_results(
        experiment,
        correction=chosen.get("correction") or None,
        sequential=mode == "sequential",
        timeline_metric=metric,
    )
    selected = results.metric(metric)
    initial = {"metric": metric, "correction": results.correction, "mode": mode}
    return {
        "experiment": experiment,
        "results": results,
        "selected": selected,
        "form": ResultsForm(initial=initial),
        "query": request.GET.urlencode(),
        "timeline_chart": timeline_chart(results, selected),
        "lift_chart": lift_chart(selected),
    }


def timeline_chart(results: ExperimentResults, metric: MetricResult) -> LineChart | None:
    """Cumulative value per variant, one point per day."""
    series = [
        SeriesInput(
            label=variant.name,
            points=[
                PointInput(p.at, p.value, f"{p.at:%Y-%m-%d}: {p.value:.4g} over {p.n} persons")
                for p in results.timeline
                if p.variant == variant.key
            ],
        )
        for variant in results.variants
    ]
    return line_chart(series, x_label="Day (UTC)", y_label=f"{metric.label} (cumulative)")


def lift_chart(metric: MetricResult) -> LiftChart | None:
    """Relative lift (absolute when the control is 0) with its CI, one row per treatment."""
    rows = []
    for lift in metric.lifts:
        relative = lift.relative is not None and lift.relative_ci is not None
        estimate = lift.relative if relative else lift.absolute
        ci = lift.relative_ci if relative and lift.relative_ci else lift.absolute_ci
        if estimate is None or not all(map(math.isfinite, (estimate, ci.lower, ci.upper))):
            continue
        rows.append((lift.variant, estimate, ci.lower, ci.upper, relative, lift.significant))
    if not rows:
        return None
    span = max(abs(value) for row in rows for value in row[1:4]) or 1.0
    left, right = BAR_LEFT, BAR_WIDTH - BAR_RIGHT
    zero = (left + right) / 2

    def x(value: float) -> float:
        return zero + (right - left) / 2 * value / (span * 1.1)

    as_percent = all(row[4] for row in rows)
    fmt = "{:+.1%}" if as_percent else "{:+.4g}"
    bars = tuple(
        LiftBar(
            label=key,
            y=30 + index * BAR_ROW_HEIGHT,
            x_estimate=x(estimate),
            x_lower=x(lower),
            x_upper=x(upper),
            colour=PALETTE[(index + 1) % len(PALETTE)] if significant else "#888888",
            title=f"{key}: {fmt.format(estimate)} [{fmt.format(lower)}, {fmt.format(upper)}]",
        )
        for index, (key, estimate, lower, upper, _, significant) in enumerate(rows)
    )
    ticks = tuple((x(v), fmt.format(v)) for v in (-span, -span / 2, 0.0, span / 2, span))
    label = "Relative lift vs control" if as_percent else "Absolute lift vs control"
    height = 30 + len(rows) * BAR_ROW_HEIGHT + 40
    return LiftChart(BAR_WIDTH, height, zero, left, right, bars, label, ticks)


CSV_HEADER = (
    "metric",
    "role",
    "kind",
    "variant",
    "exposed",
    "conflicts",
    "bots",
    "analysed",
    "conversions",
    "denominator",
    "mean",
    "ci_lower",
    "ci_upper",
    "absolute_lift",
    "absolute_ci_lower",
    "absolute_ci_upper",
    "relative_lift",
    "relative_ci_lower",
    "relative_ci_upper",
    "p_value",
    "p_value_adjusted",
    "probability_to_beat_control",
    "test",
    "verdict",
)


def results_csv(results: ExperimentResults) -> str:
    """One row per (metric, variant); the lift columns are empty for the control."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    exposures = {v.key: v for v in results.variants}
    for metric in results.metrics:
        lifts = {lift.variant: lift for lift in metric.lifts}
        for row in metric.variants:
            seen = exposures[row.variant]
            lift = lifts.get(row.variant)
            writer.writerow(
                [
                    metric.key,
                    metric.role,
                    metric.kind,
                    row.variant,
                    seen.exposures,
                    seen.conflicts,
                    seen.bots,
                    row.n,
                    _number(row.conversions),
                    _number(row.denominator),
                    _number(row.mean),
                    _number(row.ci.lower),
                    _number(row.ci.upper),
                    *_lift_cells(lift),
                ]
            )
    return out.getvalue()


def _lift_cells(lift: Any) -> Sequence[str]:
    if lift is None:
        return [""] * 11
    relative_ci = lift.relative_ci
    return [
        _number(lift.absolute),
        _number(lift.absolute_ci.lower),
        _number(lift.absolute_ci.upper),
        _number(lift.relative),
        _number(relative_ci.lower if relative_ci else None),
        _number(relative_ci.upper if relative_ci else None),
        _number(lift.p_value),
        _number(lift.p_value_adjusted),
        _number(lift.probability_to_beat_control),
        lift.test,
        lift.verdict,
    ]


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.10g}"


def results_csv_response(experiment: Experiment, results: ExperimentResults) -> HttpResponse:
    response = HttpResponse(results_csv(results), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{experiment.key}-results.csv"'
    return response
