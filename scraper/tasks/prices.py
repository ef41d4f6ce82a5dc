"""Celery tasks that follow a crawl: matching new products, price analytics and alerts."""

from celery import shared_task


@shared_task(name="scraper.tasks.prices.prices_after_crawl", time_limit=30 * 60)
def prices_after_crawl(*, source_id: int, run_id: int) -> None:
    """Match the source's new products and evaluate alert rules after crawl `run_id`."""
    # Filled in by the matching/alerts work; the crawl task already queues it.
