"""After a visitor's events the worker renders their answer, so the next request hits."""

import uuid
from typing import Any

import pytest
from django.core.cache import caches
from django.utils import timezone

from recommender import signals
from recommender.answers import answers_refresh
from recommender.tasks import refresh_answers
from tests.recommender.conftest import ServingWorld, view
from tests.recommender.test_api import cookie_client
from webapp.models import Interaction, Visitor
from webapp.services.interactions import (
    IngestStatus,
    ValidatedEvent,
    interaction_record_view,
    interactions_ingest,
)

pytestmark = pytest.mark.django_db

URL = "/api/recommendations/"
HOME = {"placement": "home"}  # the API's default k, the one refreshed


def test_a_refreshed_answer_is_what_a_miss_computes_and_the_next_request_hits(
    world: ServingWorld,
) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[3][0])
    view(visitor, world.clusters[3][1])
    computed = cookie_client(visitor).get(URL, HOME)
    caches["recommendations"].clear()

    rendered = answers_refresh([visitor.pk, 10**9])  # an unknown pk is skipped
    first = cookie_client(visitor).get(URL, HOME)
    again = answers_refresh([visitor.pk])

    assert computed.headers["X-Recommendations-Cache"] == "miss"
    assert (rendered, again) == (1, 0)  # already cached: one cache read, no rendering
    assert first.headers["X-Recommendations-Cache"] == "hit"
    assert first.json() == computed.json()


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Refreshes queued through the broker (recorded here); the cache counts as shared."""
    calls: list[list[int]] = []
    monkeypatch.setattr(signals, "precompute_reaches_serving", lambda: True)
    monkeypatch.setattr(
        refresh_answers, "apply_async", lambda args, **options: calls.append(list(args[0]))
    )
    return calls


def ingest(*events: ValidatedEvent) -> list[str]:
    return [o.status for o in interactions_ingest(events=events, create_visitors=True).outcomes]


def test_stored_events_queue_one_refresh_of_their_visitors_after_commit(
    world: ServingWorld, queued: list[list[int]], django_capture_on_commit_callbacks: Any
) -> None:
    first, second = Visitor.objects.create(), Visitor.objects.create()
    item = world.clusters[0][0]
    now = timezone.now()
    duplicate = uuid.uuid4()
    ingest(ValidatedEvent("view", first.key, now, duplicate, item.external_id))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        statuses = ingest(
            ValidatedEvent("view", first.key, now, None, item.external_id),
            ValidatedEvent("view", second.key, now, duplicate, item.external_id),
            ValidatedEvent("view", second.key, now, None, "no-such-item"),
        )
        assert queued == []  # nothing before the events are committed

    assert statuses == [IngestStatus.ACCEPTED, IngestStatus.DUPLICATE, IngestStatus.REJECTED]
    assert len(callbacks) == 1
    assert queued == [[first.pk]]  # the second visitor stored nothing new


def test_an_item_page_view_queues_its_visitor(
    world: ServingWorld, queued: list[list[int]], django_capture_on_commit_callbacks: Any
) -> None:
    visitor = Visitor.objects.create()
    with django_capture_on_commit_callbacks(execute=True):
        interaction_record_view(visitor=visitor, item=world.clusters[1][0])

    assert queued == [[visitor.pk]]


def test_nothing_is_queued_when_disabled_or_when_the_cache_is_per_process(
    world: ServingWorld,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(refresh_answers, "apply_async", lambda *a, **k: calls.append(a))
    visitor = Visitor.objects.create()
    item = world.clusters[1][0]
    with django_capture_on_commit_callbacks(execute=True):  # the test cache is per process
        interaction_record_view(visitor=visitor, item=item)
    monkeypatch.setattr(signals, "precompute_reaches_serving", lambda: True)
    settings.RECOMMENDER_REFRESH_AFTER_EVENTS = False
    with django_capture_on_commit_callbacks(execute=True):
        interaction_record_view(visitor=visitor, item=item)

    assert calls == []
    assert Interaction.objects.filter(visitor=visitor).count() == 2


def test_a_broker_that_refuses_the_task_costs_the_refresh_not_the_event(
    world: ServingWorld,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(signals, "precompute_reaches_serving", lambda: True)
    monkeypatch.setattr(refresh_answers, "apply_async", refuse)
    visitor = Visitor.objects.create()
    with django_capture_on_commit_callbacks(execute=True):
        statuses = ingest(
            ValidatedEvent("view", visitor.key, timezone.now(), None, "sku-0-0"),
        )

    assert statuses == [IngestStatus.ACCEPTED]
    assert Interaction.objects.filter(visitor=visitor).count() == 1
    assert "could not queue the refresh of 1 answers" in caplog.text
