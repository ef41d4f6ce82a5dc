"""Admin screens of the model registry: versions with their quality chart, training runs."""

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from ml.charts import LineChart, PointInput, SeriesInput, line_chart
from ml.models import Audience, ModelRole, ModelVersion, ModelVersionStatus, TrainingRun
from ml.selectors import model_versions_history, training_run_in_progress
from ml.services.registry import RegistryError, model_version_promote, model_version_retire
from ml.services.training_runs import TrainingError, training_run_queue


def pretty_json(value: Any) -> str:
    return format_html(
        '<pre style="margin:0">{}</pre>', json.dumps(value, indent=2, sort_keys=True)
    )


def ndcg_history_chart() -> LineChart | None:
    """Validation NDCG@10 of every version over time, one line per role."""
    series = []
    for role in ModelRole:
        points = [
            PointInput(
                at=version.trained_at,
                value=score,
                title=f"#{version.pk} {version.kind}: {score:.4f} ({version.get_status_display()})",
                marked=version.status == ModelVersionStatus.ACTIVE,
            )
            for version in model_versions_history(role=role)
            if (score := version.metric("valid")) is not None
        ]
        series.append(SeriesInput(label=str(role.label), points=points))
    return line_chart(series, x_label="Trained at (UTC)", y_label="Validation NDCG@10")


def decision_row(entry: dict[str, Any]) -> dict[str, Any]:
    """A run-log entry with template-friendly keys ("@" cannot appear in a template lookup)."""
    role = entry.get("role", "")
    return {
        **entry,
        "role_label": ModelRole(role).label if role in ModelRole.values else role,
        "candidate_score": _score_text(entry.get("candidate_valid_ndcg@10")),
        "active_score": _score_text(entry.get("active_valid_ndcg@10")),
    }


