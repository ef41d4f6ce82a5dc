"""Admin screens: experiments with their variants and status actions, read-only exposures."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from ml.models import ModelVersion
from webapp.experiments.metrics import metric_choices
from webapp.experiments.models import (
    CATEGORY_ORDERS,
    LAYOUT_TEMPLATES,
    Experiment,
    ExperimentStatus,
    Exposure,
    Variant,
    VariantStrategy,
    variants_errors,
)
from webapp.experiments.results_views import results_csv_response, results_page_context
from webapp.experiments.services import experiment_bucket_version_bump, experiment_set_status

BUMP_WARNING = (
    "Bucket version bumped: existing visitors keep their variant; new visitors are split "
    "by the new weights."
)
# Fixed once the experiment left the draft state: changing them would reshuffle people.
LOCKED_AFTER_DRAFT = ("key", "seed", "placement")


class ExperimentForm(forms.ModelForm[Experiment]):
    guardrail_metrics = forms.MultipleChoiceField(
        choices=metric_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Metrics that must not get worse (checked, not optimised).",
    )

    class Meta:
        model = Experiment
        fields = [
            "key",
            "name",
            "hypothesis",
            "placement",
            "segment",
            "traffic_share",
            "seed",
            "primary_metric",
            "guardrail_metrics",
            "correction",
            "sequential",
            "minimum_detectable_effect",
            "starts_at",
            "ends_at",
        ]


class VariantForm(forms.ModelForm[Variant]):
    """A variant, its `config` edited as four fields."""

    strategy = forms.ChoiceField(choices=VariantStrategy.choices, initial=VariantStrategy.MODEL)
    model_version = forms.ModelChoiceField(
        queryset=ModelVersion.objects.order_by("-pk"),
        required=False,
        help_text="Empty: the active model of the placement.",
    )
    template = forms.ChoiceField(
        choices=[("", "The page's own"), *LAYOUT_TEMPLATES.items()],
        required=False,
        help_text="Page-layout experiments (placement: home page layout) choose a template.",
    )
    category_order = forms.ChoiceField(
        choices=list(CATEGORY_ORDERS.items()),
        required=False,
        help_text=(
            "Category-order experiments (placement: category pages) choose how a category's "
            "items are ordered for visitors who did not pick a sort."
        ),
    )

    class Meta:
        model = Variant
        fields = ["key", "name", "weight", "is_control", "position"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.instance.config if isinstance(self.instance.config, dict) else {}
        self.initial.setdefault("strategy", config.get("strategy", VariantStrategy.MODEL))
        self.initial.setdefault("model_version", config.get("model_version"))
        self.initial.setdefault("template", config.get("template", ""))
        self.initial.setdefault("category_order", config.get("category_order", ""))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        version = cleaned.get("model_version")
        self.instance.config = {
            "strategy": cleaned.get("strategy", VariantStrategy.MODEL),
            "model_version": version.pk if version is not None else None,
            "template": cleaned.get("template", ""),
            "category_order": cleaned.get("category_order", ""),
        }
        return cleaned


class VariantFormSet(BaseInlineFormSet[Variant, Experiment, forms.ModelForm[Variant]]):
    """The variants together: weights summing to 100 and exactly one control."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        errors = variants_errors(
            weights=[data.get("weight") or 0 for data in kept],
            controls=sum(bool(data.get("is_control")) for data in kept),
        )
        if errors:
            raise ValidationError(errors)

    def weights_changed(self) -> bool:
        """Saving changed who gets which share: a weight, an added or a removed variant."""
        return bool(
            self.new_objects
            or self.deleted_objects
            or any("weight" in fields for _, fields in self.changed_objects)
        )


