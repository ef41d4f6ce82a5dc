"""The catalog: a category tree and the items a shop sells or a site shows."""

from decimal import Decimal

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

currency_validator = RegexValidator(r"^[A-Z]{3}$", "Currency must be an ISO 4217 code, e.g. USD.")


class Category(models.Model):
    """A node of the category tree; `slug` is unique over the whole tree."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("id")), name="category_not_own_parent"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def ancestors(self) -> list["Category"]:
        """From the root down to this node's parent (categories are few and shallow)."""
        chain: list[Category] = []
        node = self.parent
        while node is not None and node not in chain:
            chain.insert(0, node)
            node = node.parent
        return chain


class Item(models.Model):
    """Something we can recommend, identified by the shop's own stable external id."""

    external_id = models.CharField(max_length=128, unique=True)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )
    attributes = models.JSONField(default=dict, blank=True)
    list_price = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
    )
    currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])
    image_url = models.URLField(max_length=1000, blank=True)
    url = models.URLField("canonical URL", max_length=1000, blank=True)
    is_active = models.BooleanField(default=True)
    # Written by ml.services.semantic_ids from a semantic-IDs model, never by hand: the codes
    # belong to that version, so a retrained quantizer never silently changes their meaning.
    semantic_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        editable=False,
        help_text='Residual-VQ codes, coarse to fine, disambiguation last, e.g. "12-200-3-0".',
    )
    semantic_id_version = models.ForeignKey(
        "ml.ModelVersion",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The semantic-IDs model version that gave the item its semantic_id.",
    )
    # Written with semantic_id, by the same version (SemanticIDs.anomaly_scores).
    anomaly_score = models.FloatField(
        null=True,
        blank=True,
        editable=False,
        help_text=(
            "How unlike the rest of the catalog this item's content is: its reconstruction "
            "error through the semantic-ID quantizer, 1 for a typical item, 5 for five times "
            "the typical error. High values often mean a broken scrape (empty or garbled "
            "title, no category). Empty until a semantic-IDs model codes the item."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("title", weight="A", config="english")
        + SearchVector("description", weight="B", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            GinIndex(fields=["search_vector"], name="item_search_gin"),
            models.Index(fields=["is_active", "-created_at"], name="item_active_created"),
            models.Index(fields=["category", "is_active"], name="item_category_active"),
            # varchar_pattern_ops: prefix lookups (semantic_id__startswith="12-200-") use it.
            models.Index(
                fields=["semantic_id"], name="item_semantic_id", opclasses=["varchar_pattern_ops"]
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(list_price__isnull=True) | models.Q(list_price__gte=0),
                name="item_price_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="item_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.external_id})"
