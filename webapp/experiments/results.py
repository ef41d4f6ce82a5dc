"""The results of a fixed-split experiment: every statistic its admin page shows.

`experiment_results` reads the exposures and the interaction log (through
`metrics.metric_person_values`, one query for all metrics) and runs the statistics engine:

- **who counts**: exposed persons of the experiment; persons flagged ``conflict`` (two
  variants across a login) are left out of the analysis and counted per variant, and so
  are persons whose visitor is a bot (events flagged as bots never count anyway);
- **per metric and variant**: persons analysed, conversions (the numerator's total:
  buyers, clicks...), mean and 95 % interval. Binary metrics are proportions (Wilson
  interval, two-proportion z-test, Beta-binomial probability to beat control); other
  mean metrics use Student t / Welch / a normal approximation; ratio metrics (clicks /
  impressions) are linearised per person with the delta method,
  z_i = (y_i - R x_i) / mean(x), then treated as means (Welch), so a person's many
  impressions are not mistaken for independent trials;
- **CUPED** replaces the comparison of a mean metric when persons have pre-exposure
  values (variance reduction reported); **sequential** mode replaces intervals and
  p-values by always-valid confidence sequences; in fixed-horizon mode a result is
  "not yet" until every variant reached the sample size for the minimum detectable effect;
- **Holm or Benjamini-Hochberg** over every (non-guardrail metric x treatment) p-value;
  guardrails get a one-sided alarm instead (never corrected);
- **sample ratio mismatch** on the current bucket version's exposures against the
  configured weights (earlier bucket versions had other weights, which are not stored).
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import cast

from django.db.models import Q
from django.utils import timezone

from webapp.experiments.metrics import METRICS, MetricKind, PersonValue, metric_person_values
from webapp.experiments.models import Experiment, Exposure, Variant
from webapp.experiments.results_stats import (
    ALPHA,
    CupedInfo,
    Lift,
    MetricResult,
    VariantMetric,
    lift_verdict,
    metric_result,
)
from webapp.experiments.stats import (
    CorrectionMethod,
    SrmResult,
    adjust_p_values,
    sample_ratio_mismatch,
)

__all__ = [
    "CupedInfo",
    "ExperimentResults",
    "Lift",
    "MetricResult",
    "VariantExposures",
    "VariantMetric",
    "experiment_results",
]

SRM_MIN_SAMPLE = 100
# The cumulative chart: one point per UTC day, thinned to at most this many queries.
MAX_TIMELINE_POINTS = 31
# Relative drop a guardrail tolerates before its alarm may fire (0: any significant drop).
GUARDRAIL_TOLERANCE = 0.0


@dataclass(frozen=True)
class VariantExposures:
    """Who was exposed to one variant: analysed persons, conflicts and bots left out."""

    key: str
    name: str
    weight: int
    is_control: bool
    exposures: int
    conflicts: int
    bots: int


@dataclass(frozen=True)
class TimelinePoint:
    """A variant's cumulative metric value over the persons exposed before `at`."""

    variant: str
    at: datetime
    n: int
    value: float


@dataclass(frozen=True)
class ExperimentResults:
    """Everything the results page shows about one experiment at `computed_at`."""

    experiment_id: int
    experiment_key: str
    control: str
    correction: str
    sequential: bool
    alpha: float
    computed_at: datetime
    variants: tuple[VariantExposures, ...]
    srm: SrmResult | None
    srm_bucket_version: int
    metrics: tuple[MetricResult, ...]
    timeline_metric: str
    timeline: tuple[TimelinePoint, ...]

    @property
    def conflicts(self) -> int:
        return sum(v.conflicts for v in self.variants)

    @property
    def bots(self) -> int:
        return sum(v.bots for v in self.variants)

    @property
    def srm_warning(self) -> bool:
        return self.srm is not None and self.srm.warning

    @property
    def guardrail_alarms(self) -> tuple[MetricResult, ...]:
        return tuple(metric for metric in self.metrics if metric.guardrail_alarm)

    def metric(self, key: str) -> MetricResult:
        """The result of metric `key`; KeyError when it is not in the report."""
        for metric in self.metrics:
            if metric.key == key:
                return metric
        raise KeyError(key)


def experiment_results(
    experiment: Experiment,
    *,
    correction: str | None = None,
    sequential: bool | None = None,
    timeline_metric: str | None = None,
    now: datetime | None = None,
) -> ExperimentResults:
    """The statistics of `experiment` from its exposures and interaction log (see module).

    `correction` and `sequential` default to the experiment's settings; the cumulative
    timeline is drawn for `timeline_metric` (default: the primary metric).
    """
    chart_metric = timeline_metric or experiment.primary_metric
    if chart_metric not in METRICS:
        raise ValueError(f"unknown metric {chart_metric!r}")
    method = correction or experiment.correction
    if method not in ("holm", "bh"):
        raise ValueError(f"correction must be 'holm' or 'bh', not {method!r}")
    always_valid = experiment.sequential if sequential is None else sequential
    until = _until(experiment, now)
    variants = list(experiment.variants.order_by("position", "pk"))
    exposures, bot_persons = _exposure_counts(experiment, variants)
    control = next((v.key for v in variants if v.is_control), variants[0].key if variants else "")
    roles = _metric_roles(experiment)
    values = metric_person_values(experiment=experiment, metric_keys=list(roles), until=until)
    metrics = [
        metric_result(
            METRICS[key],
            role,
            [p for p in values[key] if p.person not in bot_persons],
            [v.key for v in variants],
            control,
            mde=experiment.minimum_detectable_effect,
            sequential=always_valid,
        )
        for key, role in roles.items()
    ]
    if not control:  # no variants yet: nothing to compare
        metrics = []
    return ExperimentResults(
        experiment_id=experiment.pk,
        experiment_key=experiment.key,
        control=control,
        correction=method,
        sequential=always_valid,
        alpha=ALPHA,
        computed_at=until,
        variants=tuple(exposures),
        srm=_srm(experiment, variants),
        srm_bucket_version=experiment.bucket_version,
        metrics=tuple(_corrected(metrics, cast(CorrectionMethod, method))),
        timeline_metric=chart_metric,
        timeline=_timeline(experiment, chart_metric, [v.key for v in variants], bot_persons, until),
    )


