"""Marketers' merchandising rules for the recommendation sections, and serving-failure counts."""

from datetime import datetime, time
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from recommender.candidates import Section

EVERY_SECTION = ""
PLACEMENT_CHOICES = [(EVERY_SECTION, "Every section")] + [
    (section.value, f"{section.value.replace('_', ' ').capitalize()} ({section.value})")
    for section in Section
]


class RuleAction(models.TextChoices):
    """What a rule does to the items it targets."""

    PIN = "pin", "Pin an item at a position"
    BOOST = "boost", "Boost: move matching items up"
    BURY = "bury", "Bury: move matching items down"
    EXCLUDE = "exclude", "Exclude: never show matching items"


class PriceRelation(models.TextChoices):
    """How an item's price compares with the competitors' prices for it."""

    CHEAPER = "cheaper", "Cheaper than competitors"
    PRICIER = "pricier", "Pricier than competitors"


class MerchandisingRuleQuerySet(models.QuerySet["MerchandisingRule"]):
    def live(self, *, now: datetime | None = None) -> "MerchandisingRuleQuerySet":
        """Active rules whose schedule includes `now` (default: the current time)."""
        now = now or timezone.now()
        return self.filter(
            models.Q(starts_at__isnull=True) | models.Q(starts_at__lte=now),
            models.Q(ends_at__isnull=True) | models.Q(ends_at__gt=now),
            is_active=True,
        )


def _has_group_target() -> models.Q:
    """A category, an attribute or a price relation is set."""
    return (
        models.Q(category__isnull=False)
        | ~models.Q(attribute_key="")
        | ~models.Q(price_relation="")
    )


