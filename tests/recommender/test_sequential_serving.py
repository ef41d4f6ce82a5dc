"""Top picks from an order-aware model (SASRec): the latest clicks steer the next picks."""

from typing import Any

import pytest

from recommender.candidates import Section
from recommender.selectors import home_shelves
from tests.recommender.conftest import SERVING_PLAN, ServingWorld, build_world, train, view
from webapp.models import Visitor

pytestmark = pytest.mark.django_db

SASREC_PLAN = SERVING_PLAN | {
    "home": {"sasrec": {"dim": [32], "layers": [1], "epochs": [60], "max_length": [20]}}
}


@pytest.fixture
def sequential_world(db: Any) -> ServingWorld:
    built = build_world()
    train(SASREC_PLAN)
    return built


def top_pick_clusters(world: ServingWorld, visitor: Visitor) -> list[int]:
    shelf = home_shelves(visitor=visitor, k=4).shelf(Section.TOP_PICKS)
    assert shelf is not None and shelf.fallback == ""
    assert {entry.source for entry in shelf.items} == {"sasrec"}
    return [world.cluster_of(entry.card.pk) for entry in shelf.items]


def test_the_latest_session_clicks_change_the_top_picks_at_once(
    sequential_world: ServingWorld,
) -> None:
    world = sequential_world
    visitor = Visitor.objects.create()
    for minutes, item in enumerate(world.clusters[1][:3]):
        view(visitor, item, minutes_ago=30 - minutes)
    before = top_pick_clusters(world, visitor)

    for minutes, item in enumerate(world.clusters[3][:3]):
        view(visitor, item, minutes_ago=3 - minutes)
    after = top_pick_clusters(world, visitor)

    assert before.count(1) >= 3, before
    assert after.count(3) >= 3, after
