"""Sources in the admin: clear validation errors, schedules kept in django-celery-beat,
"Crawl now", and read-only scrape runs."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from scraper.models import ScrapeRun, Source
from scraper.models.sources import ScrapeRunStatus, SourceKind
from scraper.services.crawl import scrape_run_finish, scrape_run_queue

pytestmark = pytest.mark.django_db
ADD_URL = "admin:scraper_source_add"


def _form(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Rival shop",
        "kind": SourceKind.COMPETITOR,
        "is_active": "on",
        "allowed_domains": "rival.example\nwww.rival.example",
        "start_urls": "https://rival.example/shop/\nhttps://www.rival.example/sale/",
        "sitemap_urls": "",
        "follow_url_pattern": r"/shop/\?page=\d+",
        "follow_link_css": ".pagination",
        "product_url_pattern": r"/p/\d+",
        "product_link_css": "",
        "extraction_mode": "structured",
        "selectors": '{"title": "h1::text", "sku": "xpath://span[@class=\'sku\']/text()"}',
        "default_currency": "EUR",
        "schedule": "*/30 * * * *",
        "concurrent_requests_per_domain": "2",
        "download_delay": "0.5",
        "download_timeout": "30",
        "max_pages": "1000",
        "max_seconds": "600",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def _change_url(source: Source) -> str:
    return reverse("admin:scraper_source_change", args=[source.pk])


def test_adding_a_source_creates_its_beat_schedule(admin_client: Client) -> None:
    response = admin_client.post(reverse(ADD_URL), _form())
    assert response.status_code == 302, response.context["adminform"].form.errors
    source = Source.objects.get(name="Rival shop")
    assert source.allowed_domains == ["rival.example", "www.rival.example"]
    assert source.start_urls == ["https://rival.example/shop/", "https://www.rival.example/sale/"]
    task = PeriodicTask.objects.get(pk=source.periodic_task_id)
    assert task.task == "scraper.tasks.crawl.source_crawl"
    assert task.queue == "scrape" and task.enabled
    assert (task.crontab.minute, task.crontab.hour) == ("*/30", "*")
    assert f'"source_id": {source.pk}' in task.kwargs

    # editing the schedule updates the same entry; deactivating disables it
    admin_client.post(_change_url(source), _form(schedule="0 3 * * 1", is_active=None))
    task.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "3", "1")
    assert not task.enabled
    # clearing it removes the entry
    admin_client.post(_change_url(source), _form(schedule=""))
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    assert Source.objects.get(pk=source.pk).periodic_task is None
    # and deleting a scheduled source removes its entry too
    admin_client.post(_change_url(source), _form(schedule="0 * * * *"))
    assert PeriodicTask.objects.filter(name=f"Crawl source #{source.pk}").exists()
    delete_url = reverse("admin:scraper_source_delete", args=[source.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not PeriodicTask.objects.filter(name__startswith="Crawl source").exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"start_urls": "rival.example/shop"}, "start_urls", "is not an absolute http(s) URL"),
        (
            {"start_urls": "https://elsewhere.example/"},
            "start_urls",
            "outside the allowed domains",
        ),
        ({"allowed_domains": "https://rival.example/"}, "allowed_domains", "is not a host name"),
        ({"allowed_domains": ""}, "allowed_domains", "at least one allowed domain"),
        ({"selectors": '{"title": "h1[[::text"}'}, "selectors", "does not parse"),
        ({"selectors": '{"colour": "h1"}'}, "selectors", "unknown field 'colour'"),
        ({"selectors": '["h1"]'}, "selectors", "must be an object"),
        ({"product_url_pattern": "/p/(\\d+"}, "product_url_pattern", "not a valid regular"),
        ({"follow_link_css": "ul >> li"}, "follow_link_css", "not a valid CSS selector"),
        ({"schedule": "every day"}, "schedule", ""),
        ({"default_currency": "eur"}, "default_currency", "ISO 4217"),
        (
            {"product_url_pattern": "", "product_link_css": ""},
            "product_url_pattern",
            "say which links are products",
        ),
    ],
)
def test_bad_input_is_refused_with_an_error_on_its_field(
    admin_client: Client, changes: dict[str, str], field: str, message: str
) -> None:
    response = admin_client.post(reverse(ADD_URL), _form(**changes))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert not Source.objects.exists()
    assert not PeriodicTask.objects.filter(name__startswith="Crawl source").exists()


def test_crawl_now_queues_the_task_on_commit(
    admin_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    source = Source.objects.create(name="s", kind=SourceKind.CATALOG)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            reverse("admin:scraper_source_changelist"),
            {"action": "crawl_now", "_selected_action": [source.pk]},
        )
    assert response.status_code == 302
    assert len(callbacks) == 1
    queued = callbacks[0]
    assert queued.func.__self__.name == "scraper.tasks.crawl.source_crawl"  # type: ignore[attr-defined]
    assert queued.keywords == {"source_id": source.pk, "trigger": "admin"}  # type: ignore[attr-defined]


def test_scrape_runs_are_read_only_with_their_counters(admin_client: Client) -> None:
    source = Source.objects.create(name="Rival", kind=SourceKind.COMPETITOR)
    run = scrape_run_queue(source_id=source.pk, trigger="schedule")
    stats = {
        "response_received_count": 12,
        "downloader/response_status_count/200": 10,
        "downloader/response_status_count/503": 2,
        "retry/count": 2,
        "scraper/pages/ok": 9,
        "scraper/pages/failed": 1,
        "scraper/errors/timeout": 1,
        "scraper/dropped/missing title": 3,
        "scraper/items/saved": 6,
    }
    scrape_run_finish(run_id=run.pk, reason="finished", stats=stats)
    run = ScrapeRun.objects.get(pk=run.pk)
    assert (run.status, run.pages, run.items_scraped, run.items_dropped) == (
        ScrapeRunStatus.FINISHED,
        12,
        6,
        3,
    )
    assert run.status_counts == {"200": 10, "503": 2}
    assert run.success_rate == 0.9

    listing = admin_client.get(reverse("admin:scraper_scraperun_changelist"))
    assert listing.status_code == 200
    assert "90.0%" in listing.content.decode()
    page = admin_client.get(reverse("admin:scraper_scraperun_change", args=[run.pk]))
    body = page.content.decode()
    assert "missing title" in body and "&quot;503&quot;: 2" in body.replace('"', "&quot;")
    assert reverse("admin:scraper_scraperun_add") not in listing.content.decode()
    source_page = admin_client.get(_change_url(source)).content.decode()
    assert f"#{run.pk}" in source_page
