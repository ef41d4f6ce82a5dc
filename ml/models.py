"""The model registry: trained model versions per role, and the training runs that made them."""

from django.db import models


class ModelRole(models.TextChoices):
    """What a model is used for on the site; each role has at most one active version."""

    HOME = "home", "Home page top picks"
    SIMILAR = "similar", "Similar items"
    SESSION = "session", "Session next item"
    CODES = "codes", "Item semantic IDs (new items, anomaly scores)"


class ModelVersionStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate (trained, not serving)"
    ACTIVE = "active", "Active (serving)"
    RETIRED = "retired", "Retired (served before)"


class TrainingRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class TrainingRun(models.Model):
    """One (re)training of every planned role: progress while it runs, decisions after."""

    status = models.CharField(
        max_length=16, choices=TrainingRunStatus.choices, default=TrainingRunStatus.QUEUED
    )
    trigger = models.CharField(
        max_length=100,
        blank=True,
        help_text="Who or what started it: the nightly schedule or a user.",
    )
    plan = models.JSONField(
        default=dict,
        blank=True,
        help_text="Roles and models to train, with the settings tried for each.",
    )
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done (0 to 100).")
    stage = models.CharField(
        max_length=200, blank=True, help_text="What the training is doing now."
    )
    error = models.TextField(blank=True, help_text="Why the run failed, if it did.")
    log = models.JSONField(
        default=list,
        blank=True,
        help_text="Per role: the best new model, its score against the active one, the decision.",
    )
    dataset = models.JSONField(
        default=dict, blank=True, help_text="Size and time range of the data trained on."
    )
    celery_task_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "-created_at"], name="trainingrun_status_recent")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__lte=100), name="trainingrun_progress_percent"
            )
        ]

    def __str__(self) -> str:
        return f"Training run #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        """Succeeded or failed: nothing will change any more."""
        return self.status in (TrainingRunStatus.SUCCEEDED, TrainingRunStatus.FAILED)


class ModelVersion(models.Model):
    """A trained model saved on disk, with what it was trained on and how well it scored."""

    kind = models.CharField(
        "algorithm",
        max_length=32,
        help_text="Algorithm name, as in ml.algorithms.registry.ALGORITHMS.",
    )
    role = models.CharField(
        max_length=16,
        choices=ModelRole.choices,
        help_text="Where on the site this model's recommendations are shown.",
    )
    status = models.CharField(
        max_length=16, choices=ModelVersionStatus.choices, default=ModelVersionStatus.CANDIDATE
    )
    hyperparameters = models.JSONField(default=dict, blank=True)
    dataset = models.JSONField(
        default=dict,
        blank=True,
        help_text="Snapshot of the training data: counts, time range, source and split.",
    )
    metrics = models.JSONField(
        default=dict, blank=True, help_text="Validation and test metrics (full ranking)."
    )
    artifact_path = models.CharField(
        max_length=500, help_text="Saved model folder, relative to ML_ARTIFACT_DIR."
    )
    trained_at = models.DateTimeField()
    duration_seconds = models.FloatField(
        default=0.0, help_text="Seconds spent training, hyper-parameter search included."
    )
    training_run = models.ForeignKey(
        TrainingRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="versions",
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-trained_at", "-pk"]
        indexes = [models.Index(fields=["role", "trained_at"], name="modelversion_role_trained")]
        constraints = [
            models.UniqueConstraint(
                fields=["role"],
                condition=models.Q(status=ModelVersionStatus.ACTIVE),
                name="modelversion_one_active_per_role",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} for {self.get_role_display()} ({self.status})"

    def metric(self, part: str, name: str = "ndcg@10") -> float | None:
        """One stored metric, e.g. `metric("valid")` for validation NDCG@10."""
        value = self.metrics.get(part, {}).get(name)
        return None if value is None else float(value)


class Audience(models.Model):
    """A learned audience: a cluster of visitors' embeddings, as a model version made it.

    Visitors carry the code (webapp.segments' profile); a segment targets a code, and a
    code names its version (``v<version>-<n>``), so retraining never moves anyone into it.
    """

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="audiences")
    code = models.CharField(max_length=64, unique=True)
    size = models.PositiveIntegerField(help_text="Visitors in it when it was learned.")
    top_categories = models.JSONField(
        default=list, blank=True, help_text="[[category, share of its events], ...], top 5."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version_id", "code"]

    def __str__(self) -> str:
        return self.code

    @property
    def description(self) -> str:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in self.top_categories)
        return f"{self.size} visitors; {shares or 'no categories'}"
