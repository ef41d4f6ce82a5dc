"""Admin screens for the catalog, visitors and the interaction log."""

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.db.models.expressions import Combinable
from django.http import HttpRequest, HttpResponse

from webapp.models import Category, Interaction, Item, RateLimitCounter, Visitor
from webapp.selectors.catalog import ANOMALY_QUANTILE, item_anomaly_threshold
from webapp.services.visitors import visitor_erase, visitor_export


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin[Category]):
    list_display = ["name", "slug", "parent"]
    list_filter = [("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["parent"]


class AnomalousContentFilter(admin.SimpleListFilter):
    """Items whose content is most unlike the rest of the catalog: an anomaly score in the
    catalog's top 1% (at or above its 99th percentile; a fixed share, so the list stays a
    short review queue however clean the catalog is), or items not scored yet."""

    title = "anomalous content"
    parameter_name = "anomalous"
    TOP, UNSCORED = "top", "unscored"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        share = round((1 - ANOMALY_QUANTILE) * 100)
        return [
            (self.TOP, f"Top {share}% most unlike the catalog (often broken scrapes)"),
            (self.UNSCORED, "Not scored yet"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Item]) -> QuerySet[Item]:
        if self.value() == self.UNSCORED:
            return queryset.filter(anomaly_score__isnull=True)
        if self.value() != self.TOP:
            return queryset
        threshold = item_anomaly_threshold()
        if threshold is None:
            return queryset.none()
        return queryset.filter(anomaly_score__gte=threshold)


# Unscored items (null) count as the least anomalous: last when sorted most anomalous first
# (the admin reverses nulls_first with the direction).
ANOMALY_ORDER = F("anomaly_score").asc(nulls_first=True)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin[Item]):
    list_display = [
        "external_id",
        "title",
        "category",
        "list_price",
        "currency",
        "is_active",
        "anomaly",
        "updated_at",
    ]
    list_filter = [
        "is_active",
        AnomalousContentFilter,
        ("category", admin.RelatedOnlyFieldListFilter),
        "currency",
    ]
    search_fields = ["external_id", "title"]
    readonly_fields = [
        "semantic_id",
        "semantic_id_version",
        "anomaly_score",
        "created_at",
        "updated_at",
    ]
    autocomplete_fields = ["category"]
    list_per_page = 50
    actions = ["activate", "deactivate"]

    @admin.display(
        description="anomaly score (1 = typical)", ordering=ANOMALY_ORDER, empty_value="-"
    )
    def anomaly(self, item: Item) -> str | None:
        """The score to two decimals: 1 is a typical item, high values look broken."""
        return None if item.anomaly_score is None else f"{item.anomaly_score:.2f}"

    def get_ordering(
        self, request: HttpRequest
    ) -> list[str | Combinable] | tuple[str | Combinable, ...]:
        """Most anomalous first while the anomalous-content filter is on."""
        if request.GET.get(AnomalousContentFilter.parameter_name) == AnomalousContentFilter.TOP:
            return [F("anomaly_score").desc(nulls_last=True), "-id"]
        return super().get_ordering(request)

    @admin.action(description="Activate selected items")
    def activate(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        count = queryset.update(is_active=True)
        self.message_user(request, f"{count} items activated.")

    @admin.action(description="Deactivate selected items (hidden from site and recommendations)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        count = queryset.update(is_active=False)
        self.message_user(request, f"{count} items deactivated.")


@admin.register(Visitor)
class VisitorAdmin(admin.ModelAdmin[Visitor]):
    list_display = ["key", "user", "is_bot", "consent_given_at", "created_at", "last_seen_at"]
    list_filter = ["is_bot", ("consent_given_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "user__username", "user__email"]
    raw_id_fields = ["user", "merged_into"]
    readonly_fields = ["key", "created_at", "last_seen_at"]
    show_full_result_count = False
    actions = ["export_data", "erase_data"]

    @admin.action(description="Export data of selected visitors (JSON)")
    def export_data(self, request: HttpRequest, queryset: QuerySet[Visitor]) -> HttpResponse:
        payload = [visitor_export(visitor=v) for v in queryset.select_related("user")]
        response = HttpResponse(json.dumps(payload, indent=2), content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="visitor-export.json"'
        return response

    @admin.action(description="Erase selected visitors and all their events")
    def erase_data(self, request: HttpRequest, queryset: QuerySet[Visitor]) -> None:
        totals = {"visitors": 0, "events": 0}
        for visitor in queryset:
            for key, value in visitor_erase(visitor=visitor).items():
                totals[key] += value
        self.message_user(
            request,
            f"Erased {totals['visitors']} visitors and {totals['events']} events.",
            messages.SUCCESS,
        )


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin[Interaction]):
    list_display = ["timestamp", "event_type", "visitor", "item", "value", "placement", "is_bot"]
    list_filter = ["event_type", "is_bot", "placement"]
    search_fields = ["item__external_id", "=session_id"]
    raw_id_fields = ["visitor", "item"]
    list_select_related = ["visitor", "item"]
    show_full_result_count = False
    date_hierarchy = "timestamp"


@admin.register(RateLimitCounter)
class RateLimitCounterAdmin(admin.ModelAdmin[RateLimitCounter]):
    list_display = ["key", "window_start", "count"]
    search_fields = ["key"]
    ordering = ["-window_start"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
