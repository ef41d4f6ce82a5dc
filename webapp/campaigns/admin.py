"""Admin: campaigns with their creatives, validation as form errors, the uplift report."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from webapp.campaigns.models import Campaign, CampaignStatus, Creative, creatives_errors
from webapp.campaigns.report import campaign_report
from webapp.campaigns.schedule import ALL_DAYS, DAY_NAMES
from webapp.campaigns.services import campaign_set_status


class CampaignForm(forms.ModelForm[Campaign]):
    """The campaign, with its weekdays as checkboxes."""

    days = forms.TypedMultipleChoiceField(
        choices=list(zip(ALL_DAYS, DAY_NAMES, strict=True)),
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        required=False,  # the model's clean says "pick at least one day"
        initial=list(ALL_DAYS),
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "status",
            "placement",
            "segment",
            "priority",
            "starts_at",
            "ends_at",
            "days",
            "hour_from",
            "hour_to",
            "holdout_percent",
            "cap_views",
            "cap_days",
            "bandit",
            "bandit_min_share",
            "bandit_min_visitors",
        ]


class CreativeFormSet(BaseInlineFormSet[Creative, Campaign, forms.ModelForm[Creative]]):
    """The creatives together: weights summing to 100; an active campaign needs one."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        errors = creatives_errors(weights=[d.get("weight") or 0 for d in kept], count=len(kept))
        if not kept and self.instance.status == CampaignStatus.ACTIVE:
            errors.append("An active campaign needs at least one creative.")
        if errors:
            raise ValidationError(errors)


class CreativeInline(admin.StackedInline[Creative, Campaign]):
    model = Creative
    formset = CreativeFormSet
    extra = 0
    min_num = 1
    fields = [
        ("name", "weight", "position"),
        "headline",
        "text",
        ("image_url", "link_url"),
        "offer_code",
        "bandit_weight",
    ]
    readonly_fields = ["bandit_weight"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    form = CampaignForm
    inlines = [CreativeInline]
    list_display = [
        "name",
        "status",
        "placement",
        "priority",
        "segment",
        "schedule_text",
        "holdout_percent",
        "bandit",
        "report_link",
    ]
    list_filter = ["status", "placement", "bandit"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["activate", "pause", "end"]
    fieldsets = [
        (None, {"fields": ["name", "status", "placement", "segment", "priority"]}),
        ("Schedule", {"fields": ["starts_at", "ends_at", "days", "hour_from", "hour_to"]}),
        ("Audience", {"fields": ["holdout_percent", "cap_views", "cap_days"]}),
        ("Bandit", {"fields": ["bandit", "bandit_min_share", "bandit_min_visitors"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="Schedule")
    def schedule_text(self, obj: Campaign) -> str:
        start = f"{obj.starts_at:%Y-%m-%d %H:%M}" if obj.starts_at else "now"
        end = f"{obj.ends_at:%Y-%m-%d %H:%M}" if obj.ends_at else "open"
        days = "every day" if len(obj.days) == 7 else ",".join(DAY_NAMES[d][:3] for d in obj.days)
        return f"{start} → {end}; {days}; {obj.hour_from:02d}-{obj.hour_to:02d}h"

    @admin.display(description="Report")
    def report_link(self, obj: Campaign) -> str:
        url = reverse("admin:campaigns_campaign_report", args=[obj.pk])
        return format_html('<a href="{}">Uplift report</a>', url)

    @admin.action(description="Activate (or resume) the selected campaigns")
    def activate(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._move(request, queryset, CampaignStatus.ACTIVE)

    @admin.action(description="Pause the selected campaigns")
    def pause(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._move(request, queryset, CampaignStatus.PAUSED)

    @admin.action(description="End the selected campaigns (final)")
    def end(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._move(request, queryset, CampaignStatus.ENDED)

    def _move(self, request: HttpRequest, queryset: QuerySet[Campaign], status: str) -> None:
        for campaign in queryset.order_by("pk"):
            previous = campaign.status
            try:
                campaign_set_status(campaign=campaign, status=status)
            except ValidationError as error:
                campaign.status = previous
                self.message_user(
                    request, f"{campaign}: {' '.join(error.messages)}", messages.ERROR
                )
            else:
                self.message_user(request, f"{campaign} is now {status}.")

    def get_urls(self) -> list[URLPattern]:
        report = path(
            "<int:object_id>/report/",
            self.admin_site.admin_view(self.report_view),
            name="campaigns_campaign_report",
        )
        return [report, *super().get_urls()]

    def report_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Exposed vs holdout, per creative, and the bandit's allocation (view permission)."""
        campaign = Campaign.objects.filter(pk=object_id).first()
        if campaign is None:
            raise Http404(f"No campaign #{object_id}.")
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Uplift report: {campaign.name}",
            "campaign": campaign,
            "report": campaign_report(campaign),
        }
        return render(request, "admin/campaigns/report.html", context)
