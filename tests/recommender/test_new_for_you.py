"""Cold start on the site: new arrivals ordered by the semantic IDs they share with a
visitor's items, so a brand-new item reaches the visitors whose taste its content matches."""

from datetime import UTC, datetime

import pytest
from bs4 import BeautifulSoup

from ml.models import ModelVersion
from ml.services.training_runs import TrainingError, training_plan_validate
from recommender.candidates import Candidate
from recommender.history import HistoryEvent, VisitorHistory
from recommender.sources import NoSignal, new_for_you
from tests.recommender.conftest import ServingWorld, view
from tests.recommender.test_api import cookie_client
from webapp.models import Item, Visitor

NOW = datetime(2026, 11, 29, tzinfo=UTC)


def history_of(*codes: str) -> VisitorHistory:
    events = tuple(
        HistoryEvent(100 + n, f"Liked {n}", "view", NOW, "s", 1.0, code)
        for n, code in enumerate(codes)
    )
    return VisitorHistory(visitor_pk=1, events=events, consumed=frozenset(), generation="1")


NEW = [Candidate(pk, 10.0 - pk, "new", None, "New arrival") for pk in (1, 2, 3, 4)]


def test_new_items_sharing_a_longer_prefix_come_first_with_the_item_they_match() -> None:
    codes = {1: "7:9-9-9-0", 2: "7:5-1-2-0", 3: "7:5-1-8-0", 4: "8:5-1-2-0"}

    ranked = new_for_you(history=history_of("7:5-1-2-3"), new=NEW, codes=codes, limit=4)

    assert [c.item_id for c in ranked] == [2, 3, 1, 4]  # 4: same codes, another quantizer
    assert ranked[0].reason == "New, like Liked 0" and ranked[0].source == "semantic_ids"
    assert ranked[0].score > ranked[1].score > 0


def test_without_a_coded_item_in_the_history_there_is_no_signal() -> None:
    with pytest.raises(NoSignal):
        new_for_you(history=history_of(""), new=NEW, codes={1: "7:1-2-3-0"}, limit=4)
    with pytest.raises(NoSignal):
        new_for_you(history=history_of("7:4-4-4-0"), new=NEW, codes={1: "7:1-2-3-0"}, limit=4)


def test_the_codes_role_takes_only_semantic_id_models() -> None:
    with pytest.raises(TrainingError, match="only semantic_ids"):
        training_plan_validate({"codes": {"ease": {"reg": [100.0]}}})
    assert training_plan_validate({"codes": {"semantic_ids": {}}})


@pytest.mark.django_db
def test_the_home_page_shows_a_matching_new_arrival_first_and_why(world: ServingWorld) -> None:
    version = ModelVersion.objects.first()
    liked = world.clusters[0][0]
    arrivals = Item.objects.bulk_create(
        Item(external_id=f"new-{n}", title=f"Brand new {n}", category=world.categories[n % 4])
        for n in range(30)
    )  # just imported: no interactions, not known to any model
    newest = arrivals[3]  # not the newest: the match puts it first
    Item.objects.filter(pk=liked.pk).update(semantic_id="3-1-4-0", semantic_id_version=version)
    Item.objects.filter(pk=newest.pk).update(semantic_id="3-1-5-0", semantic_id_version=version)
    visitor = Visitor.objects.create()
    view(visitor, liked)

    page = BeautifulSoup(cookie_client(visitor).get("/").content, "html.parser")
    anonymous = BeautifulSoup(
        cookie_client(Visitor.objects.create()).get("/").content, "html.parser"
    )

    section = page.select_one('[data-section="home_new"]')
    assert section is not None and "New arrivals for you" in section.get_text()
    links = section.select("[data-pp-item]")
    assert links and links[0]["data-pp-item"] == newest.external_id, section
    assert f"New, like {liked.title}" in section.get_text()
    plain = anonymous.select_one('[data-section="home_new"]')
    assert plain is not None and "for you" not in plain.get_text()
