"""Admin screens: the marketers' merchandising rules, and the serving-failure counts."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from recommender.merchandising import merchandising_rules_cache_clear
from recommender.models import MerchandisingRule, ServingFailure

ACTIONS_HELP = (
    "<b>Pin</b> puts one item at a position (1 = first), whatever the models say. "
    "<b>Boost</b> moves matching items up by <i>strength</i> places, <b>bury</b> moves them "
    "down. <b>Exclude</b> never shows matching items, even pinned ones. When two pins want "
    "the same position, the higher priority gets it and the other takes the next one."
)
TARGET_HELP = (
    "Pins need an item. Boost and bury need a category, an attribute or a price relation; "
    "exclude needs any of these or an item. Filled targets must all hold: a category and an "
    "attribute match items of that category (or a subcategory) with that attribute value."
)


class LiveNowFilter(admin.SimpleListFilter):
    """Rules changing the sections right now: active and inside their schedule."""

    title = "live now"
    parameter_name = "live"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Live now"), ("no", "Not live now")]

    def queryset(self, request: Any, queryset: QuerySet[Any]) -> QuerySet[Any]:
        live = MerchandisingRule.objects.live().values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=live)
        if self.value() == "no":
            return queryset.exclude(pk__in=live)
        return queryset


@admin.register(MerchandisingRule)
class MerchandisingRuleAdmin(admin.ModelAdmin[MerchandisingRule]):
    list_display = ["name", "summary", "placement", "priority", "is_active", "live_now"]
    list_display_links = ["name"]
    list_filter = ["placement", "action", "is_active", LiveNowFilter]
    list_select_related = ["item", "category"]
    search_fields = [
        "name",
        "notes",
        "item__title",
        "item__external_id",
        "category__name",
        "attribute_key",
        "attribute_value",
    ]
    autocomplete_fields = ["item", "category"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["activate", "deactivate"]
    fieldsets = [
        (
            None,
            {"fields": ["name", "action", "placement", "is_active"], "description": ACTIONS_HELP},
        ),
        (
            "Which items",
            {
                "fields": [
                    "item",
                    "category",
                    ("attribute_key", "attribute_value"),
                    "price_relation",
                ],
                "description": TARGET_HELP,
            },
        ),
        ("How much", {"fields": ["position", "strength", "priority"]}),
        (
            "When",
            {
                "fields": ["starts_at", "ends_at"],
                "description": "Leave both empty for a rule that is live while it is active.",
            },
        ),
        ("Notes", {"fields": ["notes", "created_at", "updated_at"]}),
    ]

    @admin.display(description="rule")
    def summary(self, rule: MerchandisingRule) -> str:
        return rule.summary()

    @admin.display(description="live now", boolean=True)
    def live_now(self, rule: MerchandisingRule) -> bool:
        return rule.is_live()

    @admin.action(description="Activate selected rules")
    def activate(self, request: HttpRequest, queryset: QuerySet[MerchandisingRule]) -> None:
        count = queryset.update(is_active=True)
        merchandising_rules_cache_clear()  # update() sends no post_save
        self.message_user(request, f"{count} rules activated.")

    @admin.action(description="Deactivate selected rules")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[MerchandisingRule]) -> None:
        count = queryset.update(is_active=False)
        merchandising_rules_cache_clear()
        self.message_user(request, f"{count} rules deactivated.")


@admin.register(ServingFailure)
class ServingFailureAdmin(admin.ModelAdmin[ServingFailure]):
    list_display = ["day", "placement", "reason", "count", "last_at", "last_error_short"]
    list_filter = ["reason", "placement"]
    search_fields = ["placement", "reason", "last_error"]
    date_hierarchy = "day"
    ordering = ["-day", "placement", "reason"]

    @admin.display(description="last error")
    def last_error_short(self, failure: ServingFailure) -> str:
        first_line = failure.last_error.splitlines()[0] if failure.last_error else ""
        return first_line[:120]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
