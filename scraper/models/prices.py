"""Competitors' products as crawled, their price history, and matches to our items."""

from django.core.validators import MinValueValidator
from django.db import models

from scraper.models.sources import Source
from webapp.models.catalog import currency_validator


class CompetitorProduct(models.Model):
    """A product page of a competitor source, identified by its canonical URL."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="products")
    url = models.URLField(max_length=1000)
    title = models.CharField(max_length=500, blank=True)
    brand = models.CharField(max_length=200, blank=True)
    sku = models.CharField(max_length=128, blank=True)
    gtin = models.CharField(max_length=14, blank=True)
    mpn = models.CharField(max_length=128, blank=True)
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
