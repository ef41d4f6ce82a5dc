"""Scraper: how Django and Celery run crawls (Scrapy's own settings: scraper/settings.py)."""

from webapp.settings.env import env

# Sent with every request, so a shop can tell who crawls it and reach us.
SCRAPER_USER_AGENT: str = env.str(
    "SCRAPER_USER_AGENT",
    default="ReelshopBot/1.0 (price and catalog monitor; +https://github.com/reelshop/platform)",
)
# A crawl process is killed after this many seconds (the spider closes itself a minute
# earlier through CLOSESPIDER_TIMEOUT, so its counters are still recorded).
SCRAPER_CRAWL_TIME_LIMIT: int = env.int("SCRAPER_CRAWL_TIME_LIMIT", default=2 * 60 * 60)
# Items written per INSERT ... ON CONFLICT batch by the storage pipeline.
SCRAPER_INGEST_BATCH_SIZE: int = env.int("SCRAPER_INGEST_BATCH_SIZE", default=200)
# Celery task queued (on commit) with the ids of items a catalog crawl created: by default
# the one giving them semantic IDs from their content; empty: none.
SCRAPER_NEW_ITEMS_TASK: str = env.str(
    "SCRAPER_NEW_ITEMS_TASK", default="ml.tasks.items_semantic_ids_assign"
)
# Worker processes per crawl that run the CPU-bound product extraction while the crawl's
# event loop keeps downloading; 0 (default) runs it in the crawl process, which was faster
# on a 2-CPU machine (bench/results_scrape.md); worth trying on many-core workers.
SCRAPER_EXTRACTION_PROCESSES: int = env.int("SCRAPER_EXTRACTION_PROCESSES", default=0)
# Competitor product matching: a model match at or above ACCEPT is accepted at once; from
# REVIEW up to ACCEPT it waits in the admin's review queue; below REVIEW it is dropped.
SCRAPER_MATCH_ACCEPT_THRESHOLD: float = env.float("SCRAPER_MATCH_ACCEPT_THRESHOLD", default=0.9)
SCRAPER_MATCH_REVIEW_THRESHOLD: float = env.float("SCRAPER_MATCH_REVIEW_THRESHOLD", default=0.3)