def _until(experiment: Experiment, now: datetime | None) -> datetime:
    current = now or timezone.now()
    return min(current, experiment.ends_at) if experiment.ends_at else current


def _metric_roles(experiment: Experiment) -> dict[str, str]:
    """Primary first, then the other non-guardrail metrics, then the guardrails."""
    guardrails = [key for key in experiment.guardrail_metrics if key in METRICS]
    roles = {experiment.primary_metric: "primary"}
    roles |= {key: "secondary" for key in METRICS if key not in roles and key not in guardrails}
    return roles | {key: "guardrail" for key in guardrails}


def _exposure_counts(
    experiment: Experiment, variants: Sequence[Variant]
) -> tuple[list[VariantExposures], set[str]]:
    rows = Exposure.objects.filter(experiment=experiment).values_list(
        "person", "variant__key", "conflict", "visitor__is_bot"
    )
    counts: Counter[tuple[str, str]] = Counter()
    bots: set[str] = set()
    for person, variant, conflict, is_bot in rows:
        if is_bot:
            bots.add(person)
        kind = "bots" if is_bot else "conflicts" if conflict else "exposures"
        counts[(variant, kind)] += 1
    table = [
        VariantExposures(
            key=v.key,
            name=v.name or v.key,
            weight=v.weight,
            is_control=v.is_control,
            exposures=counts[(v.key, "exposures")],
            conflicts=counts[(v.key, "conflicts")],
            bots=counts[(v.key, "bots")],
        )
        for v in variants
    ]
    return table, bots


def _srm(experiment: Experiment, variants: Sequence[Variant]) -> SrmResult | None:
    """Observed vs configured split of the current bucket version (bots left out)."""
    if len(variants) < 2 or sum(v.weight for v in variants) <= 0:
        return None
    observed = Counter(
        Exposure.objects.filter(experiment=experiment, bucket_version=experiment.bucket_version)
        .filter(Q(visitor__isnull=True) | Q(visitor__is_bot=False))
        .values_list("variant_id", flat=True)
    )
    return sample_ratio_mismatch(
        [observed[v.pk] for v in variants],
        [v.weight for v in variants],
        min_total=SRM_MIN_SAMPLE,
    )


def _corrected(metrics: list[MetricResult], method: CorrectionMethod) -> list[MetricResult]:
    """Holm / BH over every non-guardrail (metric, treatment) p-value of the report."""
    family = [
        (m_index, l_index)
        for m_index, metric in enumerate(metrics)
        if metric.role != "guardrail"
        for l_index in range(len(metric.lifts))
    ]
    adjusted = adjust_p_values([metrics[m].lifts[i].p_value for m, i in family], method)
    lifts = [list(metric.lifts) for metric in metrics]
    for (m_index, l_index), p_adjusted in zip(family, adjusted, strict=True):
        lift = lifts[m_index][l_index]
        ready = not lift.verdict.startswith("not yet")
        significant = ready and p_adjusted < ALPHA
        verdict = lift.verdict
        if ready:
            verdict = lift_verdict(lift.absolute, p_adjusted, True, None, None)
        lifts[m_index][l_index] = replace(
            lift, p_value_adjusted=p_adjusted, significant=significant, verdict=verdict
        )
    return [replace(metric, lifts=tuple(rows)) for metric, rows in zip(metrics, lifts, strict=True)]


def _timeline(
    experiment: Experiment,
    metric_key: str,
    variant_keys: Sequence[str],
    bots: set[str],
    until: datetime,
) -> tuple[TimelinePoint, ...]:
    """Cumulative value per variant at the end of each UTC day (one query per point)."""
    exposed = dict(
        Exposure.objects.filter(experiment=experiment, conflict=False)
        .exclude(person__in=bots)
        .values_list("person", "first_exposed_at")
    )
    if not exposed:
        return ()
    first_day = min(exposed.values()).astimezone(UTC).date()
    days = (until.astimezone(UTC).date() - first_day).days + 1
    ends = [datetime.combine(first_day + timedelta(days=d + 1), time.min, UTC) for d in range(days)]
    if len(ends) > MAX_TIMELINE_POINTS:
        step = len(ends) / MAX_TIMELINE_POINTS
        ends = [ends[int(i * step)] for i in range(MAX_TIMELINE_POINTS - 1)] + [ends[-1]]
    ends = [min(end, until) for end in ends]
    points = []
    for end in ends:
        values = metric_person_values(experiment=experiment, metric_keys=[metric_key], until=end)
        persons = [p for p in values[metric_key] if p.person in exposed and exposed[p.person] < end]
        points += [
            point
            for key in variant_keys
            if (point := _cumulative(metric_key, key, end, persons)) is not None
        ]
    return tuple(points)


def _cumulative(
    metric_key: str, variant: str, at: datetime, persons: Sequence[PersonValue]
) -> TimelinePoint | None:
    mine = [p for p in persons if p.variant == variant]
    if METRICS[metric_key].kind == MetricKind.RATE:
        mine = [p for p in mine if p.denominator > 0]
        denominator = sum(p.denominator for p in mine)
    else:
        denominator = len(mine)
    if not mine or not denominator:
        return None
    return TimelinePoint(variant, at, len(mine), sum(p.numerator for p in mine) / denominator)
