"""Visitors (one per first-party cookie) and what they did (interactions)."""

import uuid

from django.conf import settings
from django.db import models


class Visitor(models.Model):
    """A browser (by its cookie) or a known person; a user has one canonical visitor."""

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="visitor",
    )
    # Set when this visitor's history was moved to another one (login on a new device).
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from"
    )
    is_bot = models.BooleanField(default=False)
    consent_given_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    # Bumped by database triggers whenever events of this visitor are inserted, moved or
    # deleted (every write path, bulk ones included): caches of what the visitor is shown
    # are keyed by it, so the hot path needs no query of its own to know they are fresh.
    generation = models.BigIntegerField(default=0, editable=False)

    class Meta:
        indexes = [models.Index(fields=["-last_seen_at"], name="visitor_last_seen")]

    def __str__(self) -> str:
        return f"visitor {self.key}" if self.user_id is None else f"visitor of {self.user}"


class EventType(models.TextChoices):
    IMPRESSION = "impression"
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATING = "rating"
    SEARCH = "search"


class Interaction(models.Model):
    """One event of the interaction log; `event_id` makes client retries idempotent."""

    event_id = models.UUIDField(null=True, blank=True, unique=True)
    # FK indexes off: the composite indexes below lead with these columns already.
    visitor = models.ForeignKey(
        Visitor, on_delete=models.CASCADE, related_name="interactions", db_index=False
    )
    item = models.ForeignKey(
        "webapp.Item",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="interactions",
        db_index=False,
    )
    event_type = models.CharField(max_length=16, choices=EventType.choices)
    value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    query = models.CharField(max_length=500, blank=True)
    session_id = models.CharField(max_length=64, blank=True)
    timestamp = models.DateTimeField()
    placement = models.CharField(max_length=64, blank=True)
    context = models.JSONField(default=dict, blank=True)
    is_bot = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["visitor", "-timestamp"], name="interaction_visitor_recent"),
            models.Index(
                fields=["item", "timestamp"],
                name="interaction_item_time",
                condition=models.Q(item__isnull=False),
            ),
            models.Index(fields=["timestamp"], name="interaction_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(event_type__in=EventType.values),
                name="interaction_event_type_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(event_type="rating") | models.Q(value__isnull=False),
                name="interaction_rating_has_value",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} by {self.visitor_id} at {self.timestamp:%Y-%m-%d %H:%M}"


class RateLimitCounter(models.Model):
    """Fixed-window request counter shared by all processes (atomic upsert in Postgres)."""

    key = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="ratelimit_key_window")
        ]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window_start}: {self.count}"
