"""Reads on experiments: which are live where, and which variant a visitor gets.

The serving path reads experiments from a per-process snapshot reloaded at most every
LIVE_CACHE_SECONDS (saving an experiment or variant clears this process's copy at once;
other processes follow within that time): with no running experiment, deciding costs no
query. A person's logged variants are read through the shared cache (one entry per
person, dropped whenever one of their exposures is written).
"""

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from webapp.experiments.assignment import in_traffic, variant_for
from webapp.experiments.models import Experiment, ExperimentStatus, Exposure, Variant
from webapp.models import Visitor
from webapp.segments.selectors import RequestContext, segments_of_visitor

LIVE_CACHE_SECONDS = 30.0
VARIANTS_CACHE_SECONDS = 300

_LIVE_CACHE: dict[str, tuple[float, tuple["LiveExperiment", ...]]] = {}


@dataclass(frozen=True, slots=True)
class LiveVariant:
    pk: int
    key: str
    weight: int
    is_control: bool
    config: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class LiveExperiment:
    """A running experiment as the serving path needs it (no model instance, no DB)."""

    pk: int
    key: str
    placement: str
    seed: str
    bucket_version: int
    traffic_share: float
    variants: tuple[LiveVariant, ...]
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    segment_id: int | None = None

    def is_live(self, *, now: datetime) -> bool:
        """`now` is inside the schedule."""
        started = self.starts_at is None or self.starts_at <= now
        return started and (self.ends_at is None or now < self.ends_at)

    def variant(self, key: str) -> LiveVariant | None:
        return next((v for v in self.variants if v.key == key), None)


@dataclass(frozen=True, slots=True)
class Decision:
    """The variant a person is served in one experiment, with what it takes to log it."""

    experiment_key: str
    variant_key: str
    config: Mapping[str, Any]
    experiment_id: int
    variant_id: int
    person: str
    bucket_version: int
    already_exposed: bool = False


def person_of(visitor: Visitor) -> str:
    """The unit of assignment: the account when the visitor is logged in, else the visitor."""
    return f"user:{visitor.user_id}" if visitor.user_id else f"visitor:{visitor.pk}"


def live_experiment_of(experiment: Experiment) -> LiveExperiment:
    """The snapshot of one experiment (one query for its variants)."""
    return _snapshot(experiment, experiment.variants.order_by("position", "pk"))


def experiments_running_load() -> tuple[LiveExperiment, ...]:
    """Every running experiment with its variants (two queries)."""
    running = Experiment.objects.filter(status=ExperimentStatus.RUNNING).prefetch_related(
        "variants"
    )
    return tuple(
        _snapshot(e, sorted(e.variants.all(), key=lambda v: (v.position, v.pk)))
        for e in running.order_by("pk")
    )


def _snapshot(experiment: Experiment, variants: Iterable[Variant]) -> LiveExperiment:
    return LiveExperiment(
        pk=experiment.pk,
        key=experiment.key,
        placement=experiment.placement,
        seed=experiment.seed or experiment.key,
        bucket_version=experiment.bucket_version,
        traffic_share=experiment.traffic_share,
        variants=tuple(
            LiveVariant(v.pk, v.key, v.weight, v.is_control, v.config) for v in variants
        ),
        starts_at=experiment.starts_at,
        ends_at=experiment.ends_at,
        segment_id=experiment.segment_id,
    )


def experiments_running_cached() -> tuple[LiveExperiment, ...]:
    """This process's snapshot of the running experiments, at most LIVE_CACHE_SECONDS old."""
    cached = _LIVE_CACHE.get("running")
    if cached is None or time.monotonic() - cached[0] > LIVE_CACHE_SECONDS:
        cached = (time.monotonic(), experiments_running_load())
        _LIVE_CACHE["running"] = cached
    return cached[1]


def experiments_cache_clear() -> None:
    """Forget this process's snapshot (after an experiment or a variant changed)."""
    _LIVE_CACHE.clear()


def experiments_live_for(*, placement: str, now: datetime | None = None) -> list[LiveExperiment]:
    """Running experiments on `placement` inside their schedule (no query when cached)."""
    now = now or timezone.now()
    return [
        e
        for e in experiments_running_cached()
        if e.placement == placement and e.variants and e.is_live(now=now)
    ]


