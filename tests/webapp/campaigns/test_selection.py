"""Which campaign and creative a visitor gets: priority, schedule, segment, holdout, caps."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.factories import UserFactory, VisitorFactory
from tests.webapp.campaigns.conftest import campaign_with
from tests.webapp.segments.factories import segment_with
from webapp.campaigns.models import CampaignAssignment, CampaignEvent, CampaignStatus, Creative
from webapp.campaigns.selectors import (
    campaign_for_slot,
    campaigns_active_cached,
    campaigns_cache_clear,
)
from webapp.campaigns.services import campaign_slot_record
from webapp.models import Visitor

pytestmark = pytest.mark.django_db

MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def shown(visitor: Visitor, placement: str = "home_hero", now: datetime | None = None) -> Any:
    """Decide and record as a render does; the creative's headline or "holdout"/None."""
    decision = campaign_for_slot(visitor=visitor, placement=placement, now=now)
    if decision is None:
        return None
    campaign_slot_record(decision=decision, visitor=visitor, now=now)
    return "holdout" if decision.creative is None else decision.creative.headline


def test_highest_priority_wins_then_lowest_pk() -> None:
    campaign_with({"headline": "low"}, priority=1)
    campaign_with({"headline": "high"}, priority=5)
    campaign_with({"headline": "high, later"}, priority=5, starts_at=MONDAY_NOON)
    assert shown(VisitorFactory.create(), now=MONDAY_NOON) == "high"


def test_other_placements_and_inactive_campaigns_are_ignored() -> None:
    campaign_with({"headline": "banner"}, placement="site_banner")
    campaign_with({"headline": "draft"}, status=CampaignStatus.DRAFT, priority=9)
    campaign_with({"headline": "paused"}, status=CampaignStatus.PAUSED, priority=9)
    visitor = VisitorFactory.create()
    assert shown(visitor) is None
    assert shown(visitor, "site_banner") == "banner"


@pytest.mark.parametrize(
    ("fields", "now", "expected"),
    [
        ({"days": [0]}, MONDAY_NOON, "on"),
        ({"days": [1, 2]}, MONDAY_NOON, None),
        ({"hour_from": 12, "hour_to": 13}, MONDAY_NOON, "on"),
        ({"hour_from": 9, "hour_to": 12}, MONDAY_NOON, None),
        ({"starts_at": MONDAY_NOON + timedelta(minutes=1)}, MONDAY_NOON, None),
        ({"ends_at": MONDAY_NOON}, MONDAY_NOON, None),
        ({"ends_at": MONDAY_NOON + timedelta(seconds=1)}, MONDAY_NOON, "on"),
    ],
)
def test_schedule_days_hours_and_dates(
    fields: dict[str, Any], now: datetime, expected: Any
) -> None:
    campaign_with({"headline": "on"}, **fields)
    assert shown(VisitorFactory.create(), now=now) == expected


def test_hours_are_read_in_the_campaigns_timezone(settings: Any) -> None:
    settings.CAMPAIGNS_TIMEZONE = "Asia/Tokyo"  # 12:00 UTC is 21:00 in Tokyo
    campaign_with({"headline": "evening"}, hour_from=20, hour_to=22)
    assert shown(VisitorFactory.create(), now=MONDAY_NOON) == "evening"


def test_segment_targeting_falls_through_to_the_next_campaign() -> None:
    members = segment_with({"attribute": "logged_in", "operator": "eq", "value": "yes"})
    campaign_with({"headline": "members"}, segment=members, priority=9)
    campaign_with({"headline": "everyone"}, priority=1)
    member = VisitorFactory.create(user=UserFactory.create())
    assert shown(member) == "members"
    assert shown(VisitorFactory.create()) == "everyone"


def test_holdout_never_sees_content_and_is_stable() -> None:
    campaign = campaign_with({"headline": "A"}, holdout_percent=50)
    visitors = VisitorFactory.create_batch(60)
    first = [shown(v) for v in visitors]
    Creative.objects.filter(campaign=campaign).update(headline="A2")  # content edits
    again = [shown(v) for v in visitors]
    assert first.count("holdout") > 10 and first.count("A") > 10
    assert [x == "holdout" for x in first] == [x == "holdout" for x in again]
    held = CampaignAssignment.objects.filter(campaign=campaign, creative__isnull=True).count()
    assert held == first.count("holdout")
    # The holdout's renders are views without a creative: nothing was shown.
    assert CampaignEvent.objects.filter(creative__isnull=True).count() == 2 * held


def test_frequency_cap_stops_after_the_limit_within_the_window() -> None:
    campaign_with({"headline": "capped"}, cap_views=2, cap_days=1, priority=5)
    campaign_with({"headline": "fallback"}, priority=1)
    visitor = VisitorFactory.create()
    now = timezone.now()
    assert [shown(visitor, now=now) for _ in range(3)] == ["capped", "capped", "fallback"]
    assert shown(visitor, now=now + timedelta(days=1, seconds=1)) == "capped"


def test_assignment_is_sticky_when_weights_change() -> None:
    campaign = campaign_with({"headline": "A", "weight": 50}, {"headline": "B", "weight": 50})
    visitors = VisitorFactory.create_batch(40)
    before = [shown(v) for v in visitors]
    assert set(before) == {"A", "B"}
    Creative.objects.filter(campaign=campaign, headline="A").update(weight=0)
    Creative.objects.filter(campaign=campaign, headline="B").update(weight=100)
    campaigns_cache_clear()
    assert [shown(v) for v in visitors] == before
    assert shown(VisitorFactory.create()) == "B"  # newcomers follow the new weights


def test_the_account_keeps_its_creative_across_devices() -> None:
    campaign_with({"headline": "A", "weight": 50}, {"headline": "B", "weight": 50})
    user = UserFactory.create()
    device = VisitorFactory.create(user=user)
    first, seen = shown(device), []
    for _ in range(5):
        Visitor.objects.filter(pk=device.pk).update(user=None)  # the account moves on
        device = VisitorFactory.create(user=user)
        seen.append(shown(device))
    assert seen == [first] * 5
    assert CampaignAssignment.objects.count() == 1


def test_no_visitor_or_a_bot_gets_nothing() -> None:
    campaign_with({"headline": "A"})
    assert shown(VisitorFactory.create(is_bot=True)) is None
    assert campaign_for_slot(visitor=None, placement="home_hero") is None
    assert not CampaignAssignment.objects.exists()


def test_nothing_active_costs_no_query(django_assert_num_queries: Any) -> None:
    campaign_with({"headline": "elsewhere"}, placement="site_banner")
    visitor = VisitorFactory.create()
    campaigns_active_cached()  # the process snapshot, loaded once per 30 s

    with django_assert_num_queries(0):
        assert campaign_for_slot(visitor=visitor, placement="home_hero") is None


def test_a_live_campaign_costs_one_query_to_decide(django_assert_num_queries: Any) -> None:
    campaign_with({"headline": "A"})
    visitor = VisitorFactory.create()
    campaigns_active_cached()

    with django_assert_num_queries(1):  # the stored assignment
        assert campaign_for_slot(visitor=visitor, placement="home_hero") is not None
