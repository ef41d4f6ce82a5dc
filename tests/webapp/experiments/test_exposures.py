"""Deciding variants, logging exposures, weight changes and exposures across logins."""

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.factories import (
    ExposureFactory,
    UserFactory,
    VisitorFactory,
    experiment_with_variants,
)
from webapp.experiments.assignment import in_traffic, variant_for
from webapp.experiments.models import Experiment, ExperimentStatus, Exposure
from webapp.experiments.selectors import (
    experiment_decide,
    experiments_cache_clear,
    experiments_decide,
    experiments_live_for,
    person_of,
    variants_of_visitor,
)
from webapp.experiments.services import (
    experiment_set_status,
    experiment_update_weights,
    exposure_record,
    exposures_erase,
    exposures_merge_on_login,
    exposures_record,
)
from webapp.models import Visitor
from webapp.services.visitors import visitor_attach_to_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache(db: Any) -> None:
    """Overrides the folder's no-op: these tests use the DB, the cache and the snapshot."""
    cache.clear()
    experiments_cache_clear()


def login(visitor: Visitor, user: Any) -> Visitor:
    """What the site does on login: attach the visitor, then merge its exposures."""
    canonical = visitor_attach_to_user(visitor=visitor, user=user)
    exposures_merge_on_login(anonymous=visitor, user=user)
    return Visitor.objects.get(pk=canonical.pk)


def test_decision_follows_the_hash_of_the_person() -> None:
    experiment = experiment_with_variants(weights=(30, 70))
    visitor = VisitorFactory.create()

    decision = experiment_decide(experiment=experiment, visitor=visitor)

    assert decision is not None
    index = variant_for(experiment.seed, 1, f"visitor:{visitor.pk}", [30, 70])
    assert decision.variant_key == ["control", "v1"][index]
    assert decision.config == {"strategy": "model", "model_version": None}
    assert decision.person == f"visitor:{visitor.pk}" and not decision.already_exposed


def test_a_logged_in_visitor_is_the_account() -> None:
    user = UserFactory.create()

    assert person_of(VisitorFactory.create(user=user)) == f"user:{user.pk}"


@pytest.mark.parametrize(
    "fields",
    [
        {"status": ExperimentStatus.DRAFT},
        {"status": ExperimentStatus.PAUSED},
        {"status": ExperimentStatus.STOPPED},
        {"starts_at": timezone.now() + timedelta(hours=1)},
        {"ends_at": timezone.now() - timedelta(hours=1)},
        {"traffic_share": 1e-12},
    ],
)
def test_no_decision_outside_the_experiment(fields: dict[str, Any]) -> None:
    experiment = experiment_with_variants(**fields)

    assert experiment_decide(experiment=experiment, visitor=VisitorFactory.create()) is None
    assert experiments_decide(placement=experiment.placement, visitor=VisitorFactory.create()) == []


def test_bots_are_never_in_an_experiment() -> None:
    experiment = experiment_with_variants()
    bot = VisitorFactory.create(is_bot=True)

    assert experiment_decide(experiment=experiment, visitor=bot) is None
    assert experiments_decide(placement=experiment.placement, visitor=bot) == []


def test_no_query_on_the_hot_path_without_running_experiments(
    django_assert_num_queries: Any,
) -> None:
    experiment_with_variants(status=ExperimentStatus.PAUSED)
    visitor = VisitorFactory.create()
    experiments_live_for(placement="home_top_picks")  # loads this process's snapshot

    with django_assert_num_queries(0):
        assert experiments_decide(placement="home_top_picks", visitor=visitor) == []
        assert experiments_live_for(placement="home_top_picks") == []


def test_deciding_a_page_reads_the_persons_variants_once(
    django_assert_max_num_queries: Any,
) -> None:
    experiment_with_variants()
    experiment_with_variants(weights=(20, 30, 50))
    visitor = VisitorFactory.create()
    exposures_record(
        decisions=experiments_decide(placement="home_top_picks", visitor=visitor), visitor=visitor
    )
    experiments_decide(placement="home_top_picks", visitor=visitor)  # warms the caches

    with django_assert_max_num_queries(1):  # the shared cache's read (none with Redis)
        decisions = experiments_decide(placement="home_top_picks", visitor=visitor)

    assert len(decisions) == 2 and all(d.already_exposed for d in decisions)


def test_saving_an_experiment_refreshes_the_snapshot_at_once() -> None:
    assert experiments_live_for(placement="home_top_picks") == []

    experiment = experiment_with_variants()

    assert [e.key for e in experiments_live_for(placement="home_top_picks")] == [experiment.key]
    assert experiments_live_for(placement="item_similar") == []
    experiment_set_status(experiment=experiment, status=ExperimentStatus.PAUSED)
    assert experiments_live_for(placement="home_top_picks") == []


