"""Rule-based segments of visitors, and the per-visitor facts their conditions read.

How conditions combine: conditions with the same `group` number form a group.

- match **all**: a group holds when *all* its conditions hold; the visitor is in the
  segment when *any* group holds: (A and B) or (C and D). One group: A and B and C.
- match **any**: a group holds when *any* of its conditions holds; the visitor is in the
  segment when *every* group holds: (A or B) and (C or D). One group: A or B or C.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from webapp.segments.attributes import (
    ATTRIBUTES,
    DEVICE_TYPES,
    Operator,
    attribute_choices,
    key_errors,
    parse_value,
)


class SegmentMatch(models.TextChoices):
    ALL = "all", "All conditions of a group (groups are alternatives)"
    ANY = "any", "Any condition of a group (every group must hold)"


class Segment(models.Model):
    """A named set of visitors described by conditions (see the module docstring)."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    match = models.CharField(
        max_length=3,
        choices=SegmentMatch.choices,
        default=SegmentMatch.ALL,
        help_text="All: (A and B) or (C and D) across groups. "
        "Any: (A or B) and (C or D). With a single group: all = every condition, "
        "any = at least one condition.",
    )
    is_active = models.BooleanField(default=True, help_text="Inactive segments match nobody.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(match__in=SegmentMatch.values), name="segment_match_valid"
            )
        ]

    def __str__(self) -> str:
        return self.name


class SegmentCondition(models.Model):
    """One test on a visitor: attribute, operator, value (and a look-back for events)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="conditions")
    group = models.PositiveSmallIntegerField(
        default=1, help_text="Conditions with the same number form a group."
    )
    attribute = models.CharField(max_length=32, choices=attribute_choices)
    key = models.CharField(
        max_length=40, blank=True, help_text="Custom context only: the key sent by the app."
    )
    operator = models.CharField(max_length=8, choices=Operator.choices)
    value = models.CharField(
        max_length=500,
        blank=True,
        help_text="Lists are comma-separated; hours 0-23 (9-17), days mon..sun (mon-fri).",
    )
    last_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Categories and purchases: only events of the last N days (empty: all).",
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["group", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(attribute__in=list(ATTRIBUTES)),
                name="segment_condition_attribute_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(last_days__isnull=True) | models.Q(last_days__gte=1),
                name="segment_condition_days_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.attribute} {self.operator} {self.value}".strip()

    def clean(self) -> None:
        """Operator valid for the attribute, value parsable, key and look-back where they apply."""
        errors: dict[str, Any] = {}
        try:
            parse_value(self.attribute, self.operator, self.value)
        except ValidationError as error:
            field = "operator" if self.operator not in _operators(self.attribute) else "value"
            errors[field] = error.messages
        key_error = key_errors(self.attribute, self.key)
        if key_error:
            errors["key"] = key_error
        attribute = ATTRIBUTES.get(self.attribute)
        if self.last_days is not None and attribute is not None and not attribute.takes_days:
            errors["last_days"] = f"{attribute.label} does not look back over days."
        if not errors and attribute is not None and attribute.kind == "categories":
            errors |= _category_errors(self.value)
        if errors:
            raise ValidationError(errors)


def _operators(attribute_key: str) -> tuple[str, ...]:
    attribute = ATTRIBUTES.get(attribute_key)
    return attribute.operators if attribute else ()


def _category_errors(value: str) -> dict[str, str]:
    from webapp.models import Category

    slugs = {s.strip() for s in value.split(",") if s.strip()}
    known = set(Category.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    unknown = sorted(slugs - known)
    return {"value": f"Unknown category slugs: {', '.join(unknown)}."} if unknown else {}


class DeviceType(models.TextChoices):
    MOBILE = DEVICE_TYPES[0]
    TABLET = DEVICE_TYPES[1]
    DESKTOP = DEVICE_TYPES[2]
    BOT = DEVICE_TYPES[3]


class VisitorProfile(models.Model):
    """What segments know about a visitor besides its events, updated once per visit.

    Referrer and UTM fields hold the latest visit that came from a link or a campaign
    (a direct visit keeps them); device and country are those of the latest visit.
    """

    visitor = models.OneToOneField(
        "webapp.Visitor", on_delete=models.CASCADE, primary_key=True, related_name="profile"
    )
    first_referrer_domain = models.CharField(max_length=255, blank=True)
    referrer_domain = models.CharField(max_length=255, blank=True)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    device_type = models.CharField(max_length=8, choices=DeviceType.choices, blank=True)
    country = models.CharField(max_length=2, blank=True)
    visit_count = models.PositiveIntegerField(default=0)
    first_visit_at = models.DateTimeField(null=True, blank=True)
    last_visit_at = models.DateTimeField(null=True, blank=True)
    # {key: str | number | bool} posted by client apps (POST /api/visitor-context/).
    context = models.JSONField(default=dict, blank=True)
    context_updated_at = models.DateTimeField(null=True, blank=True)
    # Learned audience (e.g. a k-means cluster or VQ code of the visitor's embedding),
    # written by the model work with the version that computed it.
    audience = models.CharField(max_length=64, blank=True)
    audience_model_version = models.ForeignKey(
        "ml.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    audience_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["audience"], name="profile_audience")]

    def __str__(self) -> str:
        return f"profile of visitor {self.visitor_id}"
