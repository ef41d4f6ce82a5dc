"""Reads of the scraper: what a crawl of a source needs, and its recent runs."""

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from scraper.models import ScrapeRun, Source
from scraper.models.sources import ExtractionMode, ScrapeRunStatus


@dataclass(frozen=True)
class CrawlConfig:
    """Everything the product spider needs from a Source, read once before it starts."""

    source_id: int
    name: str
    kind: str
    allowed_domains: tuple[str, ...]
    start_urls: tuple[str, ...]
    sitemap_urls: tuple[str, ...]
    follow_url_pattern: str
    follow_link_css: str
    product_url_pattern: str
    product_link_css: str
    extraction_mode: str
    selectors: dict[str, str] | None  # None: markup and heuristics only
    default_currency: str
    concurrent_requests_per_domain: int
    download_delay: float
    download_timeout: int
    max_pages: int
    max_seconds: int


class SourceNotFound(LookupError):
    """No source with this id."""


def source_crawl_config(*, source_id: int) -> CrawlConfig:
    """The crawl configuration of source `source_id` (inactive sources can still be crawled
    on demand; only schedules skip them)."""
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        raise SourceNotFound(f"No scraper source with id {source_id}.")
    use_selectors = source.extraction_mode != ExtractionMode.MARKUP and source.selectors
    return CrawlConfig(
        source_id=source.pk,
        name=source.name,
        kind=source.kind,
        allowed_domains=tuple(source.allowed_domains),
        start_urls=tuple(source.start_urls),
        sitemap_urls=tuple(source.sitemap_urls),
        follow_url_pattern=source.follow_url_pattern,
        follow_link_css=source.follow_link_css,
        product_url_pattern=source.product_url_pattern,
        product_link_css=source.product_link_css,
        extraction_mode=source.extraction_mode,
        selectors=dict(source.selectors) if use_selectors else None,
        default_currency=source.default_currency,
        concurrent_requests_per_domain=source.concurrent_requests_per_domain,
        download_delay=source.download_delay,
        download_timeout=source.download_timeout,
        max_pages=source.max_pages,
        max_seconds=source.max_seconds,
    )


def scrape_runs_recent(*, source_id: int, limit: int = 20) -> QuerySet[ScrapeRun]:
    """The source's latest runs, newest first."""
    return ScrapeRun.objects.filter(source_id=source_id).order_by("-started_at", "-id")[:limit]


def scrape_run_in_progress(*, source_id: int) -> ScrapeRun | None:
    """The source's queued or running run, if any (the lock, not this, prevents overlap)."""
    active = (ScrapeRunStatus.QUEUED, ScrapeRunStatus.RUNNING)
    return ScrapeRun.objects.filter(source_id=source_id, status__in=active).first()


def scrape_run_summary(run: ScrapeRun) -> dict[str, Any]:
    """The run's counters as one flat mapping (logs, the command's output)."""
    return {
        "run": run.pk,
        "status": run.status,
        "finish_reason": run.finish_reason,
        "pages": run.pages,
        "pages_ok": run.pages_ok,
        "pages_failed": run.pages_failed,
        "items_scraped": run.items_scraped,
        "items_dropped": run.items_dropped,
        "items_created": run.items_created,
        "items_updated": run.items_updated,
        "price_changes": run.price_changes,
        "retries": run.retries,
        "errors": run.errors,
        "success_rate": run.success_rate,
    }
