"""What to crawl (a `Source`, managed in the admin) and what each crawl did (`ScrapeRun`)."""

import re
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django_celery_beat.models import PeriodicTask
from django_celery_beat.validators import crontab_validator

from webapp.models.catalog import currency_validator

_http_url = URLValidator(schemes=["http", "https"])
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")


class SourceKind(models.TextChoices):
    CATALOG = "catalog", "our catalog"
    COMPETITOR = "competitor", "competitor prices"


class ExtractionMode(models.TextChoices):
    STRUCTURED = "structured", "selectors first, then schema.org/OpenGraph markup, then heuristics"
    MARKUP = "markup", "markup and heuristics only (the selectors are ignored)"
    SELECTORS = "selectors", "selectors only (fastest; fields they do not name stay empty)"


def domain_in(host: str, domains: list[str]) -> bool:
    """True when `host` is one of `domains` or a subdomain of one (ports ignored)."""
    host = host.lower().split(":", 1)[0]
    return any(host == d or host.endswith("." + d) for d in domains)


def domains_validator(value: Any) -> None:
    """A list of bare host names ("shop.example", "127.0.0.1"), no scheme or path."""
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise ValidationError("Allowed domains must be a list of host names.")
    for domain in value:
        if not _DOMAIN.match(domain):
            raise ValidationError(
                f"{domain!r} is not a host name (write e.g. shop.example, without "
                "http:// or a path, in lower case)."
            )


def urls_validator(value: Any) -> None:
    """A list of absolute http(s) URLs."""
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise ValidationError("Expected a list of URLs.")
    for url in value:
        try:
            _http_url(url)
        except ValidationError as error:
            raise ValidationError(f"{url!r} is not an absolute http(s) URL.") from error


def regex_validator(value: str) -> None:
    """A Python regular expression that compiles."""
    try:
        re.compile(value)
    except re.error as error:
        raise ValidationError(f"{value!r} is not a valid regular expression: {error}.") from error


def css_validator(value: str) -> None:
    """A CSS selector parsel can run (the area of a page whose links are followed)."""
    from cssselect import SelectorError
    from parsel import Selector

    try:
        Selector(text="<html></html>").css(value)
    except (SelectorError, ValueError) as error:
        raise ValidationError(f"{value!r} is not a valid CSS selector: {error}.") from error


def selectors_field_validator(value: Any) -> None:
    """Field name -> CSS or XPath selector, checked by the extractor's own parser."""
    from scraper.extraction.source_selectors import SelectorConfigError, selectors_validate

    if not isinstance(value, dict):
        raise ValidationError('Selectors must be an object: {"field": "selector", ...}.')
    try:
        selectors_validate(value)
    except SelectorConfigError as error:
        raise ValidationError(str(error)) from error


