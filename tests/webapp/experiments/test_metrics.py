"""Per-person metric values of an experiment, from seeded interaction logs."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError

from tests.factories import (
    ExposureFactory,
    InteractionFactory,
    ItemFactory,
    UserFactory,
    VisitorFactory,
    experiment_with_variants,
)
from webapp.experiments.metrics import METRICS, MetricKind, metric_choices, metric_person_values
from webapp.experiments.models import Experiment
from webapp.experiments.selectors import experiments_cache_clear
from webapp.models import EventType, Item, Visitor

pytestmark = pytest.mark.django_db

T0 = datetime.fromisoformat("2025-03-01T12:00:00+00:00")
UNTIL = T0 + timedelta(days=7)
ALL_METRICS = ["ctr", "conversion", "revenue_per_visitor", "items_per_session"]


@pytest.fixture(autouse=True)
def _clear_cache(db: Any) -> None:
    """Overrides the folder's no-op: these tests use the database."""
    cache.clear()
    experiments_cache_clear()


def event(
    visitor: Visitor,
    kind: str,
    hours: float,
    *,
    item: Item | None = None,
    placement: str = "home_top_picks",
    value: str | None = None,
    session: str = "s1",
    is_bot: bool = False,
) -> None:
    """One event `hours` after T0 (negative: before the exposure)."""
    InteractionFactory.create(
        visitor=visitor,
        event_type=kind,
        item=item or ItemFactory.create(),
        placement=placement,
        value=Decimal(value) if value is not None else None,
        session_id=session,
        timestamp=T0 + timedelta(hours=hours),
        is_bot=is_bot,
    )


def numbers(experiment: Experiment, **options: Any) -> dict[str, dict[str, tuple[float, ...]]]:
    """{metric: {person: (numerator, denominator, pre numerator, pre denominator)}}."""
    found = metric_person_values(
        experiment=experiment, metric_keys=ALL_METRICS, until=UNTIL, **options
    )
    return {
        key: {
            v.person: (v.numerator, v.denominator, v.pre_numerator, v.pre_denominator)
            for v in values
        }
        for key, values in found.items()
    }


@pytest.fixture
def seeded() -> dict[str, Any]:
    """Three persons exposed at T0 (an anonymous one, an account with two devices, a
    conflicted one), one exposed without events, and noise each metric must ignore."""
    experiment = experiment_with_variants()
    control, treatment = experiment.variants.order_by("position")
    shoe, hat, bag = ItemFactory.create_batch(3)

    anonymous = VisitorFactory.create()
    ExposureFactory.create(variant=control, visitor=anonymous, first_exposed_at=T0)
    event(anonymous, EventType.IMPRESSION, -48)  # pre-period
    event(anonymous, EventType.CLICK, -47)
    event(anonymous, EventType.PURCHASE, -46, value="10.00")
    event(anonymous, EventType.VIEW, -45, item=shoe, session="s0")
    event(anonymous, EventType.IMPRESSION, -24 * 30)  # before the pre-period
    for hour in range(4):
        event(anonymous, EventType.IMPRESSION, hour)
    event(anonymous, EventType.CLICK, 1)
    event(anonymous, EventType.CLICK, 2, placement="item_similar")  # another placement
    event(anonymous, EventType.IMPRESSION, 2, placement="home_trending")
    event(anonymous, EventType.CLICK, 3, is_bot=True)  # a bot's event
    event(anonymous, EventType.PURCHASE, 5, value="20.00")
    event(anonymous, EventType.PURCHASE, 6, value="5.50")
    event(anonymous, EventType.PURCHASE, 24 * 8, value="99.00")  # after `until`
    for item, session in [(shoe, "s1"), (hat, "s1"), (shoe, "s1"), (bag, "s2")]:
        event(anonymous, EventType.VIEW, 1, item=item, session=session)
    event(anonymous, EventType.VIEW, 1, item=hat, session="")  # no session: not counted

    user = UserFactory.create()
    account = VisitorFactory.create(user=user)
    device = VisitorFactory.create(merged_into=account)  # logged in on a second device
    ExposureFactory.create(
        variant=treatment, visitor=device, person=f"user:{user.pk}", user=user, first_exposed_at=T0
    )
    event(account, EventType.IMPRESSION, 1)
    event(device, EventType.IMPRESSION, 2)
    event(device, EventType.CLICK, 2)
    event(account, EventType.VIEW, 3, item=shoe, session="a1")
    event(device, EventType.IMPRESSION, -1)

    conflicted = VisitorFactory.create()
    ExposureFactory.create(
        variant=treatment,
        visitor=conflicted,
        first_exposed_at=T0,
        conflict=True,
        conflict_variant=control,
    )
    event(conflicted, EventType.PURCHASE, 1, value="7.00")

    idle = VisitorFactory.create()
    ExposureFactory.create(variant=control, visitor=idle, first_exposed_at=T0)
    stranger = VisitorFactory.create()  # never exposed
    event(stranger, EventType.CLICK, 1)
    return {
        "experiment": experiment,
        "anonymous": f"visitor:{anonymous.pk}",
        "account": f"user:{user.pk}",
        "conflicted": f"visitor:{conflicted.pk}",
        "idle": f"visitor:{idle.pk}",
    }


