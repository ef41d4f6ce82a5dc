"""Experiment admin: clear errors for bad variants or schedules, status actions, warnings."""

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.factories import ExposureFactory, experiment_with_variants
from webapp.experiments.admin import BUMP_WARNING
from webapp.experiments.models import Experiment, ExperimentStatus
from webapp.experiments.selectors import experiments_cache_clear

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:experiments_experiment_add")
Variants = list[tuple[str, int, bool]]


@pytest.fixture(autouse=True)
def _clear_cache(db: Any) -> None:
    """Overrides the folder's no-op: these tests use the database."""
    cache.clear()
    experiments_cache_clear()


def form_data(variants: Variants, experiment: Experiment | None = None, /, **fields: str) -> dict:
    """The add/change form as the browser posts it, with one inline row per variant."""
    existing = list(experiment.variants.order_by("position")) if experiment else []
    data = {
        "key": "home-ranker",
        "name": "Home ranker",
        "hypothesis": "The new model finds better picks.",
        "placement": "home_top_picks",
        "traffic_share": "1",
        "seed": "",
        "primary_metric": "ctr",
        "guardrail_metrics": ["revenue_per_visitor"],
        "correction": "holm",
        "minimum_detectable_effect": "0.05",
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
        "variants-TOTAL_FORMS": str(len(variants)),
        "variants-INITIAL_FORMS": str(len(existing)),
        "variants-MIN_NUM_FORMS": "2",
        "variants-MAX_NUM_FORMS": "1000",
    }
    for index, (key, weight, control) in enumerate(variants):
        row = {
            "key": key,
            "name": key.title(),
            "weight": str(weight),
            "position": str(index),
            "strategy": "trending" if index else "model",
            "model_version": "",
            "template": "",
        }
        if control:
            row["is_control"] = "on"
        if index < len(existing):
            row |= {"id": str(existing[index].pk), "experiment": str(experiment.pk)}  # type: ignore[union-attr]
        data |= {f"variants-{index}-{name}": value for name, value in row.items()}
    return data | fields


EMPTY_CONFIG = {"model_version": None, "template": "", "category_order": ""}


def errors_of(response: Any) -> str:
    assert response.status_code == 200, "the form should have been shown again"
    return response.content.decode()


def test_valid_experiment_is_created(admin_client: Client) -> None:
    response = admin_client.post(
        ADD_URL, form_data([("control", 50, True), ("new-model", 50, False)])
    )

    assert response.status_code == 302
    experiment = Experiment.objects.get()
    assert experiment.seed == "home-ranker"  # the key, by default
    assert experiment.status == ExperimentStatus.DRAFT
    assert experiment.guardrail_metrics == ["revenue_per_visitor"]
    assert [(v.key, v.weight, v.is_control, v.config) for v in experiment.variants.all()] == [
        ("control", 50, True, {**EMPTY_CONFIG, "strategy": "model"}),
        ("new-model", 50, False, {**EMPTY_CONFIG, "strategy": "trending"}),
    ]


@pytest.mark.parametrize(
    ("variants", "fields", "message"),
    [
        (
            [("control", 50, True), ("b", 40, False)],
            {},
            "Variant weights must add up to 100 (they add up to 90).",
        ),
        (
            [("control", 50, True), ("b", 50, True)],
            {},
            "Mark exactly one variant as the control (2 are marked).",
        ),
        (
            [("control", 50, False), ("b", 50, False)],
            {},
            "Mark exactly one variant as the control (0 are marked).",
        ),
        (
            [("control", 50, True), ("b", 50, False)],
            {
                "starts_at_0": "2025-03-02",
                "starts_at_1": "00:00:00",
                "ends_at_0": "2025-03-01",
                "ends_at_1": "00:00:00",
            },
            "The end must be after the start.",
        ),
        (
            [("control", 50, True), ("b", 50, False)],
            {"traffic_share": "0"},
            "Traffic share must be above 0 and at most 1",
        ),
        (
            [("control", 50, True), ("b", 50, False)],
            {"traffic_share": "1.5"},
            "Traffic share must be above 0 and at most 1",
        ),
    ],
)
def test_bad_experiment_shows_a_clear_error(
    admin_client: Client, variants: Variants, fields: dict[str, str], message: str
) -> None:
    response = admin_client.post(ADD_URL, form_data(variants, **fields))

    assert message in errors_of(response)
    assert not Experiment.objects.exists()


def test_changing_weights_of_a_running_experiment_warns_and_bumps(admin_client: Client) -> None:
    experiment = experiment_with_variants(key="home-ranker")
    ExposureFactory.create(variant=experiment.variants.first())
    url = reverse("admin:experiments_experiment_change", args=[experiment.pk])

    response = admin_client.post(
        url, form_data([("control", 20, True), ("v1", 80, False)], experiment), follow=True
    )

    assert BUMP_WARNING in [str(m) for m in get_messages(response.wsgi_request)]
    experiment.refresh_from_db()
    assert experiment.bucket_version == 2
    assert list(experiment.variants.values_list("weight", flat=True)) == [20, 80]


def test_saving_without_weight_changes_keeps_the_bucket(admin_client: Client) -> None:
    experiment = experiment_with_variants(key="home-ranker")
    ExposureFactory.create(variant=experiment.variants.first())
    url = reverse("admin:experiments_experiment_change", args=[experiment.pk])

    response = admin_client.post(
        url, form_data([("control", 50, True), ("v1", 50, False)], experiment, name="Renamed")
    )

    assert response.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.name, experiment.bucket_version) == ("Renamed", 1)


def test_split_fields_are_locked_once_started(admin_client: Client) -> None:
    experiment = experiment_with_variants()
    url = reverse("admin:experiments_experiment_change", args=[experiment.pk])

    page = admin_client.get(url).content.decode()

    assert 'name="seed"' not in page and 'name="key"' not in page
    assert 'name="traffic_share"' in page


@pytest.mark.parametrize(
    ("action", "start", "end"),
    [
        ("start", ExperimentStatus.DRAFT, ExperimentStatus.RUNNING),
        ("pause", ExperimentStatus.RUNNING, ExperimentStatus.PAUSED),
        ("stop", ExperimentStatus.PAUSED, ExperimentStatus.STOPPED),
        ("start", ExperimentStatus.STOPPED, ExperimentStatus.STOPPED),  # refused: final
    ],
)
def test_status_actions(admin_client: Client, action: str, start: str, end: str) -> None:
    experiment = experiment_with_variants(status=start)

    admin_client.post(
        reverse("admin:experiments_experiment_changelist"),
        {"action": action, "_selected_action": [experiment.pk]},
    )

    experiment.refresh_from_db()
    assert experiment.status == end


def test_exposures_are_read_only(admin_client: Client) -> None:
    exposure = ExposureFactory.create(conflict=False)
    changelist = reverse("admin:experiments_exposure_changelist")

    assert admin_client.get(changelist, {"conflict__exact": "0"}).status_code == 200
    assert admin_client.get(reverse("admin:experiments_exposure_add")).status_code == 403
    change = admin_client.get(reverse("admin:experiments_exposure_change", args=[exposure.pk]))
    assert change.status_code == 200 and exposure.person in change.content.decode()
    assert 'name="person"' not in change.content.decode()