def _score_text(score: float | None) -> str:
    return "" if score is None else f"{score:.4f}"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin[ModelVersion]):
    list_display = [
        "id",
        "role",
        "kind",
        "status",
        "valid_ndcg",
        "test_ndcg",
        "trained_at",
        "duration",
        "training_run",
    ]
    list_display_links = ["id", "kind"]
    list_filter = ["role", "status", "kind"]
    list_select_related = ["training_run"]
    fields = (
        "role",
        "kind",
        "status",
        "valid_ndcg",
        "test_ndcg",
        "trained_at",
        "duration",
        "promoted_at",
        "retired_at",
        "training_run",
        "artifact_path",
        "hyperparameters_json",
        "dataset_json",
        "metrics_json",
    )
    readonly_fields = fields
    actions = ["promote", "retire"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from training runs only

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # history and the chart keep every version

    def has_manage_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ml.change_modelversion")

    @admin.display(description="Validation NDCG@10", empty_value="-")
    def valid_ndcg(self, version: ModelVersion) -> str | None:
        score = version.metric("valid")
        return None if score is None else f"{score:.4f}"

    @admin.display(description="Test NDCG@10", empty_value="-")
    def test_ndcg(self, version: ModelVersion) -> str | None:
        score = version.metric("test")
        return None if score is None else f"{score:.4f}"

    @admin.display(description="Training time", ordering="duration_seconds")
    def duration(self, version: ModelVersion) -> str:
        return f"{version.duration_seconds:.1f} s"

    @admin.display(description="Hyper-parameters")
    def hyperparameters_json(self, version: ModelVersion) -> str:
        return pretty_json(version.hyperparameters)

    @admin.display(description="Training data")
    def dataset_json(self, version: ModelVersion) -> str:
        return pretty_json(version.dataset)

    @admin.display(description="Metrics (validation, test)")
    def metrics_json(self, version: ModelVersion) -> str:
        return pretty_json(version.metrics)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"ndcg_chart": ndcg_history_chart(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    @admin.action(
        description="Make the selected version the one in use (active) for its role",
        permissions=["manage"],
    )
    def promote(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        versions = list(queryset)
        roles = [version.role for version in versions]
        if len(set(roles)) != len(roles):
            self.message_user(request, "Select at most one version per role.", messages.ERROR)
            return
        for version in versions:
            try:
                previous = model_version_promote(version=version)
            except RegistryError as error:
                self.message_user(request, f"#{version.pk} not promoted: {error}", messages.ERROR)
                continue
            replaced = f" It replaces #{previous.pk}, now retired." if previous else ""
            self.message_user(
                request,
                f"#{version.pk} ({version.kind}) is now in use for "
                f"{version.get_role_display()}.{replaced}",
                messages.SUCCESS,
            )

    @admin.action(
        description="Retire the selected versions (stop using them)", permissions=["manage"]
    )
    def retire(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for version in queryset:
            was_active = version.status == ModelVersionStatus.ACTIVE
            model_version_retire(version=version)
            note = (
                f" {version.get_role_display()} has no model in use until you promote another "
                "version or the next training promotes one."
                if was_active
                else ""
            )
            level = messages.WARNING if was_active else messages.SUCCESS
            self.message_user(request, f"#{version.pk} ({version.kind}) retired.{note}", level)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin[TrainingRun]):
    list_display = [
        "id",
        "status",
        "progress_bar",
        "stage",
        "trigger",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    fields = (
        "status",
        "trigger",
        "progress",
        "stage",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "celery_task_id",
        "plan_json",
        "dataset_json",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are started with the "Start training now" button

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_start_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("ml.add_trainingrun")

    @admin.display(description="Progress")
    def progress_bar(self, run: TrainingRun) -> str:
        return format_html(
            '<progress value="{}" max="100"></progress> {}%', run.progress, run.progress
        )

    @admin.display(description="Models planned (settings tried)")
    def plan_json(self, run: TrainingRun) -> str:
        return pretty_json(run.plan)

    @admin.display(description="Training data")
    def dataset_json(self, run: TrainingRun) -> str:
        return pretty_json(run.dataset)

    def get_urls(self) -> list[URLPattern]:
        urls: list[URLPattern] = [
            path(
                "start/", self.admin_site.admin_view(self.start_view), name="ml_trainingrun_start"
            ),
            path(
                "<int:run_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="ml_trainingrun_progress",
            ),
        ]
        return urls + super().get_urls()

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"can_start": self.has_start_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        run = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if run is not None:
            context |= {
                "run": run,
                "progress_url": reverse("admin:ml_trainingrun_progress", args=[run.pk]),
                "decisions": [decision_row(entry) for entry in run.log],
            }
        return super().change_view(request, object_id, form_url, extra_context=context)

    def start_view(self, request: HttpRequest) -> HttpResponse:
        """Queue a training run (POST from the changelist's button) and show it."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_start_permission(request):
            raise PermissionDenied
        busy = training_run_in_progress()
        if busy is not None:
            self.message_user(
                request,
                f"Training run #{busy.pk} is already {busy.status}; it is shown below.",
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:ml_trainingrun_change", args=[busy.pk]))
        try:
            run = training_run_queue(trigger=f"admin: {request.user.get_username()}")
        except TrainingError as error:
            self.message_user(request, f"Training not started: {error}", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:ml_trainingrun_changelist"))
        self.message_user(
            request,
            f"Training run #{run.pk} is queued. This page follows its progress.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:ml_trainingrun_change", args=[run.pk]))

    def progress_view(self, request: HttpRequest, run_id: int) -> HttpResponse:
        """The run's progress as JSON, polled by its detail page."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(TrainingRun, pk=run_id)
        return JsonResponse(
            {
                "status": run.status,
                "status_label": run.get_status_display(),
                "progress": run.progress,
                "stage": run.stage,
                "finished": run.is_finished,
                "error": run.error,
            }
        )


@admin.register(Audience)
class AudienceAdmin(admin.ModelAdmin[Audience]):
    """Learned audiences, for segments to target (Segments: condition "learned audience")."""

    list_display = ["code", "version", "size", "description", "created_at"]
    list_filter = ["version"]
    search_fields = ["code"]
    readonly_fields = ["code", "version", "size", "top_categories", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Audience | None = None) -> bool:
        return False
