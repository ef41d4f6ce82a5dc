"""Reads behind the recommendation dashboard: Postgres aggregates over recommendation events.

A recommendation event is an `Interaction` with a placement (a `Section` slug) that no
bot sent; `context` carries the model, model version and experiment variants
(see `recommender.candidates`). Every selector is one query, whatever the event count.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, DecimalField, F, Max, Q, QuerySet, Sum, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, TruncDay
from django.utils import timezone

from ml.models import ModelVersion
from webapp.models import EventType, Interaction

DEFAULT_DAYS = 30
METRIC_FIELDS = ("impressions", "clicks", "add_to_carts", "purchases", "revenue")
COUNTED_EVENTS = {
    "impressions": EventType.IMPRESSION,
    "clicks": EventType.CLICK,
    "add_to_carts": EventType.ADD_TO_CART,
    "purchases": EventType.PURCHASE,
}


@dataclass(frozen=True, slots=True)
class DateWindow:
    """Inclusive calendar days in the site's time zone; a missing end is open."""

    start: date | None = None
    end: date | None = None

    @property
    def is_all_time(self) -> bool:
        return self.start is None and self.end is None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """First instant in the window and first instant after it."""
        zone = timezone.get_current_timezone()
        start_at = None if self.start is None else datetime.combine(self.start, time.min, zone)
        end_day = None if self.end is None else self.end + timedelta(days=1)
        return start_at, None if end_day is None else datetime.combine(end_day, time.min, zone)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Event counts and revenue of one slice of recommendation traffic."""

    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    purchases: int = 0
    revenue: Decimal = Decimal("0.00")

    @property
    def ctr(self) -> float | None:
        """Clicks per impression; None without impressions."""
        return self.clicks / self.impressions if self.impressions else None

    @property
    def ctr_text(self) -> str:
        return "\N{EN DASH}" if self.ctr is None else f"{self.ctr:.1%}"

    def __add__(self, other: "Metrics") -> "Metrics":
        return Metrics(*(getattr(self, name) + getattr(other, name) for name in METRIC_FIELDS))


@dataclass(frozen=True, slots=True)
class PlacementRow:
    placement: str
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class ModelRow:
    """Traffic of one model version, or of a source without one (trending, pinned...)."""

    source: str  # context["model"]; "" when the events did not say
    version_id: int | None
    version_found: bool
    kind: str
    role: str
    status: str
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class VariantRow:
    experiment: str
    variant: str
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class DayRow:
    day: datetime  # midnight starting the day, site time zone
    placement: str
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class DashboardData:
    """Everything the dashboard shows for one date window."""

    totals: Metrics
    placements: tuple[PlacementRow, ...]
    models: tuple[ModelRow, ...]
    variants: tuple[VariantRow, ...]
    days: tuple[DayRow, ...]


def recommendation_events(*, window: DateWindow) -> QuerySet[Interaction]:
    """Events with a placement, bots excluded, inside the window."""
    events = Interaction.objects.exclude(placement="").filter(is_bot=False)
    start_at, end_before = window.bounds()
    if start_at is not None:
        events = events.filter(timestamp__gte=start_at)
    if end_before is not None:
        events = events.filter(timestamp__lt=end_before)
    return events


def recommendation_event_latest_at() -> datetime | None:
    """When the newest recommendation event happened; None before the first one."""
    latest = recommendation_events(window=DateWindow()).aggregate(latest=Max("timestamp"))
    return latest["latest"]


def dashboard_window_default(*, today: date, latest_event_at: datetime | None) -> DateWindow:
    """The last 30 days, or the 30 days up to the newest event when nothing is that recent."""
    end = today
    if latest_event_at is not None:
        latest_day = timezone.localdate(latest_event_at)
        if latest_day < today - timedelta(days=DEFAULT_DAYS - 1):
            end = latest_day
    return DateWindow(start=end - timedelta(days=DEFAULT_DAYS - 1), end=end)


def recommendation_dashboard_data(*, window: DateWindow) -> DashboardData:
    """Totals and breakdowns per placement, model version, variant and day (five queries)."""
    placements = metrics_by_placement(window=window)
    totals = sum((row.metrics for row in placements), Metrics())
    return DashboardData(
        totals=totals,
        placements=placements,
        models=metrics_by_model_version(window=window),
        variants=metrics_by_variant(window=window),
        days=metrics_by_day(window=window),
    )


def metrics_by_placement(*, window: DateWindow) -> tuple[PlacementRow, ...]:
    """One row per placement, the most shown first."""
    rows = (
        recommendation_events(window=window)
        .values("placement")
        .annotate(**_metric_aggregates())
        .order_by(F("impressions").desc(), "placement")
    )
    return tuple(PlacementRow(placement=row["placement"], metrics=_metrics(row)) for row in rows)


def metrics_by_model_version(*, window: DateWindow) -> tuple[ModelRow, ...]:
    """One row per (source, model version), with the version's kind and role (two queries)."""
    rows = list(
        recommendation_events(window=window)
        .annotate(source=KT("context__model"), version_key=KT("context__model_version"))
        .values("source", "version_key")
        .annotate(**_metric_aggregates())
        .order_by(F("impressions").desc(), "source", "version_key")
    )
    ids = {_version_id(row["version_key"]) for row in rows} - {None}
    versions = ModelVersion.objects.only("kind", "role", "status").in_bulk(ids)
    return tuple(_model_row(row, versions) for row in rows)


