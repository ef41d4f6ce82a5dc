"""Scrapy settings of the scraper project: `scrapy crawl product -a source=<id>` from the
repository root (scrapy.cfg), `manage.py crawl_source <id>`, or the Celery task.

Politeness is on by default (robots.txt, AutoThrottle, per-domain concurrency, a clear user
agent); a source's own politeness fields override the per-domain values when its spider
starts, and `-s NAME=VALUE` overrides everything (tests, the benchmark).
"""

import os

import django

# Pipelines and the run recorder write through Django's ORM; `scrapy crawl` starts here.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")
django.setup()

from django.conf import settings as django_settings  # noqa: E402

BOT_NAME = "reelshop"
SPIDER_MODULES = ["scraper.spiders"]
NEWSPIDER_MODULE = "scraper.spiders"

# The pipelines are async and reach the ORM through sync_to_async (see pipelines.py).
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

USER_AGENT = django_settings.SCRAPER_USER_AGENT
ROBOTSTXT_OBEY = True
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False  # no listening port on a crawl worker
LOG_LEVEL = "INFO"

# Politeness: AutoThrottle adapts the delay to the server's latency, never going below
# DOWNLOAD_DELAY; a source sets its own delay and per-domain concurrency.
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 0.5

# Robustness: a stuck or huge page costs bounded time and memory.
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
REDIRECT_MAX_TIMES = 10
CLOSESPIDER_TIMEOUT = 3600
CLOSESPIDER_PAGECOUNT = 5000
CLOSESPIDER_ERRORCOUNT = 200

# Retries on 408/429/5xx and network errors with exponential backoff that honours
# Retry-After (scraper.middlewares.BackoffRetryMiddleware replaces Scrapy's own).
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [408, 429, 500, 502, 503, 504, 522, 524]
RETRY_BACKOFF_BASE = 1.0
RETRY_BACKOFF_MAX = 60.0
RETRY_AFTER_MAX = 120.0
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "scraper.middlewares.BackoffRetryMiddleware": 550,
    "scraper.middlewares.RedirectLoopMiddleware": 650,
}

ITEM_PIPELINES = {
    "scraper.pipelines.ValidationPipeline": 100,
    "scraper.pipelines.DeduplicationPipeline": 200,
    "scraper.pipelines.StoragePipeline": 300,
}
SCRAPER_INGEST_BATCH_SIZE = django_settings.SCRAPER_INGEST_BATCH_SIZE
# extract_product is CPU-bound: run it in worker processes (0: in the crawl's event loop).
SCRAPER_EXTRACTION_PROCESSES = django_settings.SCRAPER_EXTRACTION_PROCESSES

EXTENSIONS = {"scraper.extensions.ScrapeRunRecorder": 500}

FEED_EXPORT_ENCODING = "utf-8"
