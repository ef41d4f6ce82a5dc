"""Experiments (A/B tests on a placement), their variants, and who was exposed to which."""

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models

from ml.models import ModelVersion
from recommender.candidates import Section
from webapp.experiments.metrics import METRICS, metric_choices

# Page-level placements: what they decide (e.g. a template) and the sections whose
# events their metrics count.
# Page layouts a "home_layout" variant can choose ("" keeps the page's own template).
LAYOUT_TEMPLATES: dict[str, str] = {
    "shop/home.html": "Home: standard (hero, then sections)",
    "shop/home_compact.html": "Home: compact (sections first, small hero)",
}
# How a "category_order" variant orders category pages for visitors who did not pick a
# sort themselves.
CATEGORY_ORDERS: dict[str, str] = {
    "": "The shop's default order",
    "personalized": "Ranked for the visitor (predicted preference)",
}
PAGE_PLACEMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "home_layout": (
        "Home page layout (template)",
        tuple(section.value for section in Section if section.value.startswith("home_")),
    ),
    # Clicks on a category page's items carry the placement "category".
    "category_order": ("Category pages: item order", ("category",)),
}


def placement_choices() -> list[tuple[str, str]]:
    """Every recommendation section, then the page-level placements."""
    return [
        *((section.value, f"Section: {section.value}") for section in Section),
        *((key, label) for key, (label, _) in PAGE_PLACEMENTS.items()),
    ]


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused (everyone sees the default)"
    STOPPED = "stopped", "Stopped (final)"


class Correction(models.TextChoices):
    """How p-values of several comparisons (variants x metrics) are corrected."""

    HOLM = "holm", "Holm (family-wise error rate)"
    BH = "bh", "Benjamini-Hochberg (false discovery rate)"


class VariantStrategy(models.TextChoices):
    MODEL = "model", "A model version (or the active one)"
    TRENDING = "trending", "Trending items"
    POPULAR = "popular", "Popular items"


