"""Model registry and retraining against the real database and real (small) models."""

import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from ml.algorithms.ease import EASE
from ml.algorithms.registry import load
from ml.models import ModelVersion, ModelVersionStatus, TrainingRun, TrainingRunStatus
from ml.selectors import (
    model_version_active,
    model_version_artifact,
    model_versions_history,
    training_run_latest,
)
from ml.services import training as training_service
from ml.services.artifacts import ITEM_IDS_FILE, USER_IDS_FILE
from ml.services.registry import (
    RegistryError,
    model_version_create,
    model_version_promote,
    model_version_retire,
)
from ml.services.training import training_run_execute
from ml.services.training_runs import TrainingError, training_run_create
from ml.tasks import train_models
from webapp.celery import app
from webapp.models import EventType, Interaction, Item, Visitor

pytestmark = pytest.mark.django_db

EASE_PLAN = {"home": {"ease": {"reg": [10.0, 50.0]}}}
POP_PLAN = {"home": {"pop": {"half_life_days": [None]}}}


def create_clustered_interactions(
    *, clusters: int = 4, items_per_cluster: int = 8, visitors_per_cluster: int = 12
) -> None:
    """Visitors who each view 6 items of their own cluster, one hour apart.

    Item-to-item models (EASE, ItemKNN) find the cluster; popularity cannot.
    """
    rng = np.random.default_rng(5)
    items = Item.objects.bulk_create(
        Item(external_id=f"sku-{c}-{i}", title=f"Item {c}-{i}")
        for c in range(clusters)
        for i in range(items_per_cluster)
    )
    start = timezone.now() - timedelta(days=30)
    events = []
    for cluster in range(clusters):
        members = items[cluster * items_per_cluster : (cluster + 1) * items_per_cluster]
        for _ in range(visitors_per_cluster):
            visitor = Visitor.objects.create()
            for hour, index in enumerate(rng.choice(items_per_cluster, size=6, replace=False)):
                events.append(
                    Interaction(
                        event_id=uuid.uuid4(),
                        visitor=visitor,
                        item=members[index],
                        event_type=EventType.VIEW,
                        timestamp=start + timedelta(hours=hour, minutes=int(rng.integers(60))),
                    )
                )
    Interaction.objects.bulk_create(events)


@pytest.fixture(autouse=True)
def artifact_dir(settings: Any, tmp_path: Path) -> Path:
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    return settings.ML_ARTIFACT_DIR


def make_version(artifact_dir: Path, *, role: str = "home", kind: str = "ease") -> ModelVersion:
    relative = f"{role}/{uuid.uuid4().hex}"
    (artifact_dir / relative).mkdir(parents=True)
    return model_version_create(
        kind=kind,
        role=role,
        hyperparameters={"reg": 10.0},
        dataset={},
        metrics={"valid": {"ndcg@10": 0.1}, "test": {"ndcg@10": 0.09}},
        artifact_path=relative,
        trained_at=timezone.now(),
        duration_seconds=1.0,
    )


def run_plan(plan: dict[str, Any]) -> TrainingRun:
    run = training_run_create(trigger="test", plan=plan)
    training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


# Registry services


def test_created_version_is_a_candidate_until_promoted(artifact_dir: Path) -> None:
    version = make_version(artifact_dir)

    assert version.status == ModelVersionStatus.CANDIDATE
    assert model_version_active(role="home") is None

    assert model_version_promote(version=version) is None
    assert model_version_active(role="home") == version


@pytest.mark.parametrize(("kind", "role"), [("nope", "home"), ("ease", "nowhere")])
def test_create_refuses_unknown_kind_or_role(kind: str, role: str) -> None:
    with pytest.raises(RegistryError):
        model_version_create(
            kind=kind,
            role=role,
            hyperparameters={},
            dataset={},
            metrics={},
            artifact_path="x",
            trained_at=timezone.now(),
            duration_seconds=0.0,
        )