def test_first_exposure_is_logged_once_per_person(django_assert_num_queries: Any) -> None:
    experiment = experiment_with_variants()
    visitor = VisitorFactory.create()
    decision = experiment_decide(experiment=experiment, visitor=visitor)
    assert decision is not None

    exposure_record(decision=decision, visitor=visitor)
    exposure_record(decision=decision, visitor=visitor)  # a second render (stale decision)
    again = experiment_decide(experiment=experiment, visitor=visitor)
    assert again is not None and again.already_exposed
    with django_assert_num_queries(0):
        exposure_record(decision=again, visitor=visitor)

    exposure = Exposure.objects.get()
    assert (exposure.person, exposure.variant.key) == (decision.person, decision.variant_key)
    assert exposure.visitor == visitor and exposure.bucket_version == 1
    assert variants_of_visitor(visitor=visitor) == {experiment.key: decision.variant_key}


def test_a_page_logs_several_experiments_in_one_insert(django_assert_num_queries: Any) -> None:
    first, second = experiment_with_variants(), experiment_with_variants(weights=(20, 30, 50))
    visitor = VisitorFactory.create(user=UserFactory.create())
    decisions = experiments_decide(placement="home_top_picks", visitor=visitor)
    assert len(decisions) == 2

    with django_assert_num_queries(2):  # the insert, and dropping the person's cached variants
        exposures_record(decisions=decisions, visitor=visitor)

    assert variants_of_visitor(visitor=visitor) == {
        d.experiment_key: d.variant_key for d in decisions
    }
    assert Exposure.objects.filter(user=visitor.user).count() == 2
    assert {first.key, second.key} == {d.experiment_key for d in decisions}


def test_the_first_logged_variant_wins_a_race() -> None:
    experiment = experiment_with_variants()
    visitor = VisitorFactory.create()
    decision = experiment_decide(experiment=experiment, visitor=visitor)
    assert decision is not None
    other = experiment.variants.exclude(key=decision.variant_key).get()
    rival = replace(decision, variant_key=other.key, variant_id=other.pk)

    exposures_record(decisions=[decision], visitor=visitor)
    exposures_record(decisions=[rival], visitor=visitor)

    assert list(Exposure.objects.values_list("variant__key", flat=True)) == [decision.variant_key]


def test_new_weights_bump_the_bucket_and_exposed_people_keep_their_variant() -> None:
    experiment = experiment_with_variants(weights=(50, 50))
    visitors = VisitorFactory.create_batch(40)
    before = {}
    for visitor in visitors[:20]:
        decision = experiment_decide(experiment=experiment, visitor=visitor)
        assert decision is not None
        exposure_record(decision=decision, visitor=visitor)
        before[visitor.pk] = decision.variant_key

    updated = experiment_update_weights(experiment=experiment, weights={"control": 5, "v1": 95})

    assert updated.bucket_version == 2
    for visitor in visitors[:20]:
        decision = experiment_decide(experiment=updated, visitor=visitor)
        assert decision is not None and decision.variant_key == before[visitor.pk]
    for visitor in visitors[20:]:
        decision = experiment_decide(experiment=updated, visitor=visitor)
        index = variant_for(experiment.seed, 2, f"visitor:{visitor.pk}", [5, 95])
        assert decision is not None and decision.variant_key == ["control", "v1"][index]


def test_new_weights_before_any_exposure_keep_the_bucket() -> None:
    experiment = experiment_with_variants(weights=(50, 50))

    updated = experiment_update_weights(experiment=experiment, weights={"control": 10, "v1": 90})

    assert updated.bucket_version == 1
    assert list(updated.variants.values_list("weight", flat=True)) == [10, 90]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"control": 50, "v1": 40}, "add up to 100"),
        ({"control": 100}, "one weight per variant"),
        ({"control": 50, "v1": 50, "v2": 0}, "one weight per variant"),
        ({"control": 150, "v1": -50}, "between 0 and 100"),
    ],
)
def test_bad_weights_are_refused(weights: dict[str, int], message: str) -> None:
    experiment = experiment_with_variants()

    with pytest.raises(ValidationError, match=message):
        experiment_update_weights(experiment=experiment, weights=weights)


def test_lowering_the_traffic_share_never_moves_anyone() -> None:
    experiment = experiment_with_variants(weights=(50, 50))
    visitors = VisitorFactory.create_batch(60)
    full = {v.pk: experiment_decide(experiment=experiment, visitor=v) for v in visitors}
    for visitor in visitors[:30]:
        decision = full[visitor.pk]
        assert decision is not None
        exposure_record(decision=decision, visitor=visitor)

    experiment.traffic_share = 0.3
    experiment.save()

    exposed = {v.pk for v in visitors[:30]}
    for visitor in visitors:
        decision = experiment_decide(experiment=experiment, visitor=visitor)
        before = full[visitor.pk]
        assert before is not None
        # Exposed people keep their variant; the others are either out or unmoved.
        if visitor.pk in exposed or in_traffic(experiment.seed, f"visitor:{visitor.pk}", 0.3):
            assert decision is not None and decision.variant_key == before.variant_key
        else:
            assert decision is None


