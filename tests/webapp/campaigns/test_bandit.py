"""The bandit reweights only once every creative has its minimum, and keeps the floor."""

from typing import Any

import pytest
from django.utils import timezone

from tests.factories import VisitorFactory
from tests.webapp.campaigns.conftest import campaign_with
from webapp.campaigns.models import (
    Campaign,
    CampaignAssignment,
    CampaignEvent,
    CampaignEventKind,
    Creative,
    CreativeWeightHistory,
)
from webapp.campaigns.selectors import campaign_for_slot, campaigns_cache_clear
from webapp.campaigns.services import campaign_bandit_update, campaign_slot_record
from webapp.campaigns.tasks import campaigns_bandit_update_all
from webapp.models import Visitor

pytestmark = pytest.mark.django_db


def traffic(campaign: Campaign, creative: Creative, *, persons: int, clickers: int) -> None:
    """`persons` assigned to the creative, of whom `clickers` clicked its link."""
    now = timezone.now()
    CampaignAssignment.objects.bulk_create(
        CampaignAssignment(
            campaign=campaign, creative=creative, person=f"p{creative.pk}-{i}", assigned_at=now
        )
        for i in range(persons)
    )
    CampaignEvent.objects.bulk_create(
        CampaignEvent(
            campaign=campaign,
            creative=creative,
            person=f"p{creative.pk}-{i}",
            kind=CampaignEventKind.CLICK,
            at=now,
        )
        for i in range(clickers)
    )


@pytest.fixture
def bandit() -> tuple[Campaign, Creative, Creative]:
    campaign = campaign_with(
        {"headline": "good", "weight": 50},
        {"headline": "bad", "weight": 50},
        bandit=True,
        bandit_min_visitors=50,
        bandit_min_share=0.1,
    )
    good, bad = campaign.creatives.order_by("position")
    return campaign, good, bad


def test_no_reweighting_before_every_creative_has_the_minimum(bandit: Any) -> None:
    campaign, good, bad = bandit
    traffic(campaign, good, persons=200, clickers=100)
    traffic(campaign, bad, persons=49, clickers=1)

    allocation = campaign_bandit_update(campaign_id=campaign.pk, seed=1)

    assert allocation is not None and not allocation.updated
    assert set(Creative.objects.values_list("bandit_weight", flat=True)) == {None}
    history = CreativeWeightHistory.objects.filter(campaign=campaign)
    assert [h.updated for h in history] == [False, False]


def test_reweighting_favours_the_better_creative_and_keeps_the_floor(bandit: Any) -> None:
    campaign, good, bad = bandit
    traffic(campaign, good, persons=200, clickers=100)
    traffic(campaign, bad, persons=200, clickers=10)

    assert campaigns_bandit_update_all() == 1

    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.bandit_weight == pytest.approx(0.9)
    assert bad.bandit_weight == pytest.approx(0.1)  # the minimum share, not zero
    assert CreativeWeightHistory.objects.filter(campaign=campaign, updated=True).count() == 2


def creative_pk(visitor: Visitor) -> int | None:
    """The creative the visitor is served now (recorded as a render would)."""
    decision = campaign_for_slot(visitor=visitor, placement="home_hero")
    assert decision is not None and decision.creative is not None  # no holdout here
    campaign_slot_record(decision=decision, visitor=visitor)
    return decision.creative.pk


def test_new_persons_follow_the_bandit_weights_and_old_ones_stay(bandit: Any) -> None:
    campaign, good, bad = bandit
    old = VisitorFactory.create_batch(30)
    before = [creative_pk(v) for v in old]
    assert set(before) == {good.pk, bad.pk}  # 50/50 at first
    traffic(campaign, good, persons=200, clickers=100)
    traffic(campaign, bad, persons=200, clickers=10)

    campaign_bandit_update(campaign_id=campaign.pk, seed=1)
    campaigns_cache_clear()

    assert [creative_pk(v) for v in old] == before
    fresh = [creative_pk(v) for v in VisitorFactory.create_batch(200)]
    assert 0.8 < fresh.count(good.pk) / 200 < 0.97  # 90 % expected


def test_a_campaign_without_bandit_is_left_alone() -> None:
    campaign = campaign_with({"headline": "A", "weight": 50}, {"headline": "B", "weight": 50})
    assert campaign_bandit_update(campaign_id=campaign.pk) is None
    assert not CreativeWeightHistory.objects.exists()


def test_the_periodic_task_is_scheduled_on_the_default_queue() -> None:
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    from webapp.celery import app

    call_command("setup_schedules")

    schedule = PeriodicTask.objects.get(task=campaigns_bandit_update_all.name)
    assert schedule.interval is not None
    assert app.amqp.router.route({}, campaigns_bandit_update_all.name)["queue"].name == "default"
