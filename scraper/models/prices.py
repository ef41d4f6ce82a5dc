"""Competitors' products as crawled, their price history, matches to our items, alerts."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from scraper.models.sources import Source
from webapp.models.catalog import Item, currency_validator


class CompetitorProduct(models.Model):
    """A product page of a competitor source, identified by its canonical URL."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="products")
    url = models.URLField(max_length=1000)
    title = models.CharField(max_length=500, blank=True)
    brand = models.CharField(max_length=200, blank=True)
    sku = models.CharField(max_length=128, blank=True)
    gtin = models.CharField(max_length=14, blank=True)
    mpn = models.CharField(max_length=128, blank=True)
    image_url = models.URLField(max_length=1000, blank=True, default="")
    description = models.TextField(blank=True, default="")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "url"], name="competitor_product_url")
        ]

    def __str__(self) -> str:
        return self.title or self.url


class PriceObservation(models.Model):
    """A price seen on a competitor page; appended only when something changed."""

    product = models.ForeignKey(
        CompetitorProduct, on_delete=models.CASCADE, related_name="observations"
    )
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, validators=[currency_validator])
    availability = models.CharField(max_length=20, blank=True)
    observed_at = models.DateTimeField()

    class Meta:
        ordering = ["product", "-observed_at"]
        indexes = [models.Index(fields=["product", "-observed_at"], name="price_obs_latest")]

    def __str__(self) -> str:
        return f"{self.price} {self.currency} at {self.observed_at:%Y-%m-%d}"


class MatchMethod(models.TextChoices):
    EXACT_GTIN = "exact_gtin", "same GTIN"
    EXACT_SKU = "exact_sku", "same SKU"
    EXACT_MPN = "exact_mpn", "same MPN"
    MODEL = "model", "weakly supervised model"


class MatchStatus(models.TextChoices):
    AUTO_ACCEPTED = "auto_accepted", "accepted automatically"
    PENDING = "pending", "waiting for review"
    APPROVED = "approved", "approved by a reviewer"
    REJECTED = "rejected", "rejected by a reviewer"


# A product has at most one match in these states; rejected pairs stay as gold negatives.
LIVE_MATCH_STATUSES = (MatchStatus.AUTO_ACCEPTED, MatchStatus.PENDING, MatchStatus.APPROVED)
ACCEPTED_MATCH_STATUSES = (MatchStatus.AUTO_ACCEPTED, MatchStatus.APPROVED)
REVIEWED_MATCH_STATUSES = (MatchStatus.APPROVED, MatchStatus.REJECTED)


class ProductMatch(models.Model):
    """A competitor product paired with one of our items; reviewed rows are gold labels."""

    product = models.ForeignKey(CompetitorProduct, on_delete=models.CASCADE, related_name="matches")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="competitor_matches")
    method = models.CharField(max_length=20, choices=MatchMethod.choices)
    probability = models.FloatField(
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The matcher's probability that both are the same product (1 for exact).",
    )
    status = models.CharField(max_length=20, choices=MatchStatus.choices)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "product matches"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "item"], name="product_match_pair"),
            models.UniqueConstraint(
                fields=["product"],
                condition=models.Q(status__in=[s.value for s in LIVE_MATCH_STATUSES]),
                name="product_match_one_live",
            ),
            models.CheckConstraint(
                condition=models.Q(probability__gte=0.0, probability__lte=1.0),
                name="product_match_probability_range",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in MatchStatus]),
                name="product_match_status_known",
            ),
        ]
        indexes = [models.Index(fields=["item", "status"], name="product_match_item_status")]

    def __str__(self) -> str:
        return f"{self.product} → {self.item} ({self.get_status_display()})"


class ExchangeRate(models.Model):
    """One unit of `from_currency` is worth `rate` units of `to_currency` from `valid_from`."""

    from_currency = models.CharField(max_length=3, validators=[currency_validator])
    to_currency = models.CharField(max_length=3, validators=[currency_validator])
    rate = models.DecimalField(
        max_digits=18, decimal_places=8, validators=[MinValueValidator(Decimal("0.00000001"))]
    )
    valid_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["from_currency", "to_currency", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_currency", "to_currency", "valid_from"], name="exchange_rate_unique"
            ),
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="exchange_rate_positive"),
            models.CheckConstraint(
                condition=~models.Q(from_currency=models.F("to_currency")),
                name="exchange_rate_two_currencies",
            ),
        ]

    def __str__(self) -> str:
        pair = f"1 {self.from_currency} = {self.rate} {self.to_currency}"
        return f"{pair} from {self.valid_from:%Y-%m-%d}"


class AlertKind(models.TextChoices):
    UNDERCUT = "undercut_by_percent", "competitor undercuts our price by more than N%"
    OUT_OF_STOCK = "out_of_stock", "competitor goes out of stock"


class PriceAlertRule(models.Model):
    """When to alert on a competitor's price or stock; no source means every competitor."""

    name = models.CharField(max_length=200)
    source = models.ForeignKey(
        Source,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text="Leave empty to watch every competitor source.",
    )
    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    threshold_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="For undercut rules: alert when the competitor is more than this % cheaper.",
    )
    recipients = models.TextField(
        blank=True, help_text="E-mail addresses, separated by commas or new lines."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=[k.value for k in AlertKind]),
                name="price_alert_rule_kind_known",
            ),
            models.CheckConstraint(
                condition=models.Q(threshold_percent__isnull=True)
                | models.Q(threshold_percent__gte=0, threshold_percent__lte=100),
                name="price_alert_rule_threshold_range",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="undercut_by_percent")
                | models.Q(threshold_percent__isnull=False),
                name="price_alert_rule_undercut_threshold",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def recipient_list(self) -> list[str]:
        """The recipients as a list of addresses."""
        return [
            part.strip() for part in self.recipients.replace("\n", ",").split(",") if part.strip()
        ]


class PriceAlert(models.Model):
    """A rule fired on one observation of a matched competitor product (once per observation)."""

    rule = models.ForeignKey(PriceAlertRule, on_delete=models.CASCADE, related_name="alerts")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="price_alerts")
    product = models.ForeignKey(
        CompetitorProduct, on_delete=models.CASCADE, related_name="price_alerts"
    )
    observation = models.ForeignKey(
        PriceObservation, on_delete=models.CASCADE, related_name="price_alerts"
    )
    message = models.TextField()
    observed_price = models.DecimalField(max_digits=12, decimal_places=2)
    observed_currency = models.CharField(max_length=3)
    our_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    our_currency = models.CharField(max_length=3, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "item", "observation"], name="price_alert_once_per_observation"
            )
        ]
        indexes = [
            models.Index(
                fields=["emailed_at"],
                condition=models.Q(emailed_at__isnull=True),
                name="price_alert_unsent",
            )
        ]

    def __str__(self) -> str:
        return self.message
