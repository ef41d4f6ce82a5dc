"""Retraining: tune each role's candidate models, compare with the active one, promote.

Why the active version is re-fitted instead of trusting its stored score: its score was
measured on an older split (other users, other held-out interactions), and its saved
weights were fitted on data that may include this run's validation interactions. So the
active version's algorithm and hyper-parameters are fitted again on this run's train
part and scored on the same validation part as the candidates: like for like.

All or nothing: models are trained and their folders written first (each folder
appears by an atomic rename); the versions, promotions and the run's success are then
recorded in one transaction. A run that fails or is killed before that commit changes
nothing in the registry; the folders it wrote are deleted when it fails.
"""

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ml.algorithms.base import Recommender
from ml.algorithms.registry import create
from ml.data.dataset import DatasetError, InteractionData
from ml.data.splits import Split, random_split, temporal_split
from ml.evaluation.metrics import evaluate_full_ranking
from ml.evaluation.protocol import SELECTION_METRIC, TuningResult, tune_and_evaluate
from ml.models import ModelRole, ModelVersion, TrainingRun
from ml.selectors import interaction_data_from_database, model_version_active
from ml.services.artifacts import artifact_delete, artifact_write
from ml.services.audiences import audiences_learn, audiences_store
from ml.services.registry import RegistryError, model_version_create, model_version_promote
from ml.services.semantic_ids import item_semantic_ids_store
from ml.services.training_runs import (
    TrainingError,
    training_run_fail,
    training_run_progress,
    training_run_start,
    training_run_succeed,
)

logger = logging.getLogger(__name__)

LOADED_PROGRESS = 5
DONE_PROGRESS = 99


@dataclass
class RoleOutcome:
    """One role's best candidate, saved on disk, and the decision about it."""

    role: str
    kind: str
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    duration_seconds: float
    artifact_path: str
    candidates: list[dict[str, Any]]
    active: ModelVersion | None
    active_score: float | None
    promote: bool
    reason: str
    version_id: int | None = None

    def log_entry(self) -> dict[str, Any]:
        """The run-log line for this role."""
        return {
            "role": self.role,
            "candidate_kind": self.kind,
            "candidate_version": self.version_id,
            "candidate_valid_ndcg@10": self.metrics["valid"].get(SELECTION_METRIC),
            "active_version": self.active.pk if self.active else None,
            "active_kind": self.active.kind if self.active else None,
            "active_valid_ndcg@10": self.active_score,
            "decision": "promoted" if self.promote else "refused",
            "reason": self.reason,
            "candidates": self.candidates,
        }


@dataclass
class _Progress:
    """Turns finished steps into the run's percent and stage text."""

    run: TrainingRun
    total_steps: int
    done: int = field(default=0)

    def step(self, stage: str) -> None:
        span = DONE_PROGRESS - LOADED_PROGRESS
        percent = LOADED_PROGRESS + span * self.done // max(self.total_steps, 1)
        training_run_progress(run=self.run, progress=percent, stage=stage)
        self.done += 1


SEMANTIC_ID_KINDS = ("semantic_ids",)


def training_run_execute(*, run_id: int, celery_task_id: str = "") -> TrainingRun | None:
    """Run a queued training run to the end; None if it was not queued (already handled).

    On any error the run is marked failed, its saved folders deleted, the registry left
    untouched, and the error raised again.
    """
    run = training_run_start(run_id=run_id, celery_task_id=celery_task_id)
    if run is None:
        return None
    outcomes: list[RoleOutcome] = []
    skipped: list[dict[str, Any]] = []
    try:
        data = _train_roles(run, outcomes, skipped)
        training_run_progress(run=run, progress=DONE_PROGRESS, stage="recording the results")
        with transaction.atomic():
            _record(run, outcomes)
            log = [outcome.log_entry() for outcome in outcomes] + skipped
            training_run_succeed(run=run, log=log)
    except Exception as error:
        logger.exception("training: run %s failed", run.pk)
        for outcome in outcomes:
            outcome.version_id = None
            artifact_delete(
                root=Path(settings.ML_ARTIFACT_DIR), relative_path=outcome.artifact_path
            )
        log = [outcome.log_entry() | {"decision": "not recorded"} for outcome in outcomes]
        training_run_fail(run=run, error=f"{type(error).__name__}: {error}", log=log)
        raise
    _audiences_after(outcomes, data)
    return run