def test_promote_retires_the_previous_active_of_the_same_role_only(artifact_dir: Path) -> None:
    first, second = make_version(artifact_dir), make_version(artifact_dir)
    similar = make_version(artifact_dir, role="similar", kind="itemknn")
    model_version_promote(version=first)
    model_version_promote(version=similar)

    retired = model_version_promote(version=second)

    assert retired == first
    first.refresh_from_db()
    similar.refresh_from_db()
    assert first.status == ModelVersionStatus.RETIRED and first.retired_at is not None
    assert model_version_active(role="home") == second
    assert similar.status == ModelVersionStatus.ACTIVE
    assert list(model_versions_history(role="home")) == [first, second]


def test_database_allows_one_active_version_per_role(artifact_dir: Path) -> None:
    first, second = make_version(artifact_dir), make_version(artifact_dir)
    ModelVersion.objects.filter(pk=first.pk).update(status=ModelVersionStatus.ACTIVE)

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=second.pk).update(status=ModelVersionStatus.ACTIVE)


def test_promote_refuses_a_version_without_saved_model(artifact_dir: Path) -> None:
    version = make_version(artifact_dir)
    (artifact_dir / version.artifact_path).rmdir()

    with pytest.raises(RegistryError, match="no saved model"):
        model_version_promote(version=version)


def test_promote_replacing_refuses_when_the_active_changed_meanwhile(artifact_dir: Path) -> None:
    compared_against, promoted_meanwhile = make_version(artifact_dir), make_version(artifact_dir)
    candidate = make_version(artifact_dir)
    model_version_promote(version=compared_against)
    model_version_promote(version=promoted_meanwhile)

    with pytest.raises(RegistryError, match="changed while training"):
        model_version_promote(version=candidate, replacing=compared_against)

    assert model_version_active(role="home") == promoted_meanwhile


def test_retire_leaves_the_role_without_active_version(artifact_dir: Path) -> None:
    version = make_version(artifact_dir)
    model_version_promote(version=version)

    model_version_retire(version=version)

    assert version.status == ModelVersionStatus.RETIRED
    assert model_version_active(role="home") is None
    # A retired version can be promoted again (roll back).
    model_version_promote(version=version)
    assert model_version_active(role="home") == version


@pytest.mark.django_db(transaction=True)
def test_concurrent_promotions_leave_exactly_one_active(artifact_dir: Path) -> None:
    versions = [make_version(artifact_dir) for _ in range(4)]
    barrier = threading.Barrier(len(versions))
    errors: list[BaseException] = []

    def promote(version: ModelVersion) -> None:
        try:
            barrier.wait(timeout=10)
            model_version_promote(version=version)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=promote, args=(version,)) for version in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    statuses = list(ModelVersion.objects.values_list("status", flat=True))
    assert statuses.count(ModelVersionStatus.ACTIVE) == 1
    assert statuses.count(ModelVersionStatus.RETIRED) == len(versions) - 1


# Retraining


def test_first_training_promotes_and_saves_a_loadable_model_with_vocabularies(
    artifact_dir: Path,
) -> None:
    create_clustered_interactions()

    run = run_plan({**EASE_PLAN, "similar": {"itemknn": {"k": [10], "shrink": [0.0]}}})

    assert run.status == TrainingRunStatus.SUCCEEDED, run.error
    assert run.progress == 100 and run.finished_at is not None
    assert run.dataset["users"] == 48 and run.dataset["interactions"] == 48 * 6
    assert [entry["decision"] for entry in run.log] == ["promoted", "promoted"]
    home = model_version_active(role="home")
    assert home is not None and home.kind == "ease" and home.training_run == run
    assert home.hyperparameters["reg"] in (10.0, 50.0)
    assert home.metric("valid") is not None and home.metric("test") is not None
    folder = artifact_dir / home.artifact_path
    assert (folder / USER_IDS_FILE).exists() and (folder / ITEM_IDS_FILE).exists()
    assert isinstance(load(folder), EASE)
    loaded = model_version_artifact(version=home)
    assert loaded.model.n_items == len(loaded.item_ids) == 32
    assert loaded.model.n_users == len(loaded.user_ids) == 48
    assert set(loaded.item_ids.tolist()) == set(Item.objects.values_list("external_id", flat=True))
    assert not list((artifact_dir / ".incoming").iterdir())
    assert training_run_latest() == run


