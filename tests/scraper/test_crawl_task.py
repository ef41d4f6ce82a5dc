"""The crawl task: its own process, the per-source lock, the time limit, and a real Celery
worker running a crawl end to end."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scraper.models import CompetitorProduct, ScrapeRun, Source
from scraper.models.sources import ScrapeRunStatus, SourceKind
from scraper.services.crawl import (
    LOCKED_REASON,
    SourceLock,
    crawl_process_run,
    scrape_run_queue,
)
from scraper.tasks.crawl import source_crawl
from tests.scraper.crawl_fixtures import fixture_shop_source
from tests.scraper.sites.fixture_shop import FixtureShop
from tests.workers import celery_worker

WORKER_DEADLINE_SECONDS = 90


@pytest.fixture
def lock_of() -> Iterator[Any]:
    """Takes source locks for a test and releases them after it."""
    held: list[SourceLock] = []

    def take(source_id: int) -> SourceLock:
        lock = SourceLock(source_id)
        assert lock.acquire()
        held.append(lock)
        return lock

    yield take
    for lock in held:
        lock.release()


@pytest.mark.django_db
def test_source_lock_is_exclusive_per_source(lock_of: Any) -> None:
    held = lock_of(41)
    assert not SourceLock(41).acquire()  # a second crawl of source 41 is refused
    other = SourceLock(42)
    assert other.acquire()  # another source is not blocked
    other.release()
    held.release()
    again = SourceLock(41)
    assert again.acquire()
    again.release()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_task_skips_a_source_another_crawl_holds(fixture_shop: FixtureShop, lock_of: Any) -> None:
    # Given a crawl of the source already running (it holds the source's lock)
    source = fixture_shop_source(fixture_shop)
    lock_of(source.pk)

    # When the task is run for the same source
    status = source_crawl.apply(kwargs={"source_id": source.pk, "trigger": "test"}).get()

    # Then its crawl process started, found the lock taken and fetched nothing
    assert status == ScrapeRunStatus.SKIPPED
    run = ScrapeRun.objects.get(source=source)
    assert (run.status, run.finish_reason, run.trigger) == ("skipped", LOCKED_REASON, "test")
    assert sum(fixture_shop.hits.values()) == 0


@pytest.mark.django_db(transaction=True)
def test_a_crawl_past_its_time_limit_is_stopped_and_marked_failed(
    fixture_shop: FixtureShop,
) -> None:
    source = fixture_shop_source(fixture_shop)
    run = scrape_run_queue(source_id=source.pk, trigger="test")
    started = time.monotonic()
    run = crawl_process_run(run=run, time_limit=1)
    assert time.monotonic() - started < 30
    assert run.status == ScrapeRunStatus.FAILED
    assert run.finish_reason == "time limit of 1 s exceeded"
    assert run.finished_at is not None


@pytest.mark.django_db
def test_a_missing_source_is_not_crawled() -> None:
    assert source_crawl.apply(kwargs={"source_id": 987654}).get() == "missing"


@pytest.fixture
def scrape_worker(tmp_path: Path) -> Iterator[Path]:
    """A real worker on the "scrape" queue, against the test database; yields its log."""
    with celery_worker("scrape", tmp_path / "worker.log") as log:
        yield log


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_crawls_a_competitor_source_from_its_sitemap(
    fixture_shop: FixtureShop, scrape_worker: Path
) -> None:
    # Given a competitor source that lists its products in a sitemap
    source = fixture_shop_source(
        fixture_shop, start_urls=[], sitemap_urls=[fixture_shop.url("/sitemap.xml")]
    )

    # When a crawl is queued, as the schedule or the admin's "Crawl now" does
    source_crawl.delay(source_id=source.pk, trigger="e2e")

    # Then the real worker runs it in its own process and records the run with the items
    deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
    run = None
    while time.monotonic() < deadline:
        run = ScrapeRun.objects.filter(source=source).first()
        if run is not None and run.is_finished:
            break
        time.sleep(0.5)
    assert run is not None and run.is_finished, scrape_worker.read_text()[-3000:]
    assert run.status == ScrapeRunStatus.FINISHED, run.finish_reason
    assert run.trigger == "e2e" and run.celery_task_id
    products = len(fixture_shop.products())
    assert run.items_scraped == products
    assert CompetitorProduct.objects.filter(source=source).count() == products
    assert Source.objects.get(pk=source.pk).kind == SourceKind.COMPETITOR