def _audiences_after(outcomes: list[RoleOutcome], data: InteractionData) -> None:
    """A newly promoted home model comes with the visitors' audiences (failures only logged)."""
    home = next(
        (o for o in outcomes if o.role == ModelRole.HOME and o.promote and o.version_id), None
    )
    if home is None or home.version_id is None:
        return
    try:
        version = ModelVersion.objects.get(pk=home.version_id)
        learned = audiences_learn(data=data, version=version)  # the data trained on
        audiences_store(learned=learned, version=version)
    except Exception:
        logger.exception("training: the audiences of version %s were not learned", home.version_id)


# Roles that add to serving without being needed by it: when their models cannot train
# on this data (e.g. fewer items than a codebook has codes) the role is skipped, logged
# with the reason, and the other roles' results still count.
OPTIONAL_ROLES = (ModelRole.CODES,)


def _train_roles(
    run: TrainingRun, outcomes: list[RoleOutcome], skipped: list[dict[str, Any]]
) -> InteractionData:
    """Train every role of the plan, appending each outcome as soon as it is saved (and
    each optional role that could not train to `skipped`); the dataset it read."""
    training_run_progress(run=run, progress=1, stage="loading interactions")
    data = _load_data()
    split = _split(data)
    run.dataset = dataset_snapshot(data, split)
    run.save(update_fields=["dataset", "updated_at"])
    plan: dict[str, dict[str, dict[str, list[Any]]]] = run.plan
    progress = _Progress(run, sum(len(models) + 2 for models in plan.values()))
    for role, models in plan.items():
        try:
            outcomes.append(_train_role(run, role, models, data, split, progress))
        except ValueError as error:
            if role not in OPTIONAL_ROLES:
                raise
            logger.warning("training: role %s skipped: %s", role, error)
            skipped.append({"role": role, "decision": "skipped", "reason": str(error)})
    return data


def _load_data() -> InteractionData:
    """The interaction log as a dataset, or a TrainingError saying why not."""
    try:
        return interaction_data_from_database()
    except DatasetError as error:
        raise TrainingError(f"no usable interactions to train on ({error})") from error


def _split(data: InteractionData) -> Split:
    """The configured split, refused when too few users have a validation interaction."""
    kind = settings.ML_TRAINING_SPLIT
    if kind == "temporal":
        split = temporal_split(data)
    elif kind == "random":
        split = random_split(data, seed=settings.ML_TRAINING_SEED)
    else:
        raise TrainingError(f"unknown split {kind!r} (ML_TRAINING_SPLIT: temporal or random)")
    valid_users = _users_with_rows(split.valid)
    needed = settings.ML_TRAINING_MIN_VALID_USERS
    if valid_users < needed or split.test.nnz == 0:
        raise TrainingError(
            f"not enough data to compare models: {valid_users} visitors have enough "
            f"interactions for validation, {needed} needed (each needs at least 3 items)"
        )
    return split


def dataset_snapshot(data: InteractionData, split: Split) -> dict[str, Any]:
    """What the models were trained on, for the registry."""
    return {
        "source": data.source,
        "users": data.n_users,
        "items": data.n_items,
        "interactions": data.n_interactions,
        "time_min": _iso(float(data.timestamps.min())),
        "time_max": _iso(float(data.timestamps.max())),
        "split": split.strategy,
        "seed": settings.ML_TRAINING_SEED,
        "train_interactions": int(split.train.nnz),
        "valid_users": _users_with_rows(split.valid),
        "test_users": _users_with_rows(split.test),
        "metrics_fit_on": "train part",
        "artifact_fit_on": "all interactions",
    }


def _train_role(
    run: TrainingRun,
    role: str,
    models: dict[str, dict[str, list[Any]]],
    data: InteractionData,
    split: Split,
    progress: _Progress,
) -> RoleOutcome:
    """Tune the role's models, re-score its active version, save the best candidate."""
    label = ModelRole(role).label
    best, duration, candidates = _tune_models(label, models, data, split, progress)
    progress.step(f"{label}: scoring the active model on the same data")
    active, active_score, problem = _score_active(role, data, split)
    promote, reason = _decide(
        float(best.valid_metrics[SELECTION_METRIC]), active, active_score, problem
    )
    progress.step(f"{label}: saving {best.model_name}")
    artifact_path = f"{role}/run-{run.pk}-{best.model_name}-{timezone.now():%Y%m%d%H%M%S}"
    _save_refit(best.model, data, artifact_path)
    return RoleOutcome(
        role=role,
        kind=best.model_name,
        hyperparameters=dict(best.model.hyperparameters),
        metrics=_metrics(best),
        duration_seconds=duration,
        artifact_path=artifact_path,
        candidates=candidates,
        active=active,
        active_score=active_score,
        promote=promote,
        reason=reason,
    )