class Source(models.Model):
    """A shop to crawl, configured in the admin; one generic spider serves every source.

    Pages reached from the start URLs are listings: links matching `product_url_pattern`
    (inside `product_link_css` when given) are product pages, links matching
    `follow_url_pattern` (inside `follow_link_css` when given) are further listings and
    pagination. Sitemaps list product pages directly (filtered by `product_url_pattern`).
    """

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    allowed_domains = models.JSONField(default=list, blank=True, validators=[domains_validator])
    start_urls = models.JSONField(default=list, blank=True, validators=[urls_validator])
    sitemap_urls = models.JSONField(default=list, blank=True, validators=[urls_validator])
    follow_url_pattern = models.CharField(
        max_length=500,
        blank=True,
        validators=[regex_validator],
        help_text="Regex: links to listing and pagination pages to follow.",
    )
    follow_link_css = models.CharField(
        max_length=500,
        blank=True,
        validators=[css_validator],
        help_text="CSS: the page areas whose links are listings/pagination (blank: whole page).",
    )
    product_url_pattern = models.CharField(
        max_length=500,
        blank=True,
        validators=[regex_validator],
        help_text="Regex: links to product pages.",
    )
    product_link_css = models.CharField(
        max_length=500,
        blank=True,
        validators=[css_validator],
        help_text="CSS: the page areas whose links are product pages (blank: whole page).",
    )
    extraction_mode = models.CharField(
        max_length=20, choices=ExtractionMode.choices, default=ExtractionMode.STRUCTURED
    )
    selectors = models.JSONField(
        default=dict,
        blank=True,
        validators=[selectors_field_validator],
        help_text='Per-field CSS or XPath, e.g. {"title": "h1::text", "sku": "//th[.=\'UPC\']'
        '/following-sibling::td/text()"}.',
    )
    default_currency = models.CharField(
        max_length=3,
        blank=True,
        validators=[currency_validator],
        help_text="ISO 4217 code for prices the page shows without a currency.",
    )
    schedule = models.CharField(
        max_length=100,
        blank=True,
        validators=[crontab_validator],
        help_text='Crontab in UTC: "minute hour day month weekday", e.g. "0 */6 * * *"; '
        "blank: only crawled on demand.",
    )
    periodic_task = models.OneToOneField(
        PeriodicTask, null=True, blank=True, editable=False, on_delete=models.SET_NULL
    )
    concurrent_requests_per_domain = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(16)]
    )
    download_delay = models.FloatField(
        default=0.5,
        validators=[MinValueValidator(0.0), MaxValueValidator(60.0)],
        help_text="Seconds between requests to one domain (AutoThrottle adapts from here).",
    )
    download_timeout = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(300)], help_text="Seconds."
    )
    max_pages = models.PositiveIntegerField(
        default=5000,
        validators=[MinValueValidator(1)],
        help_text="The crawl stops after this many responses.",
    )
    max_seconds = models.PositiveIntegerField(
        default=3600,
        validators=[MinValueValidator(10), MaxValueValidator(6 * 3600)],
        help_text="The crawl stops after this long.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Cross-field rules: every URL inside the allowed domains, something to crawl."""
        errors: dict[str, list[str]] = {}
        domains = self.allowed_domains if isinstance(self.allowed_domains, list) else []
        if not domains:
            errors["allowed_domains"] = ["List at least one allowed domain."]
        for field in ("start_urls", "sitemap_urls"):
            urls = getattr(self, field)
            for url in urls if isinstance(urls, list) and domains else []:
                if not domain_in(urlsplit(str(url)).hostname or "", domains):
                    errors.setdefault(field, []).append(
                        f"{url!r} is outside the allowed domains ({', '.join(domains)})."
                    )
        if not self.start_urls and not self.sitemap_urls:
            errors.setdefault("start_urls", []).append(
                "Give at least one start URL or sitemap URL."
            )
        if self.start_urls and not (self.product_url_pattern or self.product_link_css):
            errors.setdefault("product_url_pattern", []).append(
                "With start URLs, say which links are products: a URL pattern or a CSS area."
            )
        if errors:
            raise ValidationError(errors)


class ScrapeRunStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    FINISHED = "finished", "finished"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped (another crawl of the source was running)"


class ScrapeRun(models.Model):
    """One crawl of a source: when, why it finished, and its counters."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(
        max_length=20, choices=ScrapeRunStatus.choices, default=ScrapeRunStatus.QUEUED
    )
    trigger = models.CharField(max_length=100, blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    finish_reason = models.CharField(max_length=500, blank=True)
    pages = models.PositiveIntegerField(default=0, help_text="HTTP responses received.")
    pages_ok = models.PositiveIntegerField(default=0, help_text="Pages parsed successfully.")
    pages_failed = models.PositiveIntegerField(default=0, help_text="Pages given up on.")
    items_scraped = models.PositiveIntegerField(default=0, help_text="Items saved.")
    items_dropped = models.PositiveIntegerField(default=0)
    dropped_reasons = models.JSONField(default=dict, blank=True)
    items_created = models.PositiveIntegerField(default=0)
    items_updated = models.PositiveIntegerField(default=0)
    price_changes = models.PositiveIntegerField(
        default=0, help_text="Price observations appended (new price, currency or availability)."
    )
    status_counts = models.JSONField(default=dict, blank=True)
    retries = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    error_counts = models.JSONField(default=dict, blank=True)
    success_rate = models.FloatField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True, help_text="Scrapy's own stats.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["source", "-started_at"], name="scrape_run_source_recent")]

    def __str__(self) -> str:
        return f"{self.source} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_finished(self) -> bool:
        return self.status not in (ScrapeRunStatus.QUEUED, ScrapeRunStatus.RUNNING)
