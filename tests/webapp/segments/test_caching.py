"""Per-visitor caching and its invalidation, query counts, the time budget, the preview."""

import logging
import threading
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import CategoryFactory, InteractionFactory, ItemFactory, VisitorFactory
from tests.webapp.segments.factories import (
    SegmentConditionFactory,
    VisitorProfileFactory,
    segment_with,
)
from webapp.models import EventType, Visitor
from webapp.segments.models import SegmentCondition, SegmentMatch
from webapp.segments.selectors import (
    definitions_version,
    known_visitors,
    segment_preview,
    segments_live,
    segments_of_visitor,
)
from webapp.segments.services import visitor_context_update, visitor_profile_visit_start
from webapp.segments.visits import VisitFacts

pytestmark = pytest.mark.django_db


def visitor_selects(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if 'FROM "webapp_visitor"' in q["sql"]]


def many_segments() -> None:
    CategoryFactory.create(slug="films")
    segment_with(
        {"attribute": "visit_count", "operator": "gte", "value": "2"},
        {"group": 2, "attribute": "device_type", "operator": "eq", "value": "mobile"},
    )
    segment_with(
        {"attribute": "viewed_category", "operator": "in", "value": "films", "last_days": 7},
        {"attribute": "purchase_count", "operator": "lt", "value": "3"},
        {"attribute": "cart_value", "operator": "gt", "value": "10"},
        {"attribute": "context", "key": "level", "operator": "gt", "value": "3"},
        {"attribute": "hour_of_day", "operator": "in", "value": "0-23"},
        match=SegmentMatch.ANY,
    )


def test_one_select_evaluates_every_condition_of_every_segment() -> None:
    many_segments()
    visitor = VisitorFactory.create()
    segments_live(definitions_version())  # the definitions are loaded once per process
    with CaptureQueriesContext(connection) as queries:
        segments_of_visitor(visitor=visitor)
    assert len(visitor_selects(queries)) == 1
    # Cached: one read of the shared cache (version and entry together), nothing else.
    with CaptureQueriesContext(connection) as queries:
        segments_of_visitor(visitor=visitor)
    assert len(queries.captured_queries) == 1
    assert "platform_cache" in queries.captured_queries[0]["sql"]


def test_the_query_count_does_not_grow_with_segments() -> None:
    many_segments()
    visitor = VisitorFactory.create()
    segments_live(definitions_version())
    with CaptureQueriesContext(connection) as few:
        segments_of_visitor(visitor=visitor)
    many_segments_more = [
        segment_with({"attribute": "country", "operator": "eq", "value": f"F{c}"})
        for c in "ABCDEFGH"
    ]
    assert many_segments_more
    segments_live(definitions_version())
    visitor = Visitor.objects.get(pk=visitor.pk)
    with CaptureQueriesContext(connection) as many:
        segments_of_visitor(visitor=visitor)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_editing_a_segment_invalidates_cached_memberships() -> None:
    visitor = VisitorFactory.create()
    VisitorProfileFactory.create(visitor=visitor, visit_count=3)
    segment = segment_with({"attribute": "visit_count", "operator": "gte", "value": "5"})
    assert segment.pk not in segments_of_visitor(visitor=visitor)
    condition = segment.conditions.get()
    condition.value = "2"
    condition.save()
    assert segment.pk in segments_of_visitor(visitor=visitor)
    SegmentCondition.objects.filter(pk=condition.pk).delete()  # a queryset delete: signals too
    SegmentConditionFactory.create(segment=segment, attribute="country", operator="eq", value="FR")
    assert segment.pk not in segments_of_visitor(visitor=visitor)


def test_cached_facts_live_until_a_new_visit_or_new_context() -> None:
    visitor = VisitorFactory.create()
    segment = segment_with({"attribute": "visit_count", "operator": "gte", "value": "2"})
    context = segment_with(
        {"attribute": "context", "key": "tier", "operator": "eq", "value": "gold"}
    )
    assert segments_of_visitor(visitor=visitor) == frozenset()
    VisitorProfileFactory.create(visitor=visitor, visit_count=1)
    # A write the segments code did not make is seen when the 60 s entry expires ...
    VisitorProfile = type(visitor.profile)
    VisitorProfile.objects.filter(pk=visitor.pk).update(visit_count=5)
    assert segments_of_visitor(visitor=visitor) == frozenset()
    # ... while a new visit and posted context drop the entry at once.
    visitor_profile_visit_start(visitor=visitor, facts=VisitFacts())
    assert segments_of_visitor(visitor=visitor) == {segment.pk}
    visitor_context_update(visitor=visitor, values={"tier": "gold"})
    assert segments_of_visitor(visitor=visitor) == {segment.pk, context.pk}


