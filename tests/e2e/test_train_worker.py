"""A real Celery worker on the "train" queue retrains, promotes, then refuses a worse model."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml.models import ModelVersionStatus, TrainingRun, TrainingRunStatus
from ml.selectors import model_version_active
from ml.services.artifacts import ITEM_IDS_FILE, USER_IDS_FILE
from ml.services.training_runs import training_run_queue
from tests.ml.test_registry import EASE_PLAN, POP_PLAN, create_clustered_interactions
from tests.workers import celery_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
RUN_TIMEOUT_SECONDS = 120


@pytest.fixture
def artifact_dir(settings: Any, tmp_path: Path) -> Path:
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    return settings.ML_ARTIFACT_DIR


@pytest.fixture
def train_worker(artifact_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """A worker consuming only the train queue; yields its log file."""
    with celery_worker("train", tmp_path / "worker.log", ML_ARTIFACT_DIR=str(artifact_dir)) as log:
        yield log


def _wait_until_finished(run: TrainingRun, log: Path) -> TrainingRun:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            return run
        time.sleep(1)
    raise AssertionError(f"run #{run.pk} still {run.status}; worker log:\n{log.read_text()}")


def test_worker_trains_promotes_then_refuses_a_worse_model(
    train_worker: Path, artifact_dir: Path
) -> None:
    # Given interactions in the database and no model in use
    create_clustered_interactions()

    # When a training of EASE is queued (as the admin's button does)
    first = _wait_until_finished(training_run_queue(trigger="e2e", plan=EASE_PLAN), train_worker)

    # Then the worker ran it to the end and EASE is in use, saved with its vocabularies
    assert first.status == TrainingRunStatus.SUCCEEDED, first.error
    ease = model_version_active(role="home")
    assert ease is not None and ease.kind == "ease" and ease.training_run_id == first.pk
    folder = artifact_dir / ease.artifact_path
    assert (folder / "arrays.npz").exists() and (folder / ITEM_IDS_FILE).exists()
    assert (folder / USER_IDS_FILE).exists()

    # When a worse plan (popularity only) is trained next
    second = _wait_until_finished(training_run_queue(trigger="e2e", plan=POP_PLAN), train_worker)

    # Then it is recorded as a candidate, refused, and EASE stays in use
    assert second.status == TrainingRunStatus.SUCCEEDED, second.error
    [entry] = second.log
    assert entry["decision"] == "refused"
    assert model_version_active(role="home") == ease
    assert second.versions.get().status == ModelVersionStatus.CANDIDATE
