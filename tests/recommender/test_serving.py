"""The serving pipeline against real Postgres and real trained models."""

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django_celery_beat.models import PeriodicTask

from ml.models import ModelVersion, ModelVersionStatus
from recommender import selectors as serving
from recommender.active_models import ACTIVE_MODELS
from recommender.candidates import Section
from recommender.models import ServingFailure
from recommender.selectors import category_ranking, home_shelves, item_shelves
from recommender.tasks import refresh_trending
from recommender.trending import TRENDING_CACHE_KEY
from tests.recommender.conftest import ServingWorld, reset_serving, view
from webapp.models import EventType, Item, Visitor

pytestmark = pytest.mark.django_db


def shown(served: serving.Served, section: str) -> list[int]:
    shelf = served.shelf(section)
    return [] if shelf is None else [entry.card.pk for entry in shelf.items]


def failures(reason: str) -> int:
    return sum(ServingFailure.objects.filter(reason=reason).values_list("count", flat=True))


def test_a_new_visitor_gets_trending_and_new_items_and_no_personal_section(
    world: ServingWorld,
) -> None:
    served = home_shelves(visitor=Visitor.objects.create(), k=4)

    assert [shelf.section for shelf in served.shelves] == [Section.TRENDING, Section.NEW_ARRIVALS]
    assert all(entry.source == "trending" for entry in served.shelves[0].items)
    assert len(shown(served, Section.NEW_ARRIVALS)) == 4


def test_top_picks_follow_the_session_and_leave_out_what_was_viewed(world: ServingWorld) -> None:
    visitor = Visitor.objects.create()
    for minutes, item in enumerate(world.clusters[2][:3]):
        view(visitor, item, minutes_ago=10 - minutes)

    served = home_shelves(visitor=visitor, k=4)

    top = served.shelf(Section.TOP_PICKS)
    assert top is not None and top.title == "Top picks for you" and top.fallback == ""
    home_version = ModelVersion.objects.get(role="home", status=ModelVersionStatus.ACTIVE)
    assert {entry.model_version for entry in top.items} == {home_version.pk}
    picks = [entry.card.pk for entry in top.items]
    assert Counter(world.cluster_of(pk) for pk in picks).most_common(1)[0][0] == 2
    assert not set(picks) & {item.pk for item in world.clusters[2][:3]}


def test_because_you_viewed_is_anchored_on_the_latest_item(world: ServingWorld) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[0][0], minutes_ago=5)
    view(visitor, world.clusters[3][1], minutes_ago=1)

    served = home_shelves(visitor=visitor, k=3)

    because = served.shelf(Section.BECAUSE_VIEWED)
    assert because is not None and because.title == "Because you viewed Film 3-1"
    assert [world.cluster_of(pk) for pk in shown(served, Section.BECAUSE_VIEWED)] == [3, 3, 3]
    assert all(entry.reason == "Because you viewed Film 3-1" for entry in because.items)


def test_recommendations_change_within_the_session(world: ServingWorld) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[1][0], minutes_ago=30)
    first = shown(home_shelves(visitor=visitor, k=4), Section.BECAUSE_VIEWED)
    for item in world.clusters[3][:3]:
        view(visitor, item)

    second = home_shelves(visitor=visitor, k=4)

    assert not second.cache_hit  # the new events changed the key
    # Top picks come first on the page and take some of the cluster: compare the heads.
    assert [world.cluster_of(pk) for pk in first[:2]] == [1, 1]
    assert world.cluster_of(shown(second, Section.BECAUSE_VIEWED)[0]) == 3
    assert Counter(world.cluster_of(pk) for pk in shown(second, Section.TOP_PICKS))[3] >= 3


def test_no_item_twice_on_a_page_and_never_inactive_or_bought(world: ServingWorld) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[0][0])
    bought = world.clusters[0][1]
    view(visitor, bought, kind=EventType.PURCHASE)
    inactive = world.clusters[0][2]
    Item.objects.filter(pk=inactive.pk).update(is_active=False)

    served = home_shelves(visitor=visitor, k=6)

    everything = [pk for shelf in served.shelves for pk in shown(served, shelf.section)]
    assert len(everything) == len(set(everything))
    assert bought.pk not in everything and inactive.pk not in everything


def test_no_section_is_dominated_by_one_category(world: ServingWorld, settings: Any) -> None:
    settings.RECOMMENDER_MAX_CATEGORY_SHARE = 0.5
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[2][0])

    served = home_shelves(visitor=visitor, k=4)

    for shelf in served.shelves:
        per_category = Counter(entry.card.category_id for entry in shelf.items)
        assert max(per_category.values()) <= 2, shelf.section


def test_item_page_sections_hold_neighbours_and_never_the_item(world: ServingWorld) -> None:
    item = world.clusters[1][4]

    served = item_shelves(visitor=None, item_pk=item.pk, k=3)

    similar = shown(served, Section.SIMILAR)
    also = shown(served, Section.ALSO_VIEWED)
    assert {world.cluster_of(pk) for pk in similar} == {1}
    assert item.pk not in similar + also
    assert not set(similar) & set(also)