def test_a_spent_budget_means_no_segment_and_a_warning(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    segment = segment_with({"attribute": "visit_count", "operator": "gte", "value": "0"})
    visitor = VisitorFactory.create()
    settings.SEGMENTS_BUDGET_MS = 1e-9
    with caplog.at_level(logging.WARNING, logger="webapp.segments.selectors"):
        assert segments_of_visitor(visitor=visitor) == frozenset()
    assert "budget of 1e-09 ms exceeded" in caplog.text
    settings.SEGMENTS_BUDGET_MS = 5000.0
    assert segments_of_visitor(visitor=visitor) == {segment.pk}  # the fallback was not cached


def test_a_slow_query_is_cancelled_at_the_budget(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection locks the profile table: our SELECT waits, the timeout cancels it."""
    segment_with({"attribute": "device_type", "operator": "eq", "value": "mobile"})
    visitor = VisitorFactory.create()
    segments_live(definitions_version())
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(**params) as other:
            other.execute("SET lock_timeout = '5s'")
            other.execute("LOCK TABLE segments_visitorprofile IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(10)
            other.rollback()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert locked.wait(10)
        settings.SEGMENTS_BUDGET_MS = 150.0
        started = timezone.now()
        with caplog.at_level(logging.WARNING, logger="webapp.segments.selectors"):
            assert segments_of_visitor(visitor=visitor) == frozenset()
        assert timezone.now() - started < timedelta(seconds=3)
        assert "statement timeout" in caplog.text
    finally:
        release.set()
        thread.join()


def test_preview_count_equals_per_visitor_evaluation() -> None:
    films = CategoryFactory.create(slug="films")
    segments = [
        segment_with(
            {"attribute": "visit_count", "operator": "gte", "value": "2"},
            {"attribute": "device_type", "operator": "ne", "value": "desktop"},
            {"group": 2, "attribute": "viewed_category", "operator": "in", "value": "films"},
        ),
        segment_with(
            {"attribute": "country", "operator": "in", "value": "FR,DE"},
            {"attribute": "cart_value", "operator": "gte", "value": "10"},
            {"group": 2, "attribute": "logged_in", "operator": "eq", "value": "no"},
            match=SegmentMatch.ANY,
        ),
        segment_with(
            {"attribute": "visitor_type", "operator": "eq", "value": "new"},
            {"attribute": "context", "key": "level", "operator": "lt", "value": "5"},
        ),
    ]
    devices, countries = ["mobile", "desktop", "tablet"], ["FR", "US", "DE", ""]
    visitors = [VisitorFactory.create() for _ in range(24)]
    for index, visitor in enumerate(visitors):
        if index % 5 == 4:
            continue  # some visitors have no profile at all
        VisitorProfileFactory.create(
            visitor=visitor,
            visit_count=index % 4,
            device_type=devices[index % 3],
            country=countries[index % 4],
            context={"level": index % 8} if index % 2 else {"level": "high"},
        )
        if index % 3 == 0:
            InteractionFactory.create(visitor=visitor, item=ItemFactory.create(category=films))
        if index % 4 == 1:
            InteractionFactory.create(
                visitor=visitor, item=ItemFactory.create(), event_type=EventType.ADD_TO_CART
            )
    assert known_visitors().count() == len(visitors)
    for segment in segments:
        evaluated = sum(segment.pk in segments_of_visitor(visitor=v) for v in visitors)
        assert 0 < evaluated < len(visitors), segment  # the set tells members apart
        assert segment_preview(segment=segment).count == evaluated


def test_preview_leaves_request_time_conditions_out_and_says_so() -> None:
    segment = segment_with(
        {"attribute": "visit_count", "operator": "gte", "value": "2"},
        {"attribute": "hour_of_day", "operator": "in", "value": "3"},
    )
    VisitorProfileFactory.create(visitor=VisitorFactory.create(), visit_count=2)
    VisitorProfileFactory.create(visitor=VisitorFactory.create(), visit_count=1)
    preview = segment_preview(segment=segment)
    assert preview.count == 1
    assert preview.request_time_conditions == ("Hour of day (e.g. 9-17)",)
    assert "evaluated at request time" in preview.describe()


def test_a_stored_invalid_condition_skips_its_segment(caplog: pytest.LogCaptureFixture) -> None:
    good = segment_with({"attribute": "visit_count", "operator": "gte", "value": "0"})
    bad = segment_with({"attribute": "visit_count", "operator": "gte", "value": "lots"})
    with caplog.at_level(logging.ERROR, logger="webapp.segments.selectors"):
        assert segments_of_visitor(visitor=VisitorFactory.create()) == {good.pk}
    assert f"(#{bad.pk}) skipped" in caplog.text
