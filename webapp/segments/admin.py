"""Admin: segments built from condition rows, with a live preview of their size."""

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from webapp.segments.attributes import ATTRIBUTES, Operator
from webapp.segments.models import Segment, SegmentCondition, VisitorProfile
from webapp.segments.selectors import segment_preview

HELP = (
    "Conditions with the same group number form a group. Match all: a visitor is in the "
    "segment when every condition of at least one group holds, (A and B) or (C). "
    "Match any: when at least one condition of every group holds, (A or B) and (C). "
    "Attributes and their operators: "
    + "; ".join(
        f"{a.label}: {', '.join(str(Operator(o).label) for o in a.operators)}"
        for a in ATTRIBUTES.values()
    )
    + "."
)


class ConditionFormSet(BaseInlineFormSet[SegmentCondition, Segment, Any]):
    """At least one condition: an empty segment would match nobody."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kept = [
            form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if not kept:
            raise ValidationError("Add at least one condition: an empty segment matches nobody.")


class ConditionInline(admin.TabularInline[SegmentCondition, Segment]):
    model = SegmentCondition
    formset = ConditionFormSet
    extra = 1
    fields = ["group", "attribute", "key", "operator", "value", "last_days", "position"]


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin[Segment]):
    inlines = [ConditionInline]
    list_display = ["name", "match", "is_active", "condition_count", "size"]
    list_filter = ["is_active", "match"]
    search_fields = ["name", "description"]
    readonly_fields = ["preview", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "match", "is_active"], "description": HELP}),
        ("Preview", {"fields": ["preview"]}),
        ("When", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="conditions")
    def condition_count(self, obj: Segment) -> int:
        return obj.conditions.count()

    @admin.display(description="known visitors matching now")
    def size(self, obj: Segment) -> str:
        return self._preview_text(obj, short=True)

    @admin.display(description="Matching now")
    def preview(self, obj: Segment | None) -> str:
        if obj is None or obj.pk is None:
            return "Save the segment to see how many known visitors match."
        return self._preview_text(obj, short=False)

    @staticmethod
    def _preview_text(obj: Segment, *, short: bool) -> str:
        try:
            preview = segment_preview(segment=obj)
        except ValidationError as error:
            return f"Cannot count: {' '.join(error.messages)}"
        if short:
            return f"{preview.count}{' (+ time rules)' if preview.request_time_conditions else ''}"
        return preview.describe()


@admin.register(VisitorProfile)
class VisitorProfileAdmin(admin.ModelAdmin[VisitorProfile]):
    """What segments know about each visitor (written by the site, read-only here)."""

    list_display = [
        "visitor",
        "visit_count",
        "last_visit_at",
        "device_type",
        "country",
        "referrer_domain",
        "utm_campaign",
        "audience",
    ]
    list_filter = ["device_type", "country"]
    search_fields = ["visitor__key", "utm_campaign", "referrer_domain", "audience"]
    list_select_related = ["visitor"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
