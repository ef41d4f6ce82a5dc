"""What to crawl (a `Source`, managed in the admin) and what each crawl did (`ScrapeRun`)."""

from django.db import models


class SourceKind(models.TextChoices):
    CATALOG = "catalog", "our catalog"
    COMPETITOR = "competitor", "competitor prices"


class Source(models.Model):
    """A shop to crawl, configured in the admin; one generic spider serves every source."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=SourceKind.choices)
    allowed_domains = models.JSONField(default=list, blank=True)
    start_urls = models.JSONField(default=list, blank=True)
    sitemap_urls = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ScrapeRun(models.Model):
    """One crawl of a source: when, why it finished, and its counters."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source} at {self.started_at:%Y-%m-%d %H:%M}"
