"""Admin screens of the model registry, as a staff user sees them (CSRF checks on)."""

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from ml.charts import PointInput, SeriesInput, line_chart, nice_ceiling
from ml.models import ModelVersion, ModelVersionStatus, TrainingRun, TrainingRunStatus
from ml.selectors import model_version_active
from ml.services.registry import model_version_create, model_version_promote
from ml.tasks import train_models
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def artifact_dir(settings: Any, tmp_path: Path) -> Path:
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    return settings.ML_ARTIFACT_DIR


@pytest.fixture
def staff_client() -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def queued_tasks(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Tasks sent to the broker (recorded instead of sent)."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(train_models, "apply_async", lambda **kwargs: sent.append(kwargs))
    return sent


def make_versions(artifact_dir: Path) -> list[ModelVersion]:
    versions = []
    for days_ago, (role, kind, score) in zip(
        (20, 10, 1),
        [("home", "pop", 0.05), ("home", "ease", 0.21), ("similar", "itemknn", 0.15)],
        strict=True,
    ):
        (artifact_dir / f"{role}-{kind}").mkdir(parents=True)
        versions.append(
            model_version_create(
                kind=kind,
                role=role,
                hyperparameters={},
                dataset={"users": 10},
                metrics={"valid": {"ndcg@10": score}, "test": {"ndcg@10": score - 0.01}},
                artifact_path=f"{role}-{kind}",
                trained_at=timezone.now() - timedelta(days=days_ago),
                duration_seconds=2.5,
            )
        )
    return versions


def csrf_token(client: Client, url: str) -> str:
    client.get(url)
    return client.cookies["csrftoken"].value


def test_version_list_shows_scores_and_an_svg_chart_with_axes_and_legend(
    staff_client: Client, artifact_dir: Path
) -> None:
    _, ease, _ = make_versions(artifact_dir)
    model_version_promote(version=ease)

    response = staff_client.get(reverse("admin:ml_modelversion_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    svg = re.search(r"<figure class=\"chart ml-chart\">.*?</figure>", html, re.S)
    assert svg is not None
    assert "Validation NDCG@10" in svg.group() and "Trained at (UTC)" in svg.group()
    assert "Home page top picks" in svg.group() and "Similar items" in svg.group()
    assert svg.group().count("<polyline") == 2
    assert f"#{ease.pk} ease: 0.2100 (Active (serving))" in svg.group()
    assert "0.2100" in html and "0.2000" in html  # validation and test columns
    assert "Make the selected version the one in use" in html


def test_version_list_without_versions_explains_how_to_start(staff_client: Client) -> None:
    response = staff_client.get(reverse("admin:ml_modelversion_changelist"))

    assert response.status_code == 200
    assert b"No model has been trained yet" in response.content
    assert b"ml-chart" not in response.content


def test_version_detail_is_read_only(staff_client: Client, artifact_dir: Path) -> None:
    version = make_versions(artifact_dir)[0]

    response = staff_client.get(reverse("admin:ml_modelversion_change", args=[version.pk]))

    assert response.status_code == 200
    assert b"Hyper-parameters" in response.content
    assert b'name="_save"' not in response.content


def test_promote_and_retire_actions(staff_client: Client, artifact_dir: Path) -> None:
    pop, ease, _ = make_versions(artifact_dir)
    model_version_promote(version=pop)
    url = reverse("admin:ml_modelversion_changelist")
    token = csrf_token(staff_client, url)

    response = staff_client.post(
        url,
        {"action": "promote", "_selected_action": [ease.pk], "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert f"#{ease.pk} (ease) is now in use for Home page top picks" in response.content.decode()
    assert model_version_active(role="home") == ease
    pop.refresh_from_db()
    assert pop.status == ModelVersionStatus.RETIRED

    response = staff_client.post(
        url,
        {"action": "retire", "_selected_action": [ease.pk], "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert "has no model in use" in response.content.decode()
    assert model_version_active(role="home") is None


def test_promote_action_refuses_two_versions_of_one_role(
    staff_client: Client, artifact_dir: Path
) -> None:
    pop, ease, _ = make_versions(artifact_dir)
    url = reverse("admin:ml_modelversion_changelist")
    token = csrf_token(staff_client, url)

    response = staff_client.post(
        url,
        {"action": "promote", "_selected_action": [pop.pk, ease.pk], "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert b"Select at most one version per role" in response.content
    assert model_version_active(role="home") is None


def test_start_button_queues_a_run_and_shows_its_page(
    staff_client: Client,
    queued_tasks: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    url = reverse("admin:ml_trainingrun_changelist")
    response = staff_client.get(url)
    assert b"Start training now" in response.content
    token = staff_client.cookies["csrftoken"].value

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:ml_trainingrun_start"), {"csrfmiddlewaretoken": token}
        )

    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:ml_trainingrun_change", args=[run.pk])
    assert run.status == TrainingRunStatus.QUEUED and run.trigger.startswith("admin: ")
    assert queued_tasks == [{"args": (run.pk,), "task_id": run.celery_task_id}]


def test_start_button_needs_the_csrf_token(staff_client: Client) -> None:
    response = staff_client.post(reverse("admin:ml_trainingrun_start"))

    assert response.status_code == 403
    assert not TrainingRun.objects.exists()


def test_start_is_post_only(staff_client: Client) -> None:
    assert staff_client.get(reverse("admin:ml_trainingrun_start")).status_code == 405


def test_start_while_a_run_is_queued_shows_that_run(
    staff_client: Client, queued_tasks: list[dict[str, Any]]
) -> None:
    busy = TrainingRun.objects.create(status=TrainingRunStatus.QUEUED)
    token = csrf_token(staff_client, reverse("admin:ml_trainingrun_changelist"))

    response = staff_client.post(
        reverse("admin:ml_trainingrun_start"), {"csrfmiddlewaretoken": token}
    )

    assert response["Location"] == reverse("admin:ml_trainingrun_change", args=[busy.pk])
    assert TrainingRun.objects.count() == 1 and queued_tasks == []


def test_staff_without_permission_cannot_start(client: Client) -> None:
    user = UserFactory.create(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_trainingrun"))
    client.force_login(user)

    response = client.get(reverse("admin:ml_trainingrun_changelist"))
    assert response.status_code == 200 and b"Start training now" not in response.content
    assert client.post(reverse("admin:ml_trainingrun_start")).status_code == 403


def test_running_run_page_has_a_progress_bar_that_polls(staff_client: Client) -> None:
    run = TrainingRun.objects.create(
        status=TrainingRunStatus.RUNNING, progress=40, stage="Home page top picks: training ease"
    )

    response = staff_client.get(reverse("admin:ml_trainingrun_change", args=[run.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="training-progress-bar" value="40" max="100"' in html
    assert reverse("admin:ml_trainingrun_progress", args=[run.pk]) in html
    assert "training ease" in html and "fetch(url" in html


def test_progress_endpoint_returns_json_for_staff_only(
    staff_client: Client, client: Client
) -> None:
    run = TrainingRun.objects.create(status=TrainingRunStatus.RUNNING, progress=55, stage="saving")
    url = reverse("admin:ml_trainingrun_progress", args=[run.pk])

    data = staff_client.get(url).json()

    assert data["progress"] == 55 and data["stage"] == "saving" and data["finished"] is False
    assert client.get(url).status_code == 302  # to the admin login


def test_finished_run_page_shows_the_decisions(staff_client: Client, artifact_dir: Path) -> None:
    _, ease, _ = make_versions(artifact_dir)
    run = TrainingRun.objects.create(
        status=TrainingRunStatus.SUCCEEDED,
        progress=100,
        log=[
            {
                "role": "home",
                "candidate_kind": "ease",
                "candidate_version": ease.pk,
                "candidate_valid_ndcg@10": 0.21,
                "active_version": None,
                "active_kind": None,
                "active_valid_ndcg@10": None,
                "decision": "promoted",
                "reason": "no active model for this role yet",
                "candidates": [],
            }
        ],
    )

    response = staff_client.get(reverse("admin:ml_trainingrun_change", args=[run.pk]))

    html = response.content.decode()
    assert "Decisions" in html and "0.2100" in html and "no active model for this role yet" in html
    assert "fetch(url" not in html


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0.0, 1.0), (0.042, 0.05), (0.21, 0.25), (0.3, 0.5), (1.0, 1.0)]
)
def test_chart_axis_ends_at_a_round_number(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_chart_ticks_are_round_and_points_inside_the_plot() -> None:
    now = timezone.now()
    chart = line_chart(
        [
            SeriesInput(
                "A", [PointInput(now - timedelta(days=3), 0.22, "a"), PointInput(now, 0.1, "b")]
            )
        ],
        x_label="x",
        y_label="y",
    )

    assert chart is not None
    assert [tick.label for tick in chart.y_ticks] == ["0", "0.1", "0.2", "0.3"]
    [series] = chart.series
    assert all(
        chart.left <= p.x <= chart.right and chart.top <= p.y <= chart.bottom for p in series.points
    )
    assert line_chart([SeriesInput("empty", [])], x_label="x", y_label="y") is None
