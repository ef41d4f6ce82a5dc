"""Campaigns: content shown in a placement to a segment, on a schedule, with a holdout.

Tracking (documented choice): the site's beacon only logs events about catalog items,
so a campaign's own events are stored here, server-side: a `view` row each time a slot
is rendered for a person (the holdout's rows have no creative: "would have been shown"),
a `click` row when the creative's link is followed through the click endpoint. Views
also enforce frequency caps. Conversions are purchases in the interaction log by the
person's visitor (or account) after their assignment.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from webapp.campaigns.schedule import ALL_DAYS, Schedule, schedule_errors


class Placement(models.TextChoices):
    HOME_HERO = "home_hero", "Home page hero"
    SITE_BANNER = "site_banner", "Site-wide banner"
    ITEM_SLOT = "item_slot", "Item page slot"
    HEADLINE = "headline", "Headline"
    CALL_TO_ACTION = "call_to_action", "Call to action"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ENDED = "ended", "Ended (final)"


# Campaigns in these states may run (now or after resuming): they must not tie.
SCHEDULED_STATUSES = (CampaignStatus.ACTIVE, CampaignStatus.PAUSED)
MAX_HOLDOUT_PERCENT = 50


def all_days() -> list[int]:
    return list(ALL_DAYS)


class Campaign(models.Model):
    """Content for one placement; the highest priority live campaign a visitor matches wins."""

    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    placement = models.CharField(max_length=32, choices=Placement.choices)
    segment = models.ForeignKey(
        "segments.Segment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text="Only visitors in this segment see it (empty: everyone).",
    )
    priority = models.IntegerField(default=0, help_text="Higher wins when campaigns overlap.")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    days = models.JSONField(
        default=all_days, help_text="Weekdays it runs: 0 = Monday .. 6 = Sunday."
    )
    hour_from = models.PositiveSmallIntegerField(default=0, help_text="First hour (0-23).")
    hour_to = models.PositiveSmallIntegerField(
        default=24, help_text="Runs until this hour (1-24, exclusive)."
    )
    holdout_percent = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_HOLDOUT_PERCENT)],
        help_text="Percent of matching persons never shown it (uplift baseline).",
    )
    cap_views = models.PositiveIntegerField(
        null=True, blank=True, help_text="Frequency cap: at most this many views per person..."
    )
    cap_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="...per this many days."
    )
    bandit = models.BooleanField(
        default=False, help_text="Reweight creatives by Thompson sampling on their click rate."
    )
    bandit_min_share = models.FloatField(
        default=0.05, help_text="Bandit: smallest share any creative keeps (0-0.5)."
    )
    bandit_min_visitors = models.PositiveIntegerField(
        default=100, help_text="Bandit: persons every creative needs before reweighting."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["placement", "-priority", "pk"]
        indexes = [models.Index(fields=["status", "placement"], name="campaign_status_place")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=CampaignStatus.values), name="campaign_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(holdout_percent__lte=MAX_HOLDOUT_PERCENT),
                name="campaign_holdout_range",
            ),
            models.CheckConstraint(
                condition=models.Q(hour_from__lt=models.F("hour_to"), hour_to__lte=24),
                name="campaign_hours_range",
            ),
            models.CheckConstraint(
                condition=models.Q(starts_at__isnull=True)
                | models.Q(ends_at__isnull=True)
                | models.Q(ends_at__gt=models.F("starts_at")),
                name="campaign_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def schedule(self) -> Schedule:
        return Schedule(
            self.starts_at, self.ends_at, frozenset(self.days), self.hour_from, self.hour_to
        )

    def clean(self) -> None:
        """Schedule, holdout, cap and bandit settings; no equal-priority overlap."""
        errors: dict[str, Any] = schedule_errors(
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            days=self.days,
            hour_from=self.hour_from,
            hour_to=self.hour_to,
        )
        if self.holdout_percent is None or not 0 <= self.holdout_percent <= MAX_HOLDOUT_PERCENT:
            errors["holdout_percent"] = "The holdout must be between 0 and 50 percent."
        if (self.cap_views is None) != (self.cap_days is None):
            errors["cap_days"] = "A frequency cap needs both the number of views and the days."
        if self.bandit_min_share is None or not 0 <= self.bandit_min_share <= 0.5:
            errors["bandit_min_share"] = "The minimum share must be between 0 and 0.5."
        if not errors:
            errors |= self._overlap_errors()
        if errors:
            raise ValidationError(errors)

    def _overlap_errors(self) -> dict[str, str]:
        if self.status not in SCHEDULED_STATUSES or not self.placement:
            return {}
        rivals = Campaign.objects.filter(
            status__in=SCHEDULED_STATUSES, placement=self.placement, priority=self.priority
        ).exclude(pk=self.pk)
        clash = next((c for c in rivals.order_by("pk") if c.schedule.overlaps(self.schedule)), None)
        if clash is None:
            return {}
        return {
            "priority": f"Campaign “{clash.name}” (#{clash.pk}) runs on the same placement with "
            f"the same priority ({self.priority}) at overlapping times: give one a different "
            "priority or non-overlapping schedules."
        }


class Creative(models.Model):
    """One version of a campaign's content (plain data, always escaped on output)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="creatives")
    name = models.CharField(max_length=100, blank=True)
    headline = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)
    image_url = models.URLField(max_length=500, blank=True)
    link_url = models.CharField(
        max_length=500, blank=True, help_text="http(s) URL or a path on this site (/...)."
    )
    offer_code = models.CharField(max_length=64, blank=True)
    weight = models.PositiveSmallIntegerField(
        default=100, validators=[MaxValueValidator(100)], help_text="Percent of the exposed."
    )
    # Set by the bandit (shares summing to 1); None: the configured weights apply.
    bandit_weight = models.FloatField(null=True, blank=True, editable=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weight__lte=100), name="creative_weight_percent"
            )
        ]

    def __str__(self) -> str:
        return self.name or self.headline or f"Creative #{self.pk}"

    def clean(self) -> None:
        """Something to show, and a link that is a web address or a local path."""
        errors: dict[str, str] = {}
        if not (self.headline.strip() or self.text.strip() or self.image_url.strip()):
            errors["headline"] = "A creative needs a headline, a text or an image."
        if self.link_url and not link_is_safe(self.link_url):
            errors["link_url"] = "The link must start with http://, https:// or a single /."
        if errors:
            raise ValidationError(errors)


