"""Admin of sources, their schedules and scrape runs."""

import json
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from scraper.models import ScrapeRun, Source
from scraper.selectors import scrape_runs_recent
from scraper.services.schedules import source_schedule_remove, source_schedule_sync
from scraper.tasks.crawl import source_crawl

LIST_FIELDS = ("allowed_domains", "start_urls", "sitemap_urls")
RECENT_RUNS_SHOWN = 10


def pretty_json(value: Any) -> str:
    return format_html(
        '<pre style="margin:0">{}</pre>', json.dumps(value, indent=2, sort_keys=True)
    )


class LinesField(forms.CharField):
    """A list of strings edited as one value per line."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 80})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(str(line) for line in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [line.strip() for line in str(text).splitlines() if line.strip()]


class SourceForm(forms.ModelForm[Source]):
    """Lists as one entry per line; the model's validators name the bad line and field."""

    allowed_domains = LinesField(required=False, help_text="One host name per line.")
    start_urls = LinesField(required=False, help_text="Listing pages, one URL per line.")
    sitemap_urls = LinesField(required=False, help_text="Sitemaps, one URL per line.")

    class Meta:
        model = Source
        fields = [
            "name",
            "kind",
            "is_active",
            *LIST_FIELDS,
            "follow_url_pattern",
            "follow_link_css",
            "product_url_pattern",
            "product_link_css",
            "extraction_mode",
            "selectors",
            "default_currency",
            "schedule",
            "concurrent_requests_per_domain",
            "download_delay",
            "download_timeout",
            "max_pages",
            "max_seconds",
        ]

    def clean_allowed_domains(self) -> list[str]:
        domains: list[str] = self.cleaned_data["allowed_domains"]
        return [domain.lower() for domain in domains]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin[Source]):
    form = SourceForm
    list_display = ["name", "kind", "is_active", "schedule", "last_run", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]
    actions = ["crawl_now"]
    readonly_fields = ["beat_entry", "recent_runs"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "is_active"]}),
        ("Where to crawl", {"fields": ["allowed_domains", "start_urls", "sitemap_urls"]}),
        (
            "Which links to follow",
            {
                "fields": [
                    "follow_url_pattern",
                    "follow_link_css",
                    "product_url_pattern",
                    "product_link_css",
                ]
            },
        ),
        ("Extraction", {"fields": ["extraction_mode", "selectors", "default_currency"]}),
        ("Schedule", {"fields": ["schedule", "beat_entry"]}),
        (
            "Politeness and limits",
            {
                "fields": [
                    "concurrent_requests_per_domain",
                    "download_delay",
                    "download_timeout",
                    "max_pages",
                    "max_seconds",
                ]
            },
        ),
        ("Runs", {"fields": ["recent_runs"]}),
    ]

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            source_schedule_sync(source=obj)

    def delete_model(self, request: HttpRequest, obj: Source) -> None:
        with transaction.atomic():
            source_schedule_remove(source=obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        with transaction.atomic():
            for source in queryset:
                source_schedule_remove(source=source)
            super().delete_queryset(request, queryset)

    @admin.action(description="Crawl now")
    def crawl_now(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        for source in queryset:
            transaction.on_commit(partial(source_crawl.delay, source_id=source.pk, trigger="admin"))
        names = ", ".join(source.name for source in queryset)
        self.message_user(
            request,
            f"Crawl queued for {names}; its run appears under Scrape runs when a worker starts it.",
            messages.SUCCESS,
        )

    @admin.display(description="Last run")
    def last_run(self, source: Source) -> str:
        run = source.runs.order_by("-started_at", "-id").first()
        if run is None:
            return "-"
        return f"{run.get_status_display()} at {run.started_at:%Y-%m-%d %H:%M}"

    @admin.display(description="Beat entry")
    def beat_entry(self, source: Source) -> str:
        if source.periodic_task is None:
            return "none (no schedule)"
        url = reverse(
            "admin:django_celery_beat_periodictask_change", args=[source.periodic_task_id]
        )
        state = "enabled" if source.periodic_task.enabled else "disabled (source inactive)"
        return format_html('<a href="{}">{}</a> ({})', url, source.periodic_task.name, state)

    @admin.display(description="Recent runs")
    def recent_runs(self, source: Source) -> str:
        if source.pk is None:
            return "-"
        runs = scrape_runs_recent(source_id=source.pk, limit=RECENT_RUNS_SHOWN)
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td>'
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:scraper_scraperun_change", args=[run.pk]),
                    run.pk,
                    run.get_status_display(),
                    f"{run.started_at:%Y-%m-%d %H:%M}",
                    run.pages,
                    run.items_scraped,
                    run.errors,
                    run.finish_reason,
                )
                for run in runs
            ),
        )
        return format_html(
            "<table><tr><th>Run</th><th>Status</th><th>Started</th><th>Pages</th>"
            "<th>Items</th><th>Errors</th><th>Finish reason</th></tr>{}</table>",
            rows,
        )


@admin.register(ScrapeRun)
class ScrapeRunAdmin(admin.ModelAdmin[ScrapeRun]):
    list_display = [
        "id",
        "source",
        "status",
        "trigger",
        "started_at",
        "duration",
        "pages",
        "items_scraped",
        "items_dropped",
        "price_changes",
        "retries",
        "errors",
        "success",
    ]
    list_filter = ["status", "source"]
    list_select_related = ["source"]
    date_hierarchy = "started_at"
    fields = (
        "source",
        "status",
        "trigger",
        "celery_task_id",
        "started_at",
        "finished_at",
        "duration",
        "finish_reason",
        "pages",
        "pages_ok",
        "pages_failed",
        "success",
        "items_scraped",
        "items_created",
        "items_updated",
        "price_changes",
        "items_dropped",
        "dropped_reasons_json",
        "status_counts_json",
        "retries",
        "errors",
        "error_counts_json",
        "stats_json",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs come from crawls only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Duration")
    def duration(self, run: ScrapeRun) -> str:
        if run.finished_at is None:
            return "-"
        return f"{(run.finished_at - run.started_at).total_seconds():.1f} s"

    @admin.display(description="Success rate", ordering="success_rate")
    def success(self, run: ScrapeRun) -> str:
        return "-" if run.success_rate is None else f"{run.success_rate:.1%}"

    @admin.display(description="Dropped items by reason")
    def dropped_reasons_json(self, run: ScrapeRun) -> str:
        return pretty_json(run.dropped_reasons)

    @admin.display(description="HTTP status counts")
    def status_counts_json(self, run: ScrapeRun) -> str:
        return pretty_json(run.status_counts)

    @admin.display(description="Errors by reason")
    def error_counts_json(self, run: ScrapeRun) -> str:
        return pretty_json(run.error_counts)

    @admin.display(description="Scrapy stats")
    def stats_json(self, run: ScrapeRun) -> str:
        return pretty_json(run.stats)