def test_the_default_plan_trains_every_role_from_the_database(settings: Any) -> None:
    """Context EASE and the hybrid read timestamps and catalog content from the log."""
    create_clustered_interactions()

    run = run_plan(settings.ML_TRAINING_PLAN_DEFAULT)

    assert run.status == TrainingRunStatus.SUCCEEDED, run.error
    assert {entry["role"] for entry in run.log} == set(settings.ML_TRAINING_PLAN_DEFAULT)
    decisions = {entry["role"]: entry["decision"] for entry in run.log}
    # 32 items cannot fill a 256-code codebook: the optional codes role is skipped, not fatal.
    assert decisions.pop("codes") == "skipped"
    assert set(decisions.values()) == {"promoted"}
    [codes] = [entry for entry in run.log if entry["role"] == "codes"]
    assert "fewer than the 256 codes" in codes["reason"]
    tried = {c["kind"] for entry in run.log for c in entry.get("candidates", [])}
    assert {"context_ease", "hybrid"} <= tried


def test_a_worse_candidate_is_recorded_but_refused(artifact_dir: Path) -> None:
    create_clustered_interactions()
    run_plan(EASE_PLAN)
    ease = model_version_active(role="home")
    assert ease is not None

    run = run_plan(POP_PLAN)

    assert run.status == TrainingRunStatus.SUCCEEDED, run.error
    assert model_version_active(role="home") == ease
    [entry] = run.log
    assert entry["decision"] == "refused" and entry["reason"].startswith("not better")
    assert entry["active_version"] == ease.pk
    assert entry["candidate_valid_ndcg@10"] < entry["active_valid_ndcg@10"]
    refused = ModelVersion.objects.get(pk=entry["candidate_version"])
    assert refused.kind == "pop" and refused.status == ModelVersionStatus.CANDIDATE
    assert (artifact_dir / refused.artifact_path).is_dir()


def test_the_same_setting_again_is_not_better_and_is_refused() -> None:
    create_clustered_interactions()
    run_plan({"home": {"ease": {"reg": [10.0]}}})

    run = run_plan({"home": {"ease": {"reg": [10.0]}}})

    # Refitted on identical data, the active scores exactly what the candidate scores.
    [entry] = run.log
    assert entry["candidate_valid_ndcg@10"] == pytest.approx(entry["active_valid_ndcg@10"])
    assert entry["decision"] == "refused"