class VariantInline(admin.TabularInline[Variant, Experiment]):
    model = Variant
    form = VariantForm
    formset = VariantFormSet
    extra = 0
    min_num = 2
    fields = [
        "key",
        "name",
        "weight",
        "is_control",
        "position",
        "strategy",
        "model_version",
        "template",
        "category_order",
    ]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin[Experiment]):
    form = ExperimentForm
    inlines = [VariantInline]
    list_display = [
        "name",
        "key",
        "placement",
        "status",
        "traffic_share",
        "primary_metric",
        "bucket_version",
        "starts_at",
        "ends_at",
        "results_link",
    ]
    list_filter = ["status", "placement"]
    search_fields = ["key", "name", "hypothesis"]
    readonly_fields = ["status", "bucket_version", "created_at", "updated_at"]
    actions = ["start", "pause", "stop"]
    fieldsets = [
        (None, {"fields": ["key", "name", "hypothesis", "placement", "status"]}),
        ("Split", {"fields": ["segment", "traffic_share", "seed", "bucket_version"]}),
        (
            "Analysis",
            {
                "fields": [
                    "primary_metric",
                    "guardrail_metrics",
                    "correction",
                    "sequential",
                    "minimum_detectable_effect",
                ]
            },
        ),
        ("When", {"fields": ["starts_at", "ends_at", "created_at", "updated_at"]}),
    ]

    change_form_template = "admin/experiments/experiment/change_form.html"

    @admin.display(description="Results")
    def results_link(self, obj: Experiment) -> str:
        url = reverse("admin:experiments_experiment_results", args=[obj.pk])
        return format_html('<a href="{}">Results</a>', url)

    def get_urls(self) -> list[URLPattern]:
        results = path(
            "<int:object_id>/results/",
            self.admin_site.admin_view(self.results_view),
            name="experiments_experiment_results",
        )
        return [results, *super().get_urls()]

    def results_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The statistics page (or its CSV with `format=csv`); staff with view permission."""
        experiment = Experiment.objects.filter(pk=object_id).first()
        if experiment is None:
            raise Http404(f"No experiment #{object_id}.")
        if not self.has_view_permission(request, experiment):
            raise PermissionDenied
        context = results_page_context(request, experiment)
        if request.GET.get("format") == "csv":
            return results_csv_response(experiment, context["results"])
        context |= {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Results: {experiment.name}",
        }
        return render(request, "admin/experiments/results.html", context)

    def get_readonly_fields(self, request: HttpRequest, obj: Experiment | None = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != ExperimentStatus.DRAFT:
            fields += LOCKED_AFTER_DRAFT
        return fields

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if not (change and isinstance(formset, VariantFormSet) and formset.weights_changed()):
            return
        if experiment_bucket_version_bump(experiment=form.instance):
            self.message_user(request, BUMP_WARNING, messages.WARNING)

    @admin.action(description="Start (or resume) the selected experiments")
    def start(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._move(request, queryset, ExperimentStatus.RUNNING)

    @admin.action(description="Pause the selected experiments")
    def pause(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._move(request, queryset, ExperimentStatus.PAUSED)

    @admin.action(description="Stop the selected experiments (final)")
    def stop(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._move(request, queryset, ExperimentStatus.STOPPED)

    def _move(self, request: HttpRequest, queryset: QuerySet[Experiment], status: str) -> None:
        for experiment in queryset:
            try:
                experiment_set_status(experiment=experiment, status=status)
            except ValidationError as error:
                self.message_user(
                    request, f"{experiment.key}: {' '.join(error.messages)}", messages.ERROR
                )
            else:
                self.message_user(request, f"{experiment.key} is now {status}.")


@admin.register(Exposure)
class ExposureAdmin(admin.ModelAdmin[Exposure]):
    """Who saw which variant first, and when (written by the site, never by hand)."""

    list_display = [
        "person",
        "experiment",
        "variant",
        "first_exposed_at",
        "bucket_version",
        "conflict",
        "conflict_variant",
    ]
    list_filter = ["experiment", "variant", "conflict"]
    list_select_related = ["experiment", "variant", "conflict_variant"]
    search_fields = ["person"]
    date_hierarchy = "first_exposed_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