def _tune_models(
    label: str,
    models: dict[str, dict[str, list[Any]]],
    data: InteractionData,
    split: Split,
    progress: _Progress,
) -> tuple[TuningResult, float, list[dict[str, Any]]]:
    """The best tuned model of the role (by validation NDCG@10), its time, every score."""
    best: tuple[TuningResult, float] | None = None
    candidates = []
    for index, (kind, grid) in enumerate(models.items(), start=1):
        progress.step(f"{label}: training {kind} ({index}/{len(models)})")
        started = time.perf_counter()
        result = tune_and_evaluate(kind, grid, split, settings.ML_TRAINING_SEED, data=data)
        seconds = time.perf_counter() - started
        score = _finite(result.valid_metrics[SELECTION_METRIC])
        candidates.append({"kind": kind, "params": dict(result.params), "valid_ndcg@10": score})
        if (
            best is None
            or result.valid_metrics[SELECTION_METRIC] > best[0].valid_metrics[SELECTION_METRIC]
        ):
            best = (result, seconds)
    assert best is not None  # the plan was validated: every role has models
    return best[0], best[1], candidates


def _score_active(
    role: str, data: InteractionData, split: Split
) -> tuple[ModelVersion | None, float | None, str]:
    """The active version, its validation NDCG@10 when re-fitted on this train part."""
    active = model_version_active(role=role)
    if active is None:
        return None, None, ""
    try:
        # As tune_and_evaluate fits the candidates: train part, validation for early stops.
        model = create(active.kind, **active.hyperparameters)
        model.fit(split.train, data=data, valid=split.valid)
        valid = evaluate_full_ranking(model, split.valid, split.train, split.train)
    except Exception as error:
        logger.warning("training: cannot re-score active version %s: %s", active.pk, error)
        return active, None, f"{type(error).__name__}: {error}"
    return active, float(valid.metrics[SELECTION_METRIC]), ""


def _decide(
    score: float, active: ModelVersion | None, active_score: float | None, problem: str
) -> tuple[bool, str]:
    """Promote only a strictly better candidate; the reason, in words, either way."""
    if active is None:
        return True, "no active model for this role yet"
    if active_score is None:
        return False, (
            f"the active version #{active.pk} could not be re-scored ({problem}); "
            "promote the candidate by hand if it is better"
        )
    comparison = f"validation NDCG@10 {score:.4f} vs {active_score:.4f} of active #{active.pk}"
    if score > active_score:
        return True, f"better: {comparison}"
    return False, f"not better: {comparison}"


def _save_refit(model: Recommender, data: InteractionData, artifact_path: str) -> None:
    """Fit the chosen setting on every interaction and save it with the vocabularies."""
    final = create(model.name, **model.hyperparameters).fit(data.matrix(), data=data)
    artifact_write(
        root=Path(settings.ML_ARTIFACT_DIR),
        relative_path=artifact_path,
        model=final,
        user_ids=data.user_ids,
        item_ids=data.item_ids,
    )


def _record(run: TrainingRun, outcomes: list[RoleOutcome]) -> None:
    """Create the versions and apply the promotions (inside the caller's transaction)."""
    trained_at = timezone.now()
    for outcome in outcomes:
        version = model_version_create(
            kind=outcome.kind,
            role=outcome.role,
            hyperparameters=outcome.hyperparameters,
            dataset=run.dataset,
            metrics=outcome.metrics,
            artifact_path=outcome.artifact_path,
            trained_at=trained_at,
            duration_seconds=outcome.duration_seconds,
            training_run=run,
        )
        outcome.version_id = version.pk
        if not outcome.promote:
            continue
        try:
            with transaction.atomic():
                model_version_promote(version=version, replacing=outcome.active)
        except RegistryError as refused:
            outcome.promote, outcome.reason = False, str(refused)
            continue
        if version.kind in SEMANTIC_ID_KINDS:  # the serving model's codes go on the items
            item_semantic_ids_store(version=version)


def _metrics(result: TuningResult) -> dict[str, Any]:
    """Validation and test metrics of a tuned model, JSON-safe, with its search trials."""
    return {
        "selection_metric": SELECTION_METRIC,
        "valid": {name: _finite(value) for name, value in result.valid_metrics.items()},
        "test": {name: _finite(value) for name, value in result.test_metrics.items()},
        "fit_seconds": result.train_seconds,
        "trials": [
            {"params": dict(trial.params), "valid_ndcg@10": _finite(trial.valid_score)}
            for trial in result.trials
        ],
    }


def _finite(value: float) -> float | None:
    """JSON (and Postgres jsonb) has no NaN or infinity."""
    number = float(value)
    return number if math.isfinite(number) else None


def _users_with_rows(matrix: Any) -> int:
    return int(np.count_nonzero(np.diff(matrix.indptr)))


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat()