def metrics_by_variant(*, window: DateWindow) -> tuple[VariantRow, ...]:
    """One row per (experiment, variant): events fan out over their `variants` entries."""
    events_sql, events_params = (
        recommendation_events(window=window)
        .values("event_type", "value", "context")
        .query.sql_with_params()
    )
    counts = ", ".join("COUNT(*) FILTER (WHERE e.event_type = %s)" for _ in COUNTED_EVENTS)
    # A `variants` that is not an object (bad client data) would make jsonb_each_text fail.
    sql = f"""
        SELECT variant.key, variant.value, {counts},
            COALESCE(SUM(e.value) FILTER (WHERE e.event_type = %s), 0)
        FROM ({events_sql}) AS e
        CROSS JOIN LATERAL jsonb_each_text(
            CASE WHEN jsonb_typeof(e.context -> 'variants') = 'object'
            THEN e.context -> 'variants' ELSE '{{}}'::jsonb END
        ) AS variant
        GROUP BY variant.key, variant.value
        ORDER BY variant.key, variant.value
    """  # noqa: S608 -- only Django-compiled SQL is interpolated; values travel as params
    params = [*COUNTED_EVENTS.values(), EventType.PURCHASE, *events_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return tuple(
            VariantRow(experiment=key, variant=value, metrics=Metrics(*numbers))
            for key, value, *numbers in cursor.fetchall()
        )


def metrics_by_day(*, window: DateWindow) -> tuple[DayRow, ...]:
    """One row per (day, placement) with any event, oldest first."""
    rows = (
        recommendation_events(window=window)
        .annotate(day=TruncDay("timestamp"))
        .values("day", "placement")
        .annotate(**_metric_aggregates())
        .order_by("day", "placement")
    )
    return tuple(
        DayRow(day=row["day"], placement=row["placement"], metrics=_metrics(row)) for row in rows
    )


def _metric_aggregates() -> dict[str, Any]:
    counts: dict[str, Any] = {
        name: Count("pk", filter=Q(event_type=event_type))
        for name, event_type in COUNTED_EVENTS.items()
    }
    revenue = Sum("value", filter=Q(event_type=EventType.PURCHASE))
    money = DecimalField(max_digits=14, decimal_places=2)
    return {**counts, "revenue": Coalesce(revenue, Value(Decimal("0.00")), output_field=money)}


def _metrics(row: Mapping[str, Any]) -> Metrics:
    return Metrics(**{name: row[name] for name in METRIC_FIELDS})


def _version_id(key: str | None) -> int | None:
    return int(key) if key is not None and key.isdigit() else None


def _model_row(row: Mapping[str, Any], versions: dict[Any, ModelVersion]) -> ModelRow:
    version_id = _version_id(row["version_key"])
    version = versions.get(version_id)
    return ModelRow(
        source=row["source"] or "",
        version_id=version_id,
        version_found=version is not None,
        kind=version.kind if version is not None else "",
        role=str(version.get_role_display()) if version is not None else "",
        status=str(version.get_status_display()) if version is not None else "",
        metrics=_metrics(row),
    )
