"""Writes on experiments: status, weights, exposures, and exposures across a login.

Identity: the unit of an experiment is the *person*, "user:<pk>" for a logged-in visitor
and "visitor:<pk>" otherwise (`selectors.person_of`). On login the anonymous visitor's
exposures join the account (`exposures_merge_on_login`); when both had seen different
variants of one experiment, the account's variant wins from then on and the person is
kept once, flagged `conflict` (with the anonymous `conflict_variant`), and left out of
the primary analysis.
"""

from collections.abc import Iterable, Mapping, Sequence

from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from webapp.experiments.models import (
    Experiment,
    ExperimentStatus,
    Exposure,
    Variant,
    variants_errors,
)
from webapp.experiments.selectors import Decision, experiments_cache_clear, variants_cache_key
from webapp.models import Visitor

# Which status each status may move to (stopped is final).
STATUS_MOVES: dict[str, frozenset[str]] = {
    ExperimentStatus.DRAFT: frozenset({ExperimentStatus.RUNNING, ExperimentStatus.STOPPED}),
    ExperimentStatus.RUNNING: frozenset({ExperimentStatus.PAUSED, ExperimentStatus.STOPPED}),
    ExperimentStatus.PAUSED: frozenset({ExperimentStatus.RUNNING, ExperimentStatus.STOPPED}),
    ExperimentStatus.STOPPED: frozenset(),
}


def _persons_cache_clear(persons: Iterable[str]) -> None:
    keys = [variants_cache_key(person) for person in set(persons)]
    cache.delete_many(keys)
    # Again after commit: a read between now and then may have cached the old rows.
    transaction.on_commit(lambda: cache.delete_many(keys))


def _experiments_changed() -> None:
    experiments_cache_clear()
    transaction.on_commit(experiments_cache_clear)


def exposure_record(*, decision: Decision, visitor: Visitor) -> None:
    """Log that `visitor` was shown `decision`'s variant (only the person's first time)."""
    exposures_record(decisions=[decision], visitor=visitor)


def exposures_record(*, decisions: Sequence[Decision], visitor: Visitor) -> None:
    """Log the first exposure per person of each rendered decision, in one insert.

    Call it only for variants really rendered. Already-logged persons cost nothing;
    INSERT ... ON CONFLICT DO NOTHING keeps the first row when two requests race.
    """
    new = sorted((d for d in decisions if not d.already_exposed), key=lambda d: d.experiment_id)
    if not new:
        return
    now = timezone.now()
    Exposure.objects.bulk_create(
        [
            Exposure(
                experiment_id=decision.experiment_id,
                variant_id=decision.variant_id,
                person=decision.person,
                visitor=visitor,
                user_id=visitor.user_id if decision.person.startswith("user:") else None,
                first_exposed_at=now,
                bucket_version=decision.bucket_version,
            )
            for decision in new
        ],
        ignore_conflicts=True,
    )
    _persons_cache_clear(decision.person for decision in new)


@transaction.atomic
def exposures_merge_on_login(*, anonymous: Visitor, user: User) -> int:
    """Move the anonymous visitor's exposures to the account; how many there were.

    Per experiment: the account has none -> the exposure moves to the account; same
    variant -> one exposure (the earliest time) stays; another variant -> the account's
    stays, flagged `conflict` with the anonymous `conflict_variant`. Idempotent.
    """
    anonymous_person, account_person = f"visitor:{anonymous.pk}", f"user:{user.pk}"
    moving = list(
        Exposure.objects.select_for_update()
        .filter(person=anonymous_person)
        .order_by("experiment_id")
    )
    if not moving:
        return 0
    # Copy first (a concurrent exposure of the account wins the unique constraint),
    # then settle each experiment against whatever the account now holds.
    Exposure.objects.bulk_create(
        [_account_copy(e, account_person, user) for e in moving], ignore_conflicts=True
    )
    held = {
        e.experiment_id: e
        for e in Exposure.objects.select_for_update()
        .filter(person=account_person, experiment_id__in=[e.experiment_id for e in moving])
        .order_by("experiment_id")
    }
    for old in moving:
        _settle(held[old.experiment_id], old)
    Exposure.objects.filter(pk__in=[e.pk for e in moving]).delete()
    _persons_cache_clear([anonymous_person, account_person])
    return len(moving)


