"""Recommendations on the site's pages: item page sections, the personal category sort."""

from typing import Any

import pytest

from recommender.candidates import Section
from tests.recommender.conftest import ServingWorld, view
from tests.recommender.test_api import cookie_client
from webapp.models import Visitor

pytestmark = pytest.mark.django_db


def test_item_page_shows_similar_items_and_is_private(world: ServingWorld) -> None:
    item = world.clusters[1][0]
    visitor = Visitor.objects.create()

    response = cookie_client(visitor).get(f"/i/{item.external_id}/")

    assert response.status_code == 200
    shelves = {shelf.section: shelf for shelf in response.context["shelves"]}
    similar = [entry.card.title for entry in shelves[Section.SIMILAR].items]
    assert similar and all(title.startswith("Film 1-") for title in similar)
    assert item.title not in similar
    html = response.content.decode()
    assert 'data-section="item_similar"' in html and 'data-pp-rank="1"' in html
    assert "private" in response.headers["Cache-Control"]


def test_category_sorted_for_you_follows_the_visitor_and_is_private(world: ServingWorld) -> None:
    everything = world.categories[0]
    for category in world.categories[1:]:
        category.parent = everything
        category.save()
    visitor = Visitor.objects.create()
    for item in world.clusters[3][:2]:
        view(visitor, item)
    client = cookie_client(visitor)

    personal = client.get(f"/c/{everything.slug}/", {"sort": "for_you"})
    plain = client.get(f"/c/{everything.slug}/")

    titles = [item.title for item in personal.context["page_obj"].object_list]
    assert all(title.startswith("Film 3-") for title in titles[:5])
    assert "private" in personal.headers["Cache-Control"]
    assert "private" not in plain.headers.get("Cache-Control", "")
    assert "Recommended for you" in plain.content.decode()


def test_for_you_without_history_is_the_plain_shared_listing(world: ServingWorld) -> None:
    response = cookie_client(Visitor.objects.create()).get(
        f"/c/{world.categories[2].slug}/", {"sort": "for_you"}
    )

    assert response.status_code == 200
    assert "private" not in response.headers.get("Cache-Control", "")
    assert len(response.context["page_obj"].object_list) == 8


def sections_html(response: Any) -> str:
    """The recommendation sections of a page (the rest carries a per-render CSRF token)."""
    html: str = response.content.decode()
    return html[
        html.index('<section class="shelf"') : html.index('aria-labelledby="browse-heading"')
    ]


def test_the_cached_home_sections_change_with_the_visitor_s_next_event(
    world: ServingWorld,
) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[0][0], minutes_ago=5)
    client = cookie_client(visitor)
    first = sections_html(client.get("/"))
    again = sections_html(client.get("/"))

    view(visitor, world.clusters[2][0])
    after = sections_html(client.get("/"))

    assert "Because you viewed Film 0-0" in first and first == again
    assert "Because you viewed Film 2-0" in after