class Experiment(models.Model):
    """An A/B test: visitors of a placement are split between its variants by a hash."""

    key = models.SlugField(max_length=64, unique=True, help_text="Stable id used in events.")
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True, help_text="What should change, and why.")
    status = models.CharField(
        max_length=16, choices=ExperimentStatus.choices, default=ExperimentStatus.DRAFT
    )
    placement = models.CharField(max_length=64, choices=placement_choices)
    segment = models.ForeignKey(
        "segments.Segment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="experiments",
        help_text="Only visitors in this segment enter (empty: everyone). "
        "Persons already exposed keep their variant.",
    )
    traffic_share = models.FloatField(
        default=1.0, help_text="Share of persons in the experiment, in (0, 1]."
    )
    seed = models.CharField(
        max_length=64,
        blank=True,
        help_text="Assignment hash salt (default: the key); fixed once started.",
    )
    bucket_version = models.PositiveIntegerField(
        default=1, help_text="Bumped when weights change after exposures: a new split."
    )
    primary_metric = models.CharField(max_length=32, choices=metric_choices, default="ctr")
    guardrail_metrics = models.JSONField(default=list, blank=True)
    correction = models.CharField(max_length=8, choices=Correction.choices, default=Correction.HOLM)
    sequential = models.BooleanField(
        default=False, help_text="Always-valid results: safe to look before the planned end."
    )
    minimum_detectable_effect = models.FloatField(
        default=0.05, help_text="Smallest relative lift worth detecting (0.05 = 5 %)."
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "placement"], name="experiment_status_place")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=ExperimentStatus.values),
                name="experiment_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(correction__in=Correction.values),
                name="experiment_correction_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(traffic_share__gt=0, traffic_share__lte=1),
                name="experiment_traffic_share_range",
            ),
            models.CheckConstraint(condition=~models.Q(seed=""), name="experiment_seed_set"),
            models.CheckConstraint(
                condition=models.Q(bucket_version__gte=1), name="experiment_bucket_from_one"
            ),
            models.CheckConstraint(
                condition=models.Q(minimum_detectable_effect__gt=0),
                name="experiment_mde_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(starts_at__isnull=True)
                | models.Q(ends_at__isnull=True)
                | models.Q(ends_at__gt=models.F("starts_at")),
                name="experiment_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    def clean(self) -> None:
        """Default the seed to the key; the DB constraints' invariants as field errors."""
        if not self.seed:
            self.seed = self.key
        errors: dict[str, Any] = {}
        if not 0 < self.traffic_share <= 1:
            errors["traffic_share"] = "Traffic share must be above 0 and at most 1 (100 %)."
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The end must be after the start."
        if self.minimum_detectable_effect is not None and self.minimum_detectable_effect <= 0:
            errors["minimum_detectable_effect"] = "The minimum detectable effect must be above 0."
        errors |= self._guardrail_errors()
        if errors:
            raise ValidationError(errors)

    def _guardrail_errors(self) -> dict[str, str]:
        if not isinstance(self.guardrail_metrics, list):
            return {"guardrail_metrics": "Guardrail metrics must be a list of metric keys."}
        unknown = [key for key in self.guardrail_metrics if key not in METRICS]
        if unknown:
            return {"guardrail_metrics": f"Unknown metrics: {', '.join(map(str, unknown))}."}
        if self.primary_metric in self.guardrail_metrics:
            return {"guardrail_metrics": "The primary metric cannot also be a guardrail."}
        return {}

    @property
    def event_placements(self) -> tuple[str, ...]:
        """The `Interaction.placement` values whose events this experiment's metrics count."""
        page = PAGE_PLACEMENTS.get(self.placement)
        return page[1] if page else (self.placement,)


class Variant(models.Model):
    """One arm of an experiment: its share of traffic and what it serves (`config`)."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=64, help_text="Stable id used in events.")
    name = models.CharField(max_length=200, blank=True)
    weight = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(100)], help_text="Percent of the experiment's traffic."
    )
    is_control = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    # {"strategy": "model" | "trending" | "popular", "model_version": pk | null,
    #  "template": "" or a template name, "category_order": "" or "personalized"}
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_key_unique"),
            models.UniqueConstraint(
                fields=["experiment"],
                condition=models.Q(is_control=True),
                name="variant_one_control",
                violation_error_message="Only one variant can be the control.",
            ),
            models.CheckConstraint(
                condition=models.Q(weight__lte=100), name="variant_weight_percent"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key}/{self.key}"

    def clean(self) -> None:
        """`config` must name a known strategy, an existing model version and a template."""
        errors = variant_config_errors(self.config)
        if errors:
            raise ValidationError({"config": errors})


def variants_errors(*, weights: Sequence[int], controls: int) -> list[str]:
    """What is wrong with an experiment's set of variants (empty when it can run)."""
    errors = []
    if len(weights) < 2:
        errors.append(f"An experiment needs at least two variants (it has {len(weights)}).")
    if sum(weights) != 100:
        errors.append(f"Variant weights must add up to 100 (they add up to {sum(weights)}).")
    if controls != 1:
        errors.append(f"Mark exactly one variant as the control ({controls} are marked).")
    return errors


def variant_config_errors(config: Any) -> list[str]:
    """What is wrong with a variant's `config` (empty when it is valid)."""
    if not isinstance(config, dict):
        return ["The configuration must be an object."]
    errors = []
    strategy = config.get("strategy", VariantStrategy.MODEL)
    if strategy not in VariantStrategy.values:
        errors.append(f"Unknown strategy {strategy!r}.")
    version = config.get("model_version")
    if version is not None and (
        not isinstance(version, int) or not ModelVersion.objects.filter(pk=version).exists()
    ):
        errors.append(f"No model version #{version}.")
    template = config.get("template", "")
    if not isinstance(template, str) or (template and template not in LAYOUT_TEMPLATES):
        known = ", ".join(LAYOUT_TEMPLATES)
        errors.append(f"Unknown template {template!r}: leave it empty or use one of {known}.")
    order = config.get("category_order", "")
    if order not in CATEGORY_ORDERS:
        errors.append(f"Unknown category order {order!r}: leave it empty or use 'personalized'.")
    return errors


class Exposure(models.Model):
    """The first time a person was shown a variant of an experiment (one per person)."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="exposures", db_index=False
    )
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="exposures")
    # "user:<pk>" for an account, else "visitor:<pk>": the unit of assignment and analysis.
    person = models.CharField(max_length=64)
    visitor = models.ForeignKey(
        "webapp.Visitor",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="experiment_exposures",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="experiment_exposures",
    )
    first_exposed_at = models.DateTimeField()
    bucket_version = models.PositiveIntegerField()
    # Saw another variant while anonymous before logging in: counted once, left out of
    # the primary analysis; `variant` (the account's) is what they see from then on.
    conflict = models.BooleanField(default=False)
    conflict_variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "person"], name="exposure_one_per_person"
            ),
            models.CheckConstraint(
                condition=models.Q(conflict=True) | models.Q(conflict_variant__isnull=True),
                name="exposure_conflict_variant_only_on_conflict",
            ),
        ]
        indexes = [
            models.Index(fields=["experiment", "variant"], name="exposure_exp_variant"),
            models.Index(fields=["person"], name="exposure_person"),
        ]

    def __str__(self) -> str:
        return f"{self.person} in {self.experiment_id}: {self.variant_id}"