@pytest.mark.parametrize(
    ("account_variant", "expected_variant", "expected_conflict"),
    [(None, "anonymous", False), ("same", "anonymous", False), ("other", "account", True)],
)
def test_login_merge_rules(
    account_variant: str | None, expected_variant: str, expected_conflict: bool
) -> None:
    experiment = experiment_with_variants()
    control, treatment = experiment.variants.order_by("position")
    user = UserFactory.create()
    anonymous = VisitorFactory.create()
    earlier = timezone.now() - timedelta(days=1)
    ExposureFactory.create(variant=control, visitor=anonymous, first_exposed_at=earlier)
    if account_variant is not None:
        ExposureFactory.create(
            variant=control if account_variant == "same" else treatment,
            visitor=VisitorFactory.create(user=user),
            person=f"user:{user.pk}",
            user=user,
        )

    merged = exposures_merge_on_login(anonymous=anonymous, user=user)

    assert merged == 1
    kept = Exposure.objects.get()
    assert kept.person == f"user:{user.pk}" and kept.user == user
    assert kept.variant == (control if expected_variant == "anonymous" else treatment)
    assert kept.conflict is expected_conflict
    assert kept.conflict_variant == (control if expected_conflict else None)
    assert (kept.first_exposed_at == earlier) is (expected_variant == "anonymous")
    assert exposures_merge_on_login(anonymous=anonymous, user=user) == 0


def test_no_person_is_exposed_to_two_variants_across_logins() -> None:
    """N people browse anonymously, then log in; some had an account exposure elsewhere."""
    experiments = [experiment_with_variants(), experiment_with_variants(weights=(20, 30, 50))]
    seen: dict[tuple[int, str], set[str]] = defaultdict(set)

    def show(visitor: Visitor, user_pk: int) -> None:
        decisions = experiments_decide(placement="home_top_picks", visitor=visitor)
        exposures_record(decisions=decisions, visitor=visitor)
        for decision in decisions:
            seen[(user_pk, decision.experiment_key)].add(decision.variant_key)

    users = UserFactory.create_batch(60)
    for n, user in enumerate(users):
        if n % 3:  # an account already known on another device
            account_visitor = VisitorFactory.create(user=user)
            if n % 3 == 1:
                show(account_visitor, user.pk)
        device = VisitorFactory.create()
        show(device, user.pk)
        canonical = login(device, user)
        show(canonical, user.pk)
        login(device, user)  # a second login on the same device changes nothing
        show(canonical, user.pk)

    assert not Exposure.objects.filter(person__startswith="visitor:").exists()
    conflicts = 0
    for experiment in experiments:
        exposures = {e.user_id: e for e in Exposure.objects.filter(experiment=experiment)}
        assert Exposure.objects.filter(experiment=experiment).count() == len(users)
        for user in users:
            exposure, variants = exposures[user.pk], seen[(user.pk, experiment.key)]
            assert exposure.person == f"user:{user.pk}"
            if exposure.conflict:
                conflicts += 1
                assert exposure.conflict_variant is not None
                assert {exposure.variant.key, exposure.conflict_variant.key} == variants
            else:
                assert variants == {exposure.variant.key}
    # Only those exposed on their account beforehand can conflict, and some did.
    assert 0 < conflicts <= 2 * len([n for n in range(60) if n % 3 == 1])


def test_status_moves() -> None:
    experiment = experiment_with_variants(status=ExperimentStatus.DRAFT)

    for status in ("running", "paused", "running", "stopped"):
        experiment = experiment_set_status(experiment=experiment, status=status)
        assert Experiment.objects.get().status == status
    with pytest.raises(ValidationError, match="stopped experiment cannot become running"):
        experiment_set_status(experiment=experiment, status="running")


def test_an_experiment_with_bad_variants_cannot_start() -> None:
    experiment = experiment_with_variants(status=ExperimentStatus.DRAFT, weights=(50, 40))

    with pytest.raises(ValidationError, match="add up to 100"):
        experiment_set_status(experiment=experiment, status="running")


def test_erasure_forgets_the_exposures_of_a_visitor_and_their_account() -> None:
    user = UserFactory.create()
    visitor = VisitorFactory.create(user=user)
    ExposureFactory.create(visitor=visitor, person=f"user:{user.pk}", user=user)
    ExposureFactory.create(visitor=VisitorFactory.create())

    assert exposures_erase(visitors=[visitor]) == 1
    assert Exposure.objects.count() == 1
