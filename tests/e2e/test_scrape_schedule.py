"""A competitor source added in the admin is crawled on its schedule by the real Celery beat
(django-celery-beat's DatabaseScheduler) and a real worker on the "scrape" queue."""

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from scraper.models import CompetitorProduct, PriceObservation, ScrapeRun, Source
from scraper.models.sources import ScrapeRunStatus, SourceKind
from tests.scraper.crawl_fixtures import ROOT, child_env
from tests.scraper.sites.fixture_shop import FixtureShop
from webapp.celery import broker_queues_declare

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
DEADLINE_SECONDS = 75


@pytest.fixture
def fixture_shop() -> Iterator[FixtureShop]:
    """The loopback fixture shop (as in tests/scraper/conftest.py)."""
    with FixtureShop() as shop:
        yield shop


@pytest.fixture
def beat_and_worker(tmp_path: Path) -> Iterator[Path]:
    """Starts (on first use) a real beat and a real "scrape" worker against the test
    database; yields the folder of their logs and stops both after the test."""
    base = [sys.executable, "-m", "celery", "-A", "webapp"]
    commands = {
        "worker": [
            *base,
            *("worker", "-Q", "scrape", "--concurrency", "1", "--pool", "solo"),
            *("-n", "e2e-schedule@%h", "--loglevel", "INFO"),
        ],
        "beat": [
            *base,
            *("beat", "-S", "django_celery_beat.schedulers:DatabaseScheduler"),
            *("--max-interval", "1", "--loglevel", "INFO"),
        ],
    }
    env = child_env()  # the test database, settings and this test's broker
    assert "scrape" in broker_queues_declare()  # no race between beat and worker over it
    processes = []
    for name, command in commands.items():
        with (tmp_path / f"{name}.log").open("wb") as log:
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))
    yield tmp_path
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _logs(folder: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-2500:]}"
        for path in sorted(folder.glob("*.log"))
    )


def test_a_source_added_in_the_admin_is_crawled_on_its_schedule(
    admin_client: Client, fixture_shop: FixtureShop, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Given a competitor source added in the admin to be crawled every minute
    form = {
        "name": "Fixture shop",
        "kind": SourceKind.COMPETITOR,
        "is_active": "on",
        "allowed_domains": "127.0.0.1",
        "start_urls": "",
        "sitemap_urls": fixture_shop.url("/sitemap.xml"),
        "follow_url_pattern": "",
        "follow_link_css": "",
        "product_url_pattern": "",
        "product_link_css": "ul.listing",
        "extraction_mode": "structured",
        "selectors": "{}",
        "default_currency": "",
        "schedule": "* * * * *",
        "concurrent_requests_per_domain": "8",
        "download_delay": "0",
        "download_timeout": "5",
        "max_pages": "1000",
        "max_seconds": "600",
    }
    response = admin_client.post(reverse("admin:scraper_source_add"), form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    source = Source.objects.get(name="Fixture shop")
    periodic = PeriodicTask.objects.get(pk=source.periodic_task_id)
    # whose last scheduled run was two minutes ago, so the crontab is due at the next
    # check rather than at the next minute boundary (the scheduler's own decision either way)
    PeriodicTask.objects.filter(pk=periodic.pk).update(
        last_run_at=timezone.now() - timedelta(minutes=2)
    )

    # When beat and a scrape worker are running
    logs = request.getfixturevalue("beat_and_worker")

    # Then beat sends the crawl on its own and the worker records a finished run
    deadline = time.monotonic() + DEADLINE_SECONDS
    run = None
    while time.monotonic() < deadline:
        run = ScrapeRun.objects.filter(source=source).order_by("pk").first()
        if run is not None and periodic.enabled:
            # One scheduled crawl is enough: the next minute must not queue another.
            periodic.enabled = False
            periodic.save(update_fields=["enabled"])
        if run is not None and run.is_finished:
            break
        time.sleep(0.5)
    assert run is not None and run.is_finished, _logs(logs)
    assert run.status == ScrapeRunStatus.FINISHED, (run.finish_reason, _logs(logs))
    assert run.trigger == "schedule" and run.celery_task_id
    products = len(fixture_shop.products())
    assert run.items_scraped == products
    assert CompetitorProduct.objects.filter(source=source).count() == products
    observed = PriceObservation.objects.filter(product__source=source)
    assert observed.count() == products  # a first observation of each product's price