def link_is_safe(url: str) -> bool:
    """http(s) or a same-site path: never javascript:, data: or protocol-relative //."""
    lowered = url.strip().lower()
    if lowered.startswith(("http://", "https://")):
        return True
    return lowered.startswith("/") and not lowered.startswith("//")


def creatives_errors(*, weights: list[int], count: int) -> list[str]:
    """What is wrong with a campaign's set of creatives (empty when it can run)."""
    if count == 0:
        return []
    if sum(weights) != 100:
        return [f"Creative weights must add up to 100 (they add up to {sum(weights)})."]
    return []


class CampaignAssignment(models.Model):
    """A person's fate in a campaign (a creative, or the holdout), fixed at first render."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    # None: the person is in the holdout (sees no campaign in this placement).
    creative = models.ForeignKey(
        Creative, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments"
    )
    person = models.CharField(max_length=64)  # "user:<pk>" or "visitor:<pk>" (person_of)
    visitor = models.ForeignKey(
        "webapp.Visitor", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "person"], name="campaign_one_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.person} in {self.campaign_id}: {self.creative_id or 'holdout'}"

    @property
    def is_holdout(self) -> bool:
        return self.creative_id is None


class CampaignEventKind(models.TextChoices):
    VIEW = "view", "View"
    CLICK = "click", "Click"


class CampaignEvent(models.Model):
    """A rendered slot (view; no creative for the holdout) or a followed link (click)."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    creative = models.ForeignKey(
        Creative, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    person = models.CharField(max_length=64)
    kind = models.CharField(max_length=8, choices=CampaignEventKind.choices)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["campaign", "person", "kind", "at"], name="campaign_event_cap"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=CampaignEventKind.values),
                name="campaign_event_kind_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.campaign_id}/{self.creative_id} by {self.person}"


class CreativeWeightHistory(models.Model):
    """One bandit update of one creative: its posterior and the weight it got."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="weight_history")
    creative = models.ForeignKey(Creative, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    trials = models.PositiveIntegerField()
    successes = models.PositiveIntegerField()
    probability_best = models.FloatField()
    weight = models.FloatField()
    updated = models.BooleanField(help_text="False: too few persons yet, weights kept.")

    class Meta:
        ordering = ["at", "creative_id"]
        indexes = [models.Index(fields=["campaign", "at"], name="creative_weight_hist_time")]

    def __str__(self) -> str:
        return f"{self.creative_id} at {self.at:%Y-%m-%d %H:%M}: {self.weight:.3f}"