class MerchandisingRule(models.Model):
    """A marketer's rule that pins, boosts, buries or excludes items in a section.

    Targets combine with AND: a rule with a category and an attribute matches items in
    that category (or below it) that also have the attribute value.
    """

    name = models.CharField(max_length=200, help_text="A short name to find the rule again.")
    notes = models.TextField(blank=True, help_text="Why the rule exists, who asked for it.")
    placement = models.CharField(
        "section",
        max_length=64,
        blank=True,
        default=EVERY_SECTION,
        choices=PLACEMENT_CHOICES,
        help_text="The recommendation section the rule applies to, or every section.",
    )
    action = models.CharField(max_length=16, choices=RuleAction.choices)
    item = models.ForeignKey(
        "webapp.Item",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="merchandising_rules",
        help_text="Pin: the item to pin (required). Exclude: one item never to show.",
    )
    category = models.ForeignKey(
        "webapp.Category",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="merchandising_rules",
        help_text="Matches items in this category and in all its subcategories.",
    )
    attribute_key = models.CharField(
        max_length=100,
        blank=True,
        help_text="Matches items whose attribute with this name (e.g. 'brand')…",
    )
    attribute_value = models.CharField(
        max_length=200,
        blank=True,
        help_text="…has this value (exact text; for a list of values, one of them).",
    )
    price_relation = models.CharField(
        max_length=16,
        blank=True,
        choices=PriceRelation.choices,
        help_text="Matches items priced below or above the competitors' prices for them. "
        "Items without competitor prices never match.",
    )
    position = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Pin only: the position in the section, 1 = first.",
    )
    strength = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Boost and bury only: how many places matching items move up or down.",
    )
    starts_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty: live as soon as it is saved active."
    )
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never ends.")
    is_active = models.BooleanField(
        "active", default=True, help_text="Switch the rule off without deleting it."
    )
    priority = models.IntegerField(
        default=0,
        help_text="When rules conflict (two pins for one position), the higher priority wins.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MerchandisingRuleQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "name", "pk"]
        indexes = [models.Index(fields=["is_active", "placement"], name="merchrule_active_place")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(action__in=RuleAction.values), name="merchrule_action_known"
            ),
            models.CheckConstraint(
                condition=models.Q(placement__in=[c[0] for c in PLACEMENT_CHOICES]),
                name="merchrule_placement_known",
            ),
            models.CheckConstraint(
                condition=models.Q(price_relation__in=["", *PriceRelation.values]),
                name="merchrule_price_relation_known",
            ),
            models.CheckConstraint(
                condition=~models.Q(action=RuleAction.PIN)
                | models.Q(item__isnull=False, position__isnull=False),
                name="merchrule_pin_has_item_and_position",
            ),
            models.CheckConstraint(
                condition=~models.Q(action=RuleAction.PIN)
                | models.Q(category__isnull=True, attribute_key="", price_relation=""),
                name="merchrule_pin_targets_one_item",
            ),
            models.CheckConstraint(
                condition=models.Q(action=RuleAction.PIN) | models.Q(position__isnull=True),
                name="merchrule_position_only_for_pin",
            ),
            models.CheckConstraint(
                condition=models.Q(position__isnull=True) | models.Q(position__gte=1),
                name="merchrule_position_from_one",
            ),
            models.CheckConstraint(
                condition=~models.Q(action=RuleAction.EXCLUDE)
                | models.Q(item__isnull=False)
                | _has_group_target(),
                name="merchrule_exclude_has_target",
            ),
            models.CheckConstraint(
                condition=~models.Q(action__in=[RuleAction.BOOST, RuleAction.BURY])
                | (models.Q(item__isnull=True) & _has_group_target()),
                name="merchrule_boost_bury_targets_group",
            ),
            models.CheckConstraint(
                condition=models.Q(attribute_key="", attribute_value="")
                | (~models.Q(attribute_key="") & ~models.Q(attribute_value="")),
                name="merchrule_attribute_key_and_value",
            ),
            models.CheckConstraint(
                condition=models.Q(strength__gte=1), name="merchrule_strength_from_one"
            ),
            models.CheckConstraint(
                condition=models.Q(starts_at__isnull=True)
                | models.Q(ends_at__isnull=True)
                | models.Q(ends_at__gt=models.F("starts_at")),
                name="merchrule_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The DB constraints' invariants, as errors on the field to fix."""
        errors = _target_errors(self) | _schedule_errors(self)
        if errors:
            raise ValidationError(errors)

    def is_live(self, *, now: datetime | None = None) -> bool:
        """Active, and `now` (default: the current time) is inside its schedule."""
        now = now or timezone.now()
        started = self.starts_at is None or self.starts_at <= now
        return self.is_active and started and (self.ends_at is None or now < self.ends_at)

    def summary(self) -> str:
        """The rule in one sentence, e.g. "Pin 'Toy Story' at #1 on home_top_picks"."""
        action = RuleAction(self.action)
        if action == RuleAction.PIN:
            what = f"Pin '{self.item.title if self.item else '?'}' at #{self.position}"
        else:
            what = f"{action.name.capitalize()} {self._target_text()}"
            if action in (RuleAction.BOOST, RuleAction.BURY):
                what += f" by {self.strength} places"
        where = self.placement or "every section"
        return f"{what} on {where}{self._schedule_text()}"

    def _target_text(self) -> str:
        parts = [f"'{self.item.title}'"] if self.item else ["items"]
        if self.category:
            parts.append(f"in '{self.category.name}'")
        if self.attribute_key:
            parts.append(f"with {self.attribute_key}={self.attribute_value}")
        if self.price_relation:
            parts.append(f"{self.price_relation} than competitors")
        return " ".join(parts)

    def _schedule_text(self) -> str:
        text = ""
        if self.starts_at:
            text += f", from {_moment_text(self.starts_at)}"
        if self.ends_at:
            text += f", until {_moment_text(self.ends_at)}"
        return text


def _moment_text(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d}" if local.time() == time() else f"{local:%Y-%m-%d %H:%M}"


def _target_errors(rule: MerchandisingRule) -> dict[str, Any]:
    """Which target fields are missing or not allowed for the rule's action."""
    errors: dict[str, Any] = {}
    has_group = bool(rule.category_id or rule.attribute_key or rule.price_relation)
    if rule.action == RuleAction.PIN:
        if rule.item_id is None:
            errors["item"] = "A pin needs the item to pin."
        if rule.position is None:
            errors["position"] = "A pin needs a position (1 = first)."
        stray = {
            "category": rule.category_id,
            "attribute_key": rule.attribute_key,
            "price_relation": rule.price_relation,
        }
        for field, value in stray.items():
            if value:
                errors[field] = "A pin places one item: leave this empty."
    elif rule.position is not None:
        errors["position"] = "Only pins use a position: leave this empty."
    if rule.action == RuleAction.EXCLUDE and rule.item_id is None and not has_group:
        errors["item"] = "Choose what to exclude: an item, a category, an attribute or a price."
    if rule.action in (RuleAction.BOOST, RuleAction.BURY):
        if rule.item_id is not None:
            errors["item"] = "Boost and bury move groups of items; to promote one item, pin it."
        elif not has_group:
            errors["category"] = "Choose what to move: a category, an attribute or a price."
    if rule.attribute_key and not rule.attribute_value:
        errors["attribute_value"] = "Give the value the attribute must have."
    if rule.attribute_value and not rule.attribute_key:
        errors["attribute_key"] = "Give the name of the attribute."
    return errors


def _schedule_errors(rule: MerchandisingRule) -> dict[str, Any]:
    if rule.starts_at and rule.ends_at and rule.ends_at <= rule.starts_at:
        return {"ends_at": "The end must be after the start."}
    return {}


class ServingFailure(models.Model):
    """How often a section fell back to a simpler list on one day, and why."""

    day = models.DateField()
    placement = models.CharField(max_length=64, help_text="The section slug.")
    reason = models.CharField(
        max_length=32, help_text="e.g. timeout, model_error, no_model, db_timeout."
    )
    count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_at = models.DateTimeField()

    class Meta:
        ordering = ["-day", "placement", "reason"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "placement", "reason"], name="servingfailure_one_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.placement}: {self.reason} x{self.count}"
