"""The experiment metrics registry, and their per-person values from the interaction log.

Each metric is defined once, here, as SQL aggregates over one person's events. A
person's events are those of every visitor of that person (for "user:<pk>": the user's
visitor and the visitors merged into it; for "visitor:<pk>": that visitor), not sent by
a bot. The *post* window starts at the person's first exposure (and ends at `until`);
the *pre* window is the `pre_period` just before it (the covariate for CUPED).

Kinds tell the statistics how to read the values:

- ``rate``: a ratio of two per-person sums (clicks / impressions), analysed as a ratio
  metric over persons (delta method); a person without a denominator adds nothing.
- ``mean``: one value per person (numerator; denominator 1), averaged over persons;
  ``binary`` ones are 0/1 (a proportion).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.utils import timezone

if TYPE_CHECKING:
    from webapp.experiments.models import Experiment

DEFAULT_PRE_PERIOD = timedelta(days=14)


class MetricKind(StrEnum):
    RATE = "rate"
    MEAN = "mean"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric: SQL aggregates over the person's events `ev` inside `{window}`.

    The aggregates may use ``%(placements)s`` (the experiment's event placements).
    """

    key: str
    label: str
    kind: MetricKind
    description: str
    numerator: str
    denominator: str = "1"
    binary: bool = False


METRICS: dict[str, Metric] = {
    metric.key: metric
    for metric in (
        Metric(
            key="ctr",
            label="Click-through rate",
            kind=MetricKind.RATE,
            description="Clicks / impressions on the experiment's placement, after exposure.",
            numerator="COUNT(*) FILTER (WHERE {window} AND ev.event_type = 'click' "
            "AND ev.placement = ANY(%(placements)s))",
            denominator="COUNT(*) FILTER (WHERE {window} AND ev.event_type = 'impression' "
            "AND ev.placement = ANY(%(placements)s))",
        ),
        Metric(
            key="conversion",
            label="Conversion",
            kind=MetricKind.MEAN,
            description="1 when the person bought anything after exposure, else 0.",
            numerator="(COUNT(*) FILTER (WHERE {window} AND ev.event_type = 'purchase') > 0)::int",
            binary=True,
        ),
        Metric(
            key="revenue_per_visitor",
            label="Revenue per visitor",
            kind=MetricKind.MEAN,
            description="Sum of the person's purchase values after exposure.",
            numerator="COALESCE(SUM(ev.value) FILTER "
            "(WHERE {window} AND ev.event_type = 'purchase'), 0)",
        ),
        Metric(
            key="items_per_session",
            label="Items viewed per session",
            kind=MetricKind.RATE,
            description="Distinct items viewed per session (sessions with a view), after "
            "exposure; views without a session id are not counted.",
            numerator="COUNT(DISTINCT ev.session_id || ':' || ev.item_id) FILTER "
            "(WHERE {window} AND ev.event_type = 'view' AND ev.item_id IS NOT NULL "
            "AND ev.session_id <> '')",
            denominator="COUNT(DISTINCT ev.session_id) FILTER "
            "(WHERE {window} AND ev.event_type = 'view' AND ev.item_id IS NOT NULL "
            "AND ev.session_id <> '')",
        ),
    )
}


def metric_choices() -> list[tuple[str, str]]:
    """(key, label) of every registered metric, for model and form fields."""
    return [(metric.key, metric.label) for metric in METRICS.values()]


def metric_get(key: str) -> Metric:
    """The registered metric; KeyError names the unknown key."""
    return METRICS[key]


@dataclass(frozen=True, slots=True)
class PersonValue:
    """One exposed person's numbers for one metric, after and before exposure."""

    person: str
    variant: str
    conflict: bool
    numerator: float
    denominator: float
    pre_numerator: float
    pre_denominator: float

    @property
    def value(self) -> float | None:
        """numerator / denominator; None when the person has no denominator."""
        return self.numerator / self.denominator if self.denominator else None

    @property
    def pre_value(self) -> float | None:
        return self.pre_numerator / self.pre_denominator if self.pre_denominator else None


def metric_person_values(
    *,
    experiment: "Experiment",
    metric_keys: Sequence[str],
    pre_period: timedelta = DEFAULT_PRE_PERIOD,
    until: datetime | None = None,
    include_conflicts: bool = False,
) -> dict[str, list[PersonValue]]:
    """Per metric, one value per exposed person (ordered by person), in one SQL query.

    Persons flagged `conflict` (saw two variants across a login) are left out of the
    analysis unless `include_conflicts`.
    """
    metrics = [metric_get(key) for key in dict.fromkeys(metric_keys)]
    if not metrics:
        return {}
    params: dict[str, Any] = {
        "experiment": experiment.pk,
        "placements": list(experiment.event_placements),
        "pre": pre_period,
        "until": until or timezone.now(),
        "conflicts": include_conflicts,
    }
    with connection.cursor() as cursor:
        cursor.execute(_values_sql(metrics), params)
        rows = cursor.fetchall()
    values: dict[str, list[PersonValue]] = {metric.key: [] for metric in metrics}
    for person, variant, conflict, *numbers in rows:
        for index, metric in enumerate(metrics):
            num, den, pre_num, pre_den = (float(n) for n in numbers[index * 4 : index * 4 + 4])
            values[metric.key].append(
                PersonValue(person, variant, conflict, num, den, pre_num, pre_den)
            )
    return values


def _values_sql(metrics: Sequence[Metric]) -> str:
    columns = []
    for metric in metrics:
        for window in ("ev.after", "NOT ev.after"):
            columns.append(metric.numerator.format(window=window))
            columns.append(metric.denominator.format(window=window))
    aggregates = ",\n    ".join(f"COALESCE({column}, 0)" for column in columns)
    return PERSON_VALUES_SQL.replace("{aggregates}", aggregates)


# Events of a person: their exposure's visitor when anonymous; for an account, the
# user's visitors and those merged into them. One row per person and exposure.
PERSON_VALUES_SQL = """
WITH exposed AS (
    SELECT e.id, e.person, e.user_id, e.visitor_id, e.first_exposed_at, e.conflict,
           v.key AS variant
    FROM experiments_exposure e
    JOIN experiments_variant v ON v.id = e.variant_id
    WHERE e.experiment_id = %(experiment)s AND (%(conflicts)s OR NOT e.conflict)
),
person_visitor AS (
    SELECT x.id AS exposure_id, x.visitor_id
    FROM exposed x WHERE x.user_id IS NULL AND x.visitor_id IS NOT NULL
    UNION
    SELECT x.id, v.id FROM exposed x JOIN webapp_visitor v ON v.user_id = x.user_id
    UNION
    SELECT x.id, m.id FROM exposed x
    JOIN webapp_visitor c ON c.user_id = x.user_id
    JOIN webapp_visitor m ON m.merged_into_id = c.id
),
ev AS (
    SELECT pv.exposure_id, i.event_type, i.item_id, i.session_id, i.placement, i.value,
           i.timestamp >= x.first_exposed_at AS after
    FROM person_visitor pv
    JOIN exposed x ON x.id = pv.exposure_id
    JOIN webapp_interaction i ON i.visitor_id = pv.visitor_id
    WHERE NOT i.is_bot
      AND i.timestamp >= x.first_exposed_at - %(pre)s
      AND i.timestamp < %(until)s
)
SELECT x.person, x.variant, x.conflict,
    {aggregates}
FROM exposed x
LEFT JOIN ev ON ev.exposure_id = x.id
GROUP BY x.id, x.person, x.variant, x.conflict
ORDER BY x.person
"""
