"""Admin screens for the catalog, visitors and the interaction log."""

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from webapp.models import Category, Interaction, Item, RateLimitCounter, Visitor
from webapp.services.visitors import visitor_erase, visitor_export


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin[Category]):
    list_display = ["name", "slug", "parent"]
    list_filter = [("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["parent"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin[Item]):
    list_display = [
        "external_id",
        "title",
        "category",
        "list_price",
        "currency",
        "is_active",
        "updated_at",
    ]
    list_filter = ["is_active", ("category", admin.RelatedOnlyFieldListFilter), "currency"]
    search_fields = ["external_id", "title"]
    readonly_fields = ["semantic_id", "semantic_id_version", "created_at", "updated_at"]
    autocomplete_fields = ["category"]
    list_per_page = 50
    actions = ["activate", "deactivate"]

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
