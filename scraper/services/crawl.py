"""Writes of a crawl: its ScrapeRun from queue to finish, the per-source lock, and the
crawl's own process (the Twisted reactor runs once per process)."""

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.db import connection
from django.utils import timezone

from scraper.models import ScrapeRun
from scraper.models.sources import ScrapeRunStatus

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
# Class id of the Postgres advisory locks crawls hold: (SOURCE_LOCK_CLASS, source id).
SOURCE_LOCK_CLASS = 7_000_007
# Seconds a terminated crawl process gets to record its run before it is killed.
TERMINATE_GRACE_SECONDS = 20
LOCKED_REASON = "another crawl of this source is running"
# Exit status of `manage.py crawl_source` when the source was locked by another crawl.
CRAWL_EXIT_LOCKED = 3
# Stats prefixes written by the spider and the pipelines (scraper.spiders.product).
_STATUS_PREFIX = "downloader/response_status_count/"
_ERRORS_PREFIX = "scraper/errors/"
_DROPPED_PREFIX = "scraper/dropped/"
_SPIDER_EXCEPTION_PREFIX = "spider_exceptions/"


class SourceLock:
    """The per-source crawl lock: a Postgres session advisory lock on a connection of its
    own, so it lives exactly as long as the crawl process (a killed process frees it)."""

    def __init__(self, source_id: int) -> None:
        self.source_id = source_id
        self._connection: Any = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another crawl of the source holds it."""
        params = connection.get_connection_params()
        raw = connection.get_new_connection(params)
        raw.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", [SOURCE_LOCK_CLASS, self.source_id]
            )
            acquired = bool(cursor.fetchone()[0])
        if acquired:
            self._connection = raw
        else:
            raw.close()
        return acquired

    def release(self) -> None:
        """Give the lock back (closing the connection would too)."""
        if self._connection is None:
            return
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", [SOURCE_LOCK_CLASS, self.source_id]
                )
        finally:
            self._connection.close()
            self._connection = None


def scrape_run_queue(*, source_id: int, trigger: str, celery_task_id: str = "") -> ScrapeRun:
    """A run waiting for its crawl process."""
    return ScrapeRun.objects.create(
        source_id=source_id, trigger=trigger, celery_task_id=celery_task_id
    )


def scrape_run_begin(*, source_id: int, run_id: int | None, trigger: str) -> ScrapeRun:
    """Mark run `run_id` running (or create a running one when the crawl was started
    without a queued run, e.g. `scrapy crawl`)."""
    now = timezone.now()
    if run_id is None:
        return ScrapeRun.objects.create(
            source_id=source_id, trigger=trigger, status=ScrapeRunStatus.RUNNING
        )
    ScrapeRun.objects.filter(pk=run_id, source_id=source_id).update(
        status=ScrapeRunStatus.RUNNING, started_at=now
    )
    return ScrapeRun.objects.get(pk=run_id, source_id=source_id)


def scrape_run_skip(*, source_id: int, run_id: int | None, trigger: str) -> ScrapeRun:
    """Record that a crawl did not start because the source was locked."""
    values = {
        "status": ScrapeRunStatus.SKIPPED,
        "finish_reason": LOCKED_REASON,
        "finished_at": timezone.now(),
    }
    if run_id is None:
        return ScrapeRun.objects.create(source_id=source_id, trigger=trigger, **values)
    ScrapeRun.objects.filter(pk=run_id).update(**values)
    return ScrapeRun.objects.get(pk=run_id)


def scrape_run_finish(*, run_id: int, reason: str, stats: Mapping[str, Any]) -> ScrapeRun:
    """Store the crawl's counters, taken from Scrapy's stats, and its finish reason."""
    values = run_counters(stats)
    ScrapeRun.objects.filter(pk=run_id).update(
        status=ScrapeRunStatus.FINISHED,
        finish_reason=reason,
        finished_at=timezone.now(),
        stats=_json_safe(stats),
        **values,
    )
    return ScrapeRun.objects.get(pk=run_id)


def scrape_run_fail(*, run_id: int, reason: str) -> ScrapeRun:
    """Mark a run that its process did not finish as failed (a finished one is kept)."""
    active = (ScrapeRunStatus.QUEUED, ScrapeRunStatus.RUNNING)
    ScrapeRun.objects.filter(pk=run_id, status__in=active).update(
        status=ScrapeRunStatus.FAILED, finish_reason=reason, finished_at=timezone.now()
    )
    return ScrapeRun.objects.get(pk=run_id)


def run_counters(stats: Mapping[str, Any]) -> dict[str, Any]:
    """ScrapeRun's counter fields from a crawl's Scrapy stats."""
    error_counts = _with_prefix(stats, _ERRORS_PREFIX)
    for name, count in _with_prefix(stats, _SPIDER_EXCEPTION_PREFIX).items():
        if name != "count":
            error_counts[f"spider exception: {name}"] = count
    dropped = _with_prefix(stats, _DROPPED_PREFIX)
    pages_ok = int(stats.get("scraper/pages/ok", 0))
    pages_failed = int(stats.get("scraper/pages/failed", 0))
    attempted = pages_ok + pages_failed
    return {
        "pages": int(stats.get("response_received_count", 0)),
        "pages_ok": pages_ok,
        "pages_failed": pages_failed,
        "items_scraped": int(stats.get("scraper/items/saved", 0)),
        "items_dropped": sum(dropped.values()),
        "dropped_reasons": dropped,
        "items_created": int(stats.get("scraper/items/created", 0)),
        "items_updated": int(stats.get("scraper/items/updated", 0)),
        "price_changes": int(stats.get("scraper/price_changes", 0)),
        "status_counts": _with_prefix(stats, _STATUS_PREFIX),
        "retries": int(stats.get("retry/count", 0)),
        "errors": sum(error_counts.values()),
        "error_counts": error_counts,
        "success_rate": round(pages_ok / attempted, 4) if attempted else None,
    }


def _with_prefix(stats: Mapping[str, Any], prefix: str) -> dict[str, int]:
    return {
        key[len(prefix) :]: int(value)
        for key, value in sorted(stats.items())
        if key.startswith(prefix) and isinstance(value, int | float)
    }


def _json_safe(stats: Mapping[str, Any]) -> dict[str, Any]:
    safe: dict[str, Any] = {}
    for key, value in stats.items():
        if isinstance(value, datetime):
            safe[key] = value.isoformat()
        elif isinstance(value, str | int | float | bool) or value is None:
            safe[key] = value
        else:
            safe[key] = repr(value)
    return safe


def crawl_process_run(*, run: ScrapeRun, time_limit: float) -> ScrapeRun:
    """Crawl `run`'s source in a child process (`manage.py crawl_source`), stopping it past
    `time_limit` seconds; a run the child did not finish is marked failed."""
    command = [sys.executable, str(ROOT / "manage.py"), "crawl_source", str(run.source_id)]
    env = {**os.environ, "DATABASE_URL": _database_url()}  # the database this process uses
    process = subprocess.Popen([*command, "--run", str(run.pk)], cwd=ROOT, env=env)
    try:
        returncode = process.wait(timeout=time_limit)
    except subprocess.TimeoutExpired:
        _stop(process)
        return scrape_run_fail(run_id=run.pk, reason=f"time limit of {time_limit:.0f} s exceeded")
    except BaseException:  # the task itself was interrupted (soft time limit, shutdown)
        _stop(process)
        scrape_run_fail(run_id=run.pk, reason="crawl interrupted")
        raise
    if returncode not in (0, CRAWL_EXIT_LOCKED):
        return scrape_run_fail(run_id=run.pk, reason=f"crawl process exited with code {returncode}")
    run.refresh_from_db()
    if not run.is_finished:
        return scrape_run_fail(run_id=run.pk, reason="crawl process ended without a result")
    return run


def _database_url() -> str:
    s = connection.settings_dict
    user, password = quote(str(s["USER"] or ""), safe=""), quote(str(s["PASSWORD"] or ""), safe="")
    credentials = f"{user}:{password}@" if user else ""
    return f"postgres://{credentials}{s['HOST'] or ''}:{s['PORT'] or 5432}/{quote(s['NAME'])}"


def _stop(process: "subprocess.Popen[bytes]") -> None:
    process.terminate()  # Scrapy closes the spider gracefully and records the run
    try:
        process.wait(timeout=TERMINATE_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