def variants_cache_key(person: str) -> str:
    return f"experiments:variants:{person}"


def variants_of_person(*, person: str) -> dict[str, str]:
    """{experiment key: variant key} of the person's exposures in running experiments."""
    key = variants_cache_key(person)
    found: dict[str, str] | None = cache.get(key)
    if found is None:
        rows = Exposure.objects.filter(
            person=person, experiment__status=ExperimentStatus.RUNNING
        ).values_list("experiment__key", "variant__key")
        found = dict(rows)
        cache.set(key, found, VARIANTS_CACHE_SECONDS)
    return found


def variants_of_visitor(*, visitor: Visitor) -> dict[str, str]:
    """The variants every event of this visitor should carry (`context["variants"]`)."""
    return variants_of_person(person=person_of(visitor))


def experiment_decide(
    *,
    experiment: Experiment | LiveExperiment,
    visitor: Visitor,
    request_context: RequestContext | None = None,
) -> Decision | None:
    """The variant `visitor` sees, or None: not live, a bot, outside the targeting segment
    or outside the traffic share.

    A person already exposed keeps their logged variant (even after the weights
    changed); anyone else is placed by the hash of the current bucket version.
    """
    live = experiment if isinstance(experiment, LiveExperiment) else _live_or_none(experiment)
    if live is None or not live.variants or not live.is_live(now=timezone.now()):
        return None
    if visitor.is_bot:
        return None
    person = person_of(visitor)
    logged = variants_of_person(person=person)
    if not _targeted([live], visitor, logged, request_context):
        return None
    return _decide(live, person, logged)


def experiments_decide(
    *, placement: str, visitor: Visitor | None, request_context: RequestContext | None = None
) -> list[Decision]:
    """Decisions of every live experiment on `placement` (none for no visitor or a bot).

    No query without a live experiment; else one read of the person's logged variants
    (and the visitor's segments when an experiment targets one).
    """
    if visitor is None or visitor.is_bot:
        return []
    live = experiments_live_for(placement=placement)
    if not live:
        return []
    person = person_of(visitor)
    logged = variants_of_person(person=person)
    live = _targeted(live, visitor, logged, request_context)
    decisions = (_decide(experiment, person, logged) for experiment in live)
    return [decision for decision in decisions if decision is not None]


def _targeted(
    live: list[LiveExperiment],
    visitor: Visitor,
    logged: Mapping[str, str],
    request_context: RequestContext | None,
) -> list[LiveExperiment]:
    """The experiments whose targeting segment holds the visitor (segments evaluated once).

    The segment decides who enters: a person already exposed keeps their variant even
    after leaving the segment, so nobody is moved out of an experiment mid-way.
    """
    if all(e.segment_id is None or e.key in logged for e in live):
        return live
    member = segments_of_visitor(visitor=visitor, request_context=request_context)
    return [e for e in live if e.segment_id is None or e.key in logged or e.segment_id in member]


def _decide(live: LiveExperiment, person: str, logged: Mapping[str, str]) -> Decision | None:
    known = logged.get(live.key)
    variant = live.variant(known) if known is not None else None
    if variant is not None:
        return _decision(live, variant, person, already_exposed=True)
    if not in_traffic(live.seed, person, live.traffic_share):
        return None
    index = variant_for(live.seed, live.bucket_version, person, [v.weight for v in live.variants])
    return _decision(live, live.variants[index], person, already_exposed=False)


def _live_or_none(experiment: Experiment) -> LiveExperiment | None:
    if experiment.status != ExperimentStatus.RUNNING:
        return None
    return live_experiment_of(experiment)


def _decision(
    live: LiveExperiment, variant: LiveVariant, person: str, *, already_exposed: bool
) -> Decision:
    return Decision(
        experiment_key=live.key,
        variant_key=variant.key,
        config=variant.config,
        experiment_id=live.pk,
        variant_id=variant.pk,
        person=person,
        bucket_version=live.bucket_version,
        already_exposed=already_exposed,
    )
