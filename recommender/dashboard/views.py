"""The staff page "Recommendation performance": parse the date range, read, render."""

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from recommender.dashboard.charts import counts_by_day_chart, ctr_bar_chart, ctr_by_day_chart
from recommender.dashboard.selectors import (
    DEFAULT_DAYS,
    DashboardData,
    DateWindow,
    dashboard_window_default,
    recommendation_dashboard_data,
    recommendation_event_latest_at,
)

EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)
ALL_TIME = "all"


class DateRangeForm(forms.Form):
    """GET parameters: `start` and `end` (inclusive days), or `period=all`."""

    start = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    end = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    period = forms.ChoiceField(required=False, choices=[("", "Dates"), (ALL_TIME, "All time")])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if any(day is not None and not EARLIEST_DAY <= day <= LATEST_DAY for day in (start, end)):
            raise forms.ValidationError("Dates must fall between 1900 and 2999.")
        if start is not None and end is not None and start > end:
            raise forms.ValidationError("The start date is after the end date.")
        return cleaned


@staff_member_required
def recommendation_dashboard(request: HttpRequest) -> HttpResponse:
    """Impressions, clicks, CTR, add-to-carts, purchases and revenue of recommendations."""
    latest_event_at = recommendation_event_latest_at()
    default = dashboard_window_default(today=timezone.localdate(), latest_event_at=latest_event_at)
    window = _requested_window(request, default=default)
    data = recommendation_dashboard_data(window=window)
    context = {
        **admin.site.each_context(request),
        "title": "Recommendation performance",
        "window": window,
        "shifted_note": _shifted_note(window=window, default=default),
        "latest_event_at": latest_event_at,
        "data": data,
        **_charts(data),
    }
    return render(request, "admin/recommender/dashboard.html", context)


def _requested_window(request: HttpRequest, *, default: DateWindow) -> DateWindow:
    """The window the GET parameters ask for; the default (and a message) when they are bad."""
    form = DateRangeForm(request.GET)
    if not form.is_valid():
        problems = " ".join(str(error) for errors in form.errors.values() for error in errors)
        messages.warning(request, f"{problems} Showing the default range instead.")
        return default
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    if form.cleaned_data["period"] == ALL_TIME:
        return DateWindow()
    if start is None and end is None:
        return default
    end = end or max(timezone.localdate(), start)
    return DateWindow(start=start or end - timedelta(days=DEFAULT_DAYS - 1), end=end)


def _shifted_note(*, window: DateWindow, default: DateWindow) -> str:
    """Why the default window is not the last 30 days, when it is shown and is not."""
    if window != default or default.end is None or default.end >= timezone.localdate():
        return ""
    return (
        f"Nothing in the last {DEFAULT_DAYS} days: showing the {DEFAULT_DAYS} days up to the "
        f"newest recommendation event ({default.end:%Y-%m-%d})."
    )


def _charts(data: DashboardData) -> dict[str, Any]:
    return {
        "ctr_chart": ctr_by_day_chart(data.days),
        "impressions_chart": counts_by_day_chart(
            data.days, counted=[("Impressions", "impressions")], y_label="Impressions per day"
        ),
        "actions_chart": counts_by_day_chart(
            data.days,
            counted=[
                ("Clicks", "clicks"),
                ("Add-to-carts", "add_to_carts"),
                ("Purchases", "purchases"),
            ],
            y_label="Events per day",
        ),
        "placement_bars": ctr_bar_chart([(row.placement, row.metrics) for row in data.placements]),
        "variant_bars": ctr_bar_chart(
            [(f"{row.experiment}: {row.variant}", row.metrics) for row in data.variants]
        ),
    }