def test_a_failing_model_falls_back_to_trending_and_is_counted(
    world: ServingWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[0][0])
    model = ACTIVE_MODELS.get("home").model

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(model, "score_history", broken)

    served = home_shelves(visitor=visitor, k=4)

    top = served.shelf(Section.TOP_PICKS)
    assert top is not None and top.fallback == "model_error" and len(top.items) == 4
    assert {entry.source for entry in top.items} == {"trending"}
    failure = ServingFailure.objects.get(placement=Section.TOP_PICKS, reason="model_error")
    assert failure.count == 1 and "boom" in failure.last_error


def test_an_unreadable_artifact_is_a_counted_fallback(world: ServingWorld, settings: Any) -> None:
    version = ModelVersion.objects.get(role="similar", status=ModelVersionStatus.ACTIVE)
    for path in (Path(settings.ML_ARTIFACT_DIR) / version.artifact_path).iterdir():
        path.write_bytes(b"not a model")
    reset_serving()

    served = item_shelves(visitor=None, item_pk=world.clusters[0][0].pk, k=3)

    similar = served.shelf(Section.SIMILAR)
    assert similar is not None and similar.fallback == "model_error" and similar.items
    assert failures("model_error") == 1


def test_past_the_latency_budget_sections_are_served_from_trending(
    world: ServingWorld, settings: Any
) -> None:
    settings.RECOMMENDER_LATENCY_BUDGET_MS = 0.0
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[0][0])

    served = home_shelves(visitor=visitor, k=4)

    assert {shelf.fallback for shelf in served.shelves} == {"timeout"}
    assert all(len(shelf.items) == 4 for shelf in served.shelves)
    assert failures("timeout") == len(served.shelves)


def test_a_slow_database_query_times_out_and_the_page_still_has_sections(
    world: ServingWorld, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RECOMMENDER_STATEMENT_TIMEOUT_MS = 50
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[0][0])

    def slow_history(**kwargs: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")

    monkeypatch.setattr(serving, "visitor_history", slow_history)

    served = home_shelves(visitor=visitor, k=4)

    # The history could not be read: the visitor is served like a new one, not an error.
    assert served.shelf(Section.TRENDING) is not None and served.shelf(Section.NEW_ARRIVALS)
    assert ServingFailure.objects.get(placement="history", reason="db_error").count == 1


def test_cached_until_the_visitor_acts_and_never_shared(world: ServingWorld) -> None:
    alice, bob = Visitor.objects.create(), Visitor.objects.create()
    view(alice, world.clusters[0][0])
    view(bob, world.clusters[3][0])

    first = home_shelves(visitor=alice, k=4)
    again = home_shelves(visitor=alice, k=4)
    other = home_shelves(visitor=bob, k=4)

    assert not first.cache_hit and again.cache_hit and not other.cache_hit
    assert shown(first, Section.BECAUSE_VIEWED) == shown(again, Section.BECAUSE_VIEWED)
    assert world.cluster_of(shown(other, Section.BECAUSE_VIEWED)[0]) == 3
    view(alice, world.clusters[1][0])
    assert not home_shelves(visitor=alice, k=4).cache_hit


def test_a_cache_hit_costs_two_queries(
    world: ServingWorld, django_assert_max_num_queries: Any
) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[0][0])
    home_shelves(visitor=visitor, k=4)

    with django_assert_max_num_queries(2):  # the model registry poll and the generation
        assert home_shelves(visitor=visitor, k=4).cache_hit


def test_a_new_model_version_changes_what_is_served(world: ServingWorld) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[0][0])
    before = home_shelves(visitor=visitor, k=4)
    ModelVersion.objects.filter(role="home").update(status=ModelVersionStatus.RETIRED)

    after = home_shelves(visitor=visitor, k=4)

    assert not after.cache_hit
    top = after.shelf(Section.TOP_PICKS)
    assert before.shelf(Section.TOP_PICKS).fallback == ""  # type: ignore[union-attr]
    assert top is None  # no model: the page's Trending section is the answer


def test_category_ranking_puts_the_visitors_taste_first(world: ServingWorld) -> None:
    visitor = Visitor.objects.create()
    for item in world.clusters[3][:2]:
        view(visitor, item)
    pks = [item.pk for cluster in world.clusters for item in cluster]

    order = category_ranking(visitor=visitor, item_pks=pks)

    assert order is not None and sorted(order) == sorted(pks)
    assert {world.cluster_of(pk) for pk in order[:6]} == {3}
    assert category_ranking(visitor=Visitor.objects.create(), item_pks=pks) is None


def test_the_periodic_task_refreshes_the_shared_trending_list(world: ServingWorld) -> None:
    hot = world.clusters[3][7]
    for _ in range(20):
        view(Visitor.objects.create(), hot)

    assert refresh_trending.apply().get() > 0
    assert cache.get(TRENDING_CACHE_KEY)[0][0] == hot.pk
    call_command("setup_schedules")
    assert PeriodicTask.objects.filter(task="recommender.tasks.refresh_trending").exists()
