"""Celery tasks that run crawls, each in its own process."""

import logging

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction

from scraper.models import Source
from scraper.models.sources import ScrapeRunStatus, SourceKind
from scraper.services.crawl import crawl_process_run, scrape_run_queue
from scraper.tasks.prices import prices_after_crawl

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="scraper.tasks.crawl.source_crawl",
    soft_time_limit=settings.SCRAPER_CRAWL_TIME_LIMIT + 60,
    time_limit=settings.SCRAPER_CRAWL_TIME_LIMIT + 120,
    acks_late=True,
)
def source_crawl(self: Task, source_id: int, trigger: str = "schedule") -> str:
    """Crawl source `source_id` in a child process and record a ScrapeRun; returns its status.

    Routed to the "scrape" queue (CELERY_TASK_ROUTES). Never overlaps another crawl of the
    same source: the crawl process takes the source's advisory lock, and a locked source
    gives a run marked skipped. After a competitor crawl, price work is queued on commit.
    """
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        logger.warning("source %s no longer exists; crawl not run", source_id)
        return "missing"
    run = scrape_run_queue(
        source_id=source_id, trigger=trigger, celery_task_id=self.request.id or ""
    )
    run = crawl_process_run(run=run, time_limit=settings.SCRAPER_CRAWL_TIME_LIMIT)
    if run.status == ScrapeRunStatus.FINISHED and source.kind == SourceKind.COMPETITOR:
        run_id = run.pk
        transaction.on_commit(lambda: prices_after_crawl.delay(source_id=source_id, run_id=run_id))
    return str(run.status)
