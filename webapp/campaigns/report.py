"""A campaign's uplift report: exposed vs holdout, per creative, and the bandit's history.

Conversion: a person assigned to the campaign who bought (a `purchase` in the
interaction log, by their visitor or their account) after their assignment. Click
rate: persons who clicked a creative's link among the persons assigned to it (the
holdout sees no content, so it has no click rate). Exposed vs holdout is compared with
the two-proportion z-test of webapp.experiments.stats.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, Min, OuterRef, Q, Subquery

from ml.charts import LineChart, PointInput, SeriesInput, line_chart
from webapp.campaigns.models import (
    Campaign,
    CampaignAssignment,
    CampaignEvent,
    CampaignEventKind,
    CreativeWeightHistory,
)
from webapp.experiments.stats.bandit import ArmPosterior, arm_posterior
from webapp.experiments.stats.comparison import Comparison, compare_proportions
from webapp.experiments.stats.summaries import VariantSummary, proportion_summary
from webapp.models import EventType, Interaction


@dataclass(frozen=True)
class GroupRow:
    """Persons, clickers and converters of the exposed, the holdout or one creative."""

    label: str
    persons: int
    clicked: int
    converted: int
    ctr: VariantSummary | None
    conversion: VariantSummary | None
    posterior: ArmPosterior | None = None


@dataclass(frozen=True)
class CampaignReport:
    exposed: GroupRow
    holdout: GroupRow
    uplift: Comparison | None  # conversion, exposed vs holdout (None: a group is empty)
    creatives: tuple[GroupRow, ...]
    conversion_chart: LineChart | None
    allocation_chart: LineChart | None


@dataclass(frozen=True)
class _Person:
    creative_id: int | None
    assigned_at: datetime
    clicked: bool
    converted_at: datetime | None


def _persons(campaign: Campaign) -> list[_Person]:
    purchases = Interaction.objects.filter(
        Q(visitor_id=OuterRef("visitor_id")) | Q(visitor__user_id=OuterRef("user_id")),
        event_type=EventType.PURCHASE,
        timestamp__gte=OuterRef("assigned_at"),
    )
    first_purchase = purchases.order_by().values("event_type").annotate(first=Min("timestamp"))
    clicks = CampaignEvent.objects.filter(
        campaign_id=OuterRef("campaign_id"), person=OuterRef("person"), kind=CampaignEventKind.CLICK
    )
    rows = (
        CampaignAssignment.objects.filter(campaign=campaign)
        .annotate(clicked=Exists(clicks), converted_at=Subquery(first_purchase.values("first")))
        .values_list("creative_id", "assigned_at", "clicked", "converted_at")
    )
    return [_Person(*row) for row in rows]


def _row(label: str, persons: list[_Person], *, with_ctr: bool, posterior: bool) -> GroupRow:
    n = len(persons)
    clicked = sum(p.clicked for p in persons)
    converted = sum(p.converted_at is not None for p in persons)
    return GroupRow(
        label,
        n,
        clicked,
        converted,
        proportion_summary(clicked, n) if with_ctr and n else None,
        proportion_summary(converted, n) if n else None,
        arm_posterior(clicked, n) if posterior else None,
    )


def campaign_report(campaign: Campaign) -> CampaignReport:
    """Everything the report page shows (three queries)."""
    persons = _persons(campaign)
    exposed = [p for p in persons if p.creative_id is not None]
    holdout = [p for p in persons if p.creative_id is None]
    exposed_row = _row("Exposed", exposed, with_ctr=True, posterior=False)
    holdout_row = _row("Holdout", holdout, with_ctr=False, posterior=False)
    uplift = None
    if exposed_row.conversion is not None and holdout_row.conversion is not None:
        uplift = compare_proportions(holdout_row.conversion, exposed_row.conversion)
    creatives = tuple(
        _row(
            str(c),
            [p for p in exposed if p.creative_id == c.pk],
            with_ctr=True,
            posterior=campaign.bandit,
        )
        for c in campaign.creatives.order_by("position", "pk")
    )
    return CampaignReport(
        exposed_row,
        holdout_row,
        uplift,
        creatives,
        _conversion_chart(exposed, holdout),
        _allocation_chart(campaign),
    )


def _cumulative(persons: list[_Person]) -> list[PointInput]:
    """Conversion rate of the persons assigned by the end of each day (UTC)."""
    days = sorted({p.assigned_at.date() for p in persons})
    points = []
    for day in days:
        cohort = [p for p in persons if p.assigned_at.date() <= day]
        converted = sum(p.converted_at is not None and p.converted_at.date() <= day for p in cohort)
        at = max(p.assigned_at for p in cohort)
        rate = converted / len(cohort)
        points.append(PointInput(at, rate, f"{day}: {converted}/{len(cohort)} = {rate:.2%}"))
    return points


def _conversion_chart(exposed: list[_Person], holdout: list[_Person]) -> LineChart | None:
    series = [
        SeriesInput("Exposed", _cumulative(exposed)),
        SeriesInput("Holdout", _cumulative(holdout)),
    ]
    return line_chart(series, x_label="Day (UTC)", y_label="Conversion (cumulative)")


def _allocation_chart(campaign: Campaign) -> LineChart | None:
    """Each creative's bandit weight at every update."""
    points: dict[int, list[PointInput]] = defaultdict(list)
    history = CreativeWeightHistory.objects.filter(campaign=campaign).order_by("at", "creative_id")
    for row in history:
        title = (
            f"{row.at:%Y-%m-%d %H:%M}: weight {row.weight:.1%}, P(best) {row.probability_best:.1%}"
            f" ({row.successes}/{row.trials})"
        )
        points[row.creative_id].append(PointInput(row.at, row.weight, title, marked=row.updated))
    names = {c.pk: str(c) for c in campaign.creatives.all()}
    series = [SeriesInput(names.get(pk, f"#{pk}"), pts) for pk, pts in points.items()]
    return line_chart(series, x_label="Update", y_label="Share of traffic")
