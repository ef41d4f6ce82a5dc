"""Each attribute, AND/OR, against real visitors, profiles and events in Postgres."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.factories import (
    CategoryFactory,
    InteractionFactory,
    ItemFactory,
    UserFactory,
    VisitorFactory,
)
from tests.webapp.segments.factories import VisitorProfileFactory, segment_with
from webapp.models import EventType, Visitor
from webapp.segments.models import Segment, SegmentMatch
from webapp.segments.selectors import RequestContext, segments_of_visitor
from webapp.segments.services import visitor_audiences_set, visitor_context_update

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 29, 8, 30, tzinfo=UTC)  # a Sunday; 09:30 in Paris


def member(visitor: Visitor, segment: Segment, now: datetime | None = None) -> bool:
    context = RequestContext(now=now or timezone.now())
    return segment.pk in segments_of_visitor(visitor=visitor, request_context=context)


def with_profile(**fields: object) -> Visitor:
    visitor = VisitorFactory.create()
    VisitorProfileFactory.create(visitor=visitor, **fields)
    return visitor


def test_new_and_returning_visitors() -> None:
    new = segment_with({"attribute": "visitor_type", "operator": "eq", "value": "new"})
    returning = segment_with({"attribute": "visitor_type", "operator": "eq", "value": "returning"})
    no_profile, first, third = VisitorFactory.create(), with_profile(), with_profile(visit_count=3)
    assert [member(v, new) for v in (no_profile, first, third)] == [True, True, False]
    assert [member(v, returning) for v in (no_profile, first, third)] == [False, False, True]


def test_visit_count() -> None:
    segment = segment_with({"attribute": "visit_count", "operator": "gte", "value": "3"})
    assert not member(VisitorFactory.create(), segment)
    assert not member(with_profile(visit_count=2), segment)
    assert member(with_profile(visit_count=3), segment)


def test_logged_in() -> None:
    segment = segment_with({"attribute": "logged_in", "operator": "eq", "value": "yes"})
    anonymous = segment_with({"attribute": "logged_in", "operator": "eq", "value": "no"})
    account = VisitorFactory.create(user=UserFactory.create())
    assert member(account, segment) and not member(account, anonymous)
    visitor = VisitorFactory.create()
    assert member(visitor, anonymous) and not member(visitor, segment)


def test_device_type() -> None:
    handheld = segment_with(
        {"attribute": "device_type", "operator": "in", "value": "mobile,tablet"}
    )
    not_desktop = segment_with({"attribute": "device_type", "operator": "ne", "value": "desktop"})
    phone, desktop = with_profile(device_type="mobile"), with_profile(device_type="desktop")
    assert member(phone, handheld) and member(phone, not_desktop)
    assert not member(desktop, handheld) and not member(desktop, not_desktop)
    assert member(VisitorFactory.create(), not_desktop)  # unknown device: not a desktop


def test_referrer_and_utm() -> None:
    from_search = segment_with(
        {"attribute": "referrer_domain", "operator": "contains", "value": "google"}
    )
    came_first = segment_with(
        {"attribute": "first_referrer_domain", "operator": "eq", "value": "www.news.example"}
    )
    campaign = segment_with(
        {"attribute": "utm_source", "operator": "eq", "value": "Newsletter"},
        {"attribute": "utm_campaign", "operator": "in", "value": "spring,summer"},
    )
    tagged = segment_with({"attribute": "utm_medium", "operator": "is_set", "value": ""})
    visitor = with_profile(
        referrer_domain="google.fr",
        first_referrer_domain="news.example",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="summer",
    )
    other = with_profile(referrer_domain="bing.com", utm_source="newsletter", utm_campaign="fall")
    assert all(member(visitor, s) for s in (from_search, came_first, campaign, tagged))
    assert not any(member(other, s) for s in (from_search, came_first, campaign, tagged))


def test_country() -> None:
    segment = segment_with({"attribute": "country", "operator": "in", "value": "fr, de"})
    elsewhere = segment_with({"attribute": "country", "operator": "ne", "value": "FR"})
    french, american = with_profile(country="FR"), with_profile(country="US")
    assert member(french, segment) and not member(french, elsewhere)
    assert member(american, elsewhere) and not member(american, segment)


@override_settings(SEGMENTS_TIME_ZONE="Europe/Paris")
def test_time_of_day_and_day_of_week_in_the_configured_zone() -> None:
    office = segment_with({"attribute": "hour_of_day", "operator": "in", "value": "9-17"})
    weekend = segment_with({"attribute": "day_of_week", "operator": "in", "value": "sat-sun"})
    night = segment_with({"attribute": "hour_of_day", "operator": "not_in", "value": "7-22"})
    visitor = VisitorFactory.create()
    assert member(visitor, office, NOW) and member(visitor, weekend, NOW)
    assert not member(visitor, night, NOW)
    # 08:30 UTC is 09:30 in Paris but not yet office hours in UTC: evaluated per request.
    with override_settings(SEGMENTS_TIME_ZONE="UTC"):
        assert not member(visitor, office, NOW)
    monday_night = NOW + timedelta(hours=15)  # Sunday 23:30 UTC = Monday 00:30 in Paris
    assert not member(visitor, weekend, monday_night) and member(visitor, night, monday_night)


def test_viewed_category_with_sub_categories_and_last_days() -> None:
    films = CategoryFactory.create(slug="films")
    horror = CategoryFactory.create(slug="horror", parent=films)
    books = CategoryFactory.create(slug="books")
    recent = segment_with(
        {"attribute": "viewed_category", "operator": "in", "value": "films", "last_days": 7}
    )
    never = segment_with({"attribute": "viewed_category", "operator": "not_in", "value": "films"})
    fan, old_fan, reader = VisitorFactory.create(), VisitorFactory.create(), VisitorFactory.create()
    InteractionFactory.create(visitor=fan, item=ItemFactory.create(category=horror))
    InteractionFactory.create(
        visitor=old_fan,
        item=ItemFactory.create(category=films),
        timestamp=timezone.now() - timedelta(days=30),
    )
    InteractionFactory.create(visitor=reader, item=ItemFactory.create(category=books))
    InteractionFactory.create(
        visitor=reader, item=ItemFactory.create(category=films), event_type=EventType.PURCHASE
    )
    assert [member(v, recent) for v in (fan, old_fan, reader)] == [True, False, False]
    assert [member(v, never) for v in (fan, old_fan, reader)] == [False, False, True]


def test_purchased_category_and_purchase_count() -> None:
    films = CategoryFactory.create(slug="films")
    bought_films = segment_with(
        {"attribute": "purchased_category", "operator": "in", "value": "films"}
    )
    loyal = segment_with(
        {"attribute": "purchase_count", "operator": "gte", "value": "2", "last_days": 30}
    )
    buyer, viewer = VisitorFactory.create(), VisitorFactory.create()
    for days in (1, 2, 60):
        InteractionFactory.create(
            visitor=buyer,
            item=ItemFactory.create(category=films),
            event_type=EventType.PURCHASE,
            timestamp=timezone.now() - timedelta(days=days),
        )
    InteractionFactory.create(visitor=viewer, item=ItemFactory.create(category=films))
    assert member(buyer, bought_films) and member(buyer, loyal)
    assert not member(viewer, bought_films) and not member(viewer, loyal)


def test_cart_value_counts_add_to_cart_since_the_last_purchase() -> None:
    big_cart = segment_with({"attribute": "cart_value", "operator": "gt", "value": "50"})
    empty_cart = segment_with({"attribute": "cart_value", "operator": "eq", "value": "0"})
    visitor, now = VisitorFactory.create(), timezone.now()

    def add(price: str, minutes_ago: int, event: str = EventType.ADD_TO_CART) -> None:
        InteractionFactory.create(
            visitor=visitor,
            item=ItemFactory.create(list_price=Decimal(price)),
            event_type=event,
            timestamp=now - timedelta(minutes=minutes_ago),
        )

    add("100.00", 30)  # bought below: no longer in the cart
    add("1.00", 20, EventType.PURCHASE)
    add("30.00", 10)
    add("25.50", 5)
    assert member(visitor, big_cart)  # 55.50
    assert member(VisitorFactory.create(), empty_cart)
    assert not member(visitor, empty_cart)


def test_custom_context_key() -> None:
    active = segment_with(
        {"attribute": "context", "key": "activity_level", "operator": "eq", "value": "high"}
    )
    walker = segment_with(
        {"attribute": "context", "key": "steps_today", "operator": "gte", "value": "8000"}
    )
    sent = segment_with({"attribute": "context", "key": "steps_today", "operator": "is_set"})
    calm = segment_with(
        {"attribute": "context", "key": "activity_level", "operator": "ne", "value": "high"}
    )
    sporty, lazy, silent = VisitorFactory.create(), VisitorFactory.create(), VisitorFactory.create()
    visitor_context_update(visitor=sporty, values={"activity_level": "high", "steps_today": 12000})
    # A text "9000" is not a number: numeric comparisons only match numbers.
    visitor_context_update(visitor=lazy, values={"activity_level": "low", "steps_today": "9000"})
    assert [member(v, active) for v in (sporty, lazy, silent)] == [True, False, False]
    assert [member(v, walker) for v in (sporty, lazy, silent)] == [True, False, False]
    assert [member(v, sent) for v in (sporty, lazy, silent)] == [True, True, False]
    assert [member(v, calm) for v in (sporty, lazy, silent)] == [False, True, False]


def test_learned_audience() -> None:
    cluster = segment_with({"attribute": "audience", "operator": "in", "value": "k3,k7"})
    visitors = [VisitorFactory.create() for _ in range(3)]
    with_profile_already = visitors[0]
    VisitorProfileFactory.create(visitor=with_profile_already, visit_count=4)
    visitor_audiences_set(audiences={visitors[0].pk: "k3", visitors[1].pk: "k1"})
    assert [member(v, cluster) for v in visitors] == [True, False, False]
    with_profile_already.profile.refresh_from_db()
    assert with_profile_already.profile.visit_count == 4  # the upsert kept the visits


def test_all_means_and_within_a_group_or_across_groups() -> None:
    segment = segment_with(
        {"group": 1, "attribute": "device_type", "operator": "eq", "value": "mobile"},
        {"group": 1, "attribute": "country", "operator": "eq", "value": "FR"},
        {"group": 2, "attribute": "visit_count", "operator": "gte", "value": "10"},
        match=SegmentMatch.ALL,
    )
    assert member(with_profile(device_type="mobile", country="FR"), segment)
    assert not member(with_profile(device_type="mobile", country="DE"), segment)
    assert member(with_profile(device_type="desktop", country="DE", visit_count=12), segment)


def test_any_means_or_within_a_group_and_across_groups() -> None:
    segment = segment_with(
        {"group": 1, "attribute": "device_type", "operator": "eq", "value": "mobile"},
        {"group": 1, "attribute": "country", "operator": "eq", "value": "FR"},
        {"group": 2, "attribute": "visit_count", "operator": "gte", "value": "10"},
        match=SegmentMatch.ANY,
    )
    assert member(with_profile(device_type="desktop", country="FR", visit_count=10), segment)
    assert not member(with_profile(device_type="mobile", country="FR", visit_count=2), segment)
    assert not member(with_profile(device_type="desktop", country="DE", visit_count=11), segment)


def test_inactive_segments_and_no_visitor_match_nobody() -> None:
    segment = segment_with({"attribute": "visit_count", "operator": "gte", "value": "0"})
    visitor = VisitorFactory.create()
    assert member(visitor, segment)
    assert segments_of_visitor(visitor=None) == frozenset()
    segment.is_active = False
    segment.save()
    assert not member(visitor, segment)
