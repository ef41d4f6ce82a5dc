"""Celery tasks that follow a crawl: matching new products, price analytics and alerts."""

import logging

from celery import shared_task

from scraper.services.alerts import price_alerts_email_pending, price_alerts_evaluate
from scraper.services.matching import product_matches_run

logger = logging.getLogger(__name__)


@shared_task(
    name="scraper.tasks.prices.prices_after_crawl",
    time_limit=30 * 60,
    soft_time_limit=29 * 60,
)
def prices_after_crawl(*, source_id: int, run_id: int) -> None:
    """Match the source's new products and evaluate alert rules after crawl `run_id`."""
    matched = product_matches_run(source_id=source_id)
    alerts = price_alerts_evaluate(source_id=source_id)
    emailed = price_alerts_email_pending()
    logger.info(
        "after run %s of source %s: %s; %s; %s alerts e-mailed",
        run_id,
        source_id,
        matched,
        alerts,
        emailed,
    )