def test_per_person_values_after_and_before_exposure(
    seeded: dict[str, Any], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(1):
        found = numbers(seeded["experiment"])

    anonymous, account, idle = seeded["anonymous"], seeded["account"], seeded["idle"]
    assert found["ctr"] == {
        anonymous: (1, 4, 1, 1),
        account: (1, 2, 0, 1),
        idle: (0, 0, 0, 0),
    }
    assert found["conversion"] == {
        anonymous: (1, 1, 1, 1),
        account: (0, 1, 0, 1),
        idle: (0, 1, 0, 1),
    }
    assert found["revenue_per_visitor"] == {
        anonymous: (25.5, 1, 10, 1),
        account: (0, 1, 0, 1),
        idle: (0, 1, 0, 1),
    }
    assert found["items_per_session"] == {
        anonymous: (3, 2, 1, 1),
        account: (1, 1, 0, 0),
        idle: (0, 0, 0, 0),
    }


def test_values_carry_the_variant_and_the_ratio(seeded: dict[str, Any]) -> None:
    values = metric_person_values(
        experiment=seeded["experiment"], metric_keys=["ctr"], until=UNTIL
    )["ctr"]

    by_person = {v.person: v for v in values}
    assert by_person[seeded["anonymous"]].variant == "control"
    assert by_person[seeded["account"]].variant == "v1"
    assert by_person[seeded["anonymous"]].value == 0.25
    assert by_person[seeded["anonymous"]].pre_value == 1.0
    assert by_person[seeded["idle"]].value is None


def test_conflicted_persons_only_when_asked(seeded: dict[str, Any]) -> None:
    found = numbers(seeded["experiment"], include_conflicts=True)

    assert found["revenue_per_visitor"][seeded["conflicted"]] == (7, 1, 0, 1)
    assert seeded["conflicted"] not in numbers(seeded["experiment"])["conversion"]


def test_a_shorter_pre_period_sees_less(seeded: dict[str, Any]) -> None:
    found = numbers(seeded["experiment"], pre_period=timedelta(hours=46, minutes=30))

    # Only the pre-period purchase (46 h before) and the view (45 h before) remain.
    assert found["ctr"][seeded["anonymous"]] == (1, 4, 0, 0)
    assert found["revenue_per_visitor"][seeded["anonymous"]] == (25.5, 1, 10, 1)


def test_page_level_experiment_counts_every_section_of_its_page() -> None:
    experiment = experiment_with_variants(placement="home_layout")
    visitor = VisitorFactory.create()
    ExposureFactory.create(
        variant=experiment.variants.first(), visitor=visitor, first_exposed_at=T0
    )
    event(visitor, EventType.IMPRESSION, 1, placement="home_trending")
    event(visitor, EventType.CLICK, 1, placement="home_top_picks")
    event(visitor, EventType.CLICK, 1, placement="item_similar")

    assert numbers(experiment)["ctr"] == {f"visitor:{visitor.pk}": (1, 1, 0, 0)}


def test_other_experiments_exposures_are_not_counted(seeded: dict[str, Any]) -> None:
    other = experiment_with_variants()
    ExposureFactory.create(variant=other.variants.first(), first_exposed_at=T0)

    assert set(numbers(seeded["experiment"])["ctr"]) == {
        seeded["anonymous"],
        seeded["account"],
        seeded["idle"],
    }


def test_registry_defines_each_metric_once_for_the_models() -> None:
    assert list(METRICS) == ALL_METRICS
    assert [key for key, _ in metric_choices()] == ALL_METRICS
    assert {m.key: m.kind for m in METRICS.values()} == {
        "ctr": MetricKind.RATE,
        "conversion": MetricKind.MEAN,
        "revenue_per_visitor": MetricKind.MEAN,
        "items_per_session": MetricKind.RATE,
    }
    assert metric_person_values(experiment=experiment_with_variants(), metric_keys=[]) == {}


@pytest.mark.parametrize(
    ("guardrails", "message"),
    [(["bounce"], "Unknown metrics: bounce"), (["ctr"], "cannot also be a guardrail")],
)
def test_guardrails_must_be_other_known_metrics(guardrails: list[str], message: str) -> None:
    experiment = experiment_with_variants(primary_metric="ctr", guardrail_metrics=guardrails)

    with pytest.raises(ValidationError, match=message):
        experiment.full_clean()