def test_a_failing_training_leaves_the_active_version_and_marks_the_run_failed(
    artifact_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_clustered_interactions()
    run_plan(EASE_PLAN)
    active = model_version_active(role="home")

    def broken_fit(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(EASE, "_fit", broken_fit)
    run = training_run_create(trigger="test", plan=EASE_PLAN)
    with pytest.raises(RuntimeError):
        training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == TrainingRunStatus.FAILED and run.finished_at is not None
    assert "out of memory (simulated)" in run.error
    assert model_version_active(role="home") == active
    assert ModelVersion.objects.count() == 1


def test_a_failure_while_recording_promotes_nothing_and_deletes_the_new_folders(
    artifact_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_clustered_interactions()
    plan = {**EASE_PLAN, "similar": {"itemknn": {"k": [10], "shrink": [0.0]}}}
    real_create = training_service.model_version_create

    def create_then_fail(**kwargs: Any) -> ModelVersion:
        if kwargs["role"] == "similar":
            raise RuntimeError("database went away (simulated)")
        return real_create(**kwargs)

    monkeypatch.setattr(training_service, "model_version_create", create_then_fail)
    run = training_run_create(trigger="test", plan=plan)
    with pytest.raises(RuntimeError):
        training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == TrainingRunStatus.FAILED
    assert ModelVersion.objects.count() == 0  # home was not promoted alone
    assert not any(path.is_dir() for path in (artifact_dir / "home").glob("*"))


def test_too_little_data_fails_the_run_with_a_clear_error() -> None:
    create_clustered_interactions(visitors_per_cluster=2)
    run = training_run_create(trigger="test", plan=EASE_PLAN)

    with pytest.raises(TrainingError, match="not enough data"):
        training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == TrainingRunStatus.FAILED
    assert "8 visitors" in run.error and "20 needed" in run.error


def test_an_empty_interaction_log_fails_the_run_with_a_clear_error() -> None:
    run = training_run_create(trigger="test", plan=EASE_PLAN)

    with pytest.raises(TrainingError, match="no usable interactions"):
        training_run_execute(run_id=run.pk)


@pytest.mark.parametrize(
    "plan",
    [{}, {"nowhere": {"ease": {}}}, {"home": {"magic": {}}}, {"home": {}}, {"home": {"ease": 1}}],
)
def test_bad_plans_are_refused(plan: dict[str, Any]) -> None:
    with pytest.raises(TrainingError):
        training_run_create(trigger="test", plan=plan)


def test_a_run_that_died_while_running_is_failed_by_the_next_run(settings: Any) -> None:
    dead = TrainingRun.objects.create(
        status=TrainingRunStatus.RUNNING,
        started_at=timezone.now() - timedelta(seconds=settings.ML_TRAINING_TIME_LIMIT + 3600),
    )
    alive = TrainingRun.objects.create(
        status=TrainingRunStatus.RUNNING, started_at=timezone.now() - timedelta(minutes=5)
    )

    training_run_create(trigger="test", plan=EASE_PLAN)

    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == TrainingRunStatus.FAILED and "stopped without reporting" in dead.error
    assert alive.status == TrainingRunStatus.RUNNING


def test_a_run_does_not_start_while_another_one_runs() -> None:
    TrainingRun.objects.create(status=TrainingRunStatus.RUNNING, started_at=timezone.now())
    run = training_run_create(trigger="test", plan=EASE_PLAN)

    assert training_run_execute(run_id=run.pk) is None

    run.refresh_from_db()
    assert run.status == TrainingRunStatus.FAILED and "still running" in run.error


def test_the_task_does_not_run_a_finished_run_again() -> None:
    create_clustered_interactions()
    run = run_plan(EASE_PLAN)

    result = train_models.apply(args=(run.pk,)).get()

    assert result == "skipped"
    assert ModelVersion.objects.count() == 1
    assert train_models.apply(args=(10**9,)).get() == "skipped"


def test_the_task_without_a_run_id_creates_and_runs_one(settings: Any) -> None:
    settings.ML_TRAINING_PLAN = EASE_PLAN
    create_clustered_interactions()

    assert train_models.apply().get() == TrainingRunStatus.SUCCEEDED

    run = TrainingRun.objects.get()
    assert run.trigger == "nightly schedule" and run.plan == EASE_PLAN


def test_a_successful_training_queues_the_serving_precompute(
    settings: Any, monkeypatch: Any
) -> None:
    settings.ML_TRAINING_PLAN = EASE_PLAN
    settings.ML_AFTER_TRAINING_TASK = "recommender.tasks.precompute_recommendations"
    sent: list[str] = []
    monkeypatch.setattr(app, "send_task", lambda name, *args, **kwargs: sent.append(name))
    create_clustered_interactions()

    assert train_models.apply().get() == TrainingRunStatus.SUCCEEDED
    assert train_models.apply(args=(10**9,)).get() == "skipped"

    assert sent == ["recommender.tasks.precompute_recommendations"]


def test_setup_schedules_adds_the_nightly_training() -> None:
    call_command("setup_schedules")

    schedule = PeriodicTask.objects.get(task="ml.tasks.train_models")
    assert schedule.crontab is not None and schedule.crontab.hour == "3"
    assert app.amqp.router.route({}, train_models.name)["queue"].name == "train"