def _account_copy(exposure: Exposure, person: str, user: User) -> Exposure:
    return Exposure(
        experiment_id=exposure.experiment_id,
        variant_id=exposure.variant_id,
        person=person,
        visitor_id=exposure.visitor_id,
        user=user,
        first_exposed_at=exposure.first_exposed_at,
        bucket_version=exposure.bucket_version,
    )


def _settle(kept: Exposure, old: Exposure) -> None:
    """Fold the anonymous exposure `old` into the account's `kept`."""
    if kept.variant_id == old.variant_id:
        if old.first_exposed_at < kept.first_exposed_at:
            kept.first_exposed_at = old.first_exposed_at
            kept.save(update_fields=["first_exposed_at"])
    elif not kept.conflict:
        kept.conflict, kept.conflict_variant_id = True, old.variant_id
        kept.save(update_fields=["conflict", "conflict_variant"])


def exposures_erase(*, visitors: Sequence[Visitor]) -> int:
    """Delete the exposures of these visitors and of their persons (privacy erasure)."""
    persons = {f"visitor:{v.pk}" for v in visitors} | {
        f"user:{v.user_id}" for v in visitors if v.user_id
    }
    deleted, _ = Exposure.objects.filter(
        Q(person__in=persons) | Q(visitor__in=[v.pk for v in visitors])
    ).delete()
    _persons_cache_clear(persons)
    return deleted


def experiment_bucket_version_bump(*, experiment: Experiment) -> bool:
    """A new split for new persons, if anyone was exposed yet (exposed persons stay put)."""
    exposed = Exposure.objects.filter(experiment_id=OuterRef("pk"))
    bumped = (
        Experiment.objects.filter(pk=experiment.pk)
        .filter(Exists(exposed))
        .update(bucket_version=F("bucket_version") + 1, updated_at=timezone.now())
    )
    if bumped:
        experiment.refresh_from_db(fields=["bucket_version", "updated_at"])
        _experiments_changed()
    return bool(bumped)


@transaction.atomic
def experiment_update_weights(*, experiment: Experiment, weights: Mapping[str, int]) -> Experiment:
    """Set the variants' weights (percent, summing to 100); bumps the bucket version
    when they changed after exposures, so only new persons follow the new split."""
    locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
    variants = list(locked.variants.order_by("position", "pk"))
    keys = {v.key for v in variants}
    if set(weights) != keys:
        raise ValidationError({"weights": f"Give one weight per variant: {sorted(keys)}."})
    errors = variants_errors(
        weights=list(weights.values()), controls=sum(v.is_control for v in variants)
    )
    if any(not 0 <= weight <= 100 for weight in weights.values()):
        errors.append("Each weight must be between 0 and 100.")
    if errors:
        raise ValidationError({"weights": errors})
    changed = [v for v in variants if v.weight != weights[v.key]]
    for variant in changed:
        variant.weight = weights[variant.key]
    if changed:
        Variant.objects.bulk_update(changed, ["weight"])
        experiment_bucket_version_bump(experiment=locked)
        _experiments_changed()
    return locked


@transaction.atomic
def experiment_set_status(*, experiment: Experiment, status: str) -> Experiment:
    """Start, pause or stop; starting needs a valid set of variants. Stopped is final."""
    locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
    if status == locked.status:
        return locked
    if status not in STATUS_MOVES[locked.status]:
        raise ValidationError(f"A {locked.status} experiment cannot become {status}.")
    if status == ExperimentStatus.RUNNING:
        variants = list(locked.variants.all())
        errors = variants_errors(
            weights=[v.weight for v in variants], controls=sum(v.is_control for v in variants)
        )
        if errors:
            raise ValidationError(errors)
    locked.status = status
    locked.save(update_fields=["status", "updated_at"])
    return locked
