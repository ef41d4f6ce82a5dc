"""The server-rendered shop: pages, search, consent, accounts and the login merge."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    CategoryFactory,
    InteractionFactory,
    ItemFactory,
    UserFactory,
    VisitorFactory,
)
from webapp.models import EventType, Interaction, Item, Visitor
from webapp.views.pages import ITEMS_PER_PAGE, attribute_rows, device_from_user_agent

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
XSS_TITLE = "<script>alert(1)</script>"
ESCAPED_XSS = "&lt;script&gt;alert(1)&lt;/script&gt;"
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


@pytest.fixture
def consenting_client() -> Client:
    client = Client(HTTP_USER_AGENT=DESKTOP_UA)
    client.cookies[settings.CONSENT_COOKIE_NAME] = "yes"
    return client


def _titles(response: object) -> list[str]:
    return [item.title for item in response.context["page_obj"].object_list]  # type: ignore[attr-defined]


# Home


def _shelf_pks(response: object, section: str) -> list[int]:
    """The items of one section, in order, as the page's HTML shows them."""
    html = response.content.decode()  # type: ignore[attr-defined]
    for block in html.split('<section class="shelf"')[1:]:
        if f'data-section="{section}"' in block.split(">", 1)[0]:
            external_ids = re.findall(r'data-pp-item="([^"]+)"', block)
            pks = dict(
                Item.objects.filter(external_id__in=external_ids).values_list("external_id", "pk")
            )
            return [pks[external_id] for external_id in external_ids]
    return []


def test_home_shows_trending_and_new_arrivals_to_a_new_visitor(client: Client) -> None:
    old = ItemFactory.create(title="Old Favourite")
    Item.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    new = ItemFactory.create(title="Brand New Film")
    InteractionFactory.create_batch(3, item=old)
    InteractionFactory.create(item=new)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    assert _shelf_pks(response, "home_trending") == [old.pk, new.pk]
    assert _shelf_pks(response, "home_top_picks") == []  # nothing to personalise on yet
    html = response.content.decode()
    assert "Trending now" in html
    assert f'data-pp-item="{old.external_id}" data-pp-placement="home_trending"' in html
    assert "private" in response.headers["Cache-Control"]


def test_trending_counts_the_latest_week_and_tops_up_with_new_items(client: Client) -> None:
    recent, ancient = ItemFactory.create(), ItemFactory.create()
    InteractionFactory.create(item=recent)
    InteractionFactory.create_batch(5, item=ancient, timestamp=timezone.now() - timedelta(days=365))

    response = client.get(reverse("home"))

    assert _shelf_pks(response, "home_trending") == [recent.pk, ancient.pk]


def test_trending_ignores_impressions_bots_and_inactive_items(client: Client) -> None:
    shown, botted, gone = (
        ItemFactory.create(),
        ItemFactory.create(),
        ItemFactory.create(is_active=False),
    )
    Item.objects.filter(pk__in=[shown.pk, botted.pk]).update(
        created_at=timezone.now() - timedelta(days=400)
    )
    fresh = ItemFactory.create()
    InteractionFactory.create_batch(3, item=shown, event_type=EventType.IMPRESSION)
    InteractionFactory.create_batch(3, item=botted, is_bot=True)
    InteractionFactory.create(item=gone)
    InteractionFactory.create(item=fresh)

    response = client.get(reverse("home"))

    assert _shelf_pks(response, "home_trending")[0] == fresh.pk
    assert gone.pk not in _shelf_pks(response, "home_trending")


def test_home_query_count_is_bounded(
    consenting_client: Client, django_assert_max_num_queries: object
) -> None:
    items = ItemFactory.create_batch(30)
    for item in items:
        InteractionFactory.create_batch(2, item=item)
    consenting_client.get(reverse("home"))  # creates the visitor, its cookie, the caches

    # visitor (with its generation), model registry poll, nav categories (+1 slack)
    with django_assert_max_num_queries(4):  # type: ignore[operator]
        response = consenting_client.get(reverse("home"))

    assert response.status_code == 200
    assert len(_shelf_pks(response, "home_trending")) == 12
    assert len(_shelf_pks(response, "home_new")) == 12


def test_inactive_items_are_not_listed_anywhere(client: Client) -> None:
    category = CategoryFactory.create()
    ItemFactory.create(title="Withdrawn Wonder", category=category, is_active=False)

    pages = [
        reverse("home"),
        reverse("category", args=[category.slug]),
        reverse("search") + "?q=withdrawn",
    ]

    for url in pages:
        assert "Withdrawn Wonder" not in client.get(url).content.decode()


# Category


def test_category_includes_descendant_categories() -> None:
    root = CategoryFactory.create(name="Drama")
    child = CategoryFactory.create(parent=root)
    grandchild = CategoryFactory.create(parent=child)
    other = CategoryFactory.create()
    ItemFactory.create(title="Root film", category=root)
    ItemFactory.create(title="Child film", category=child)
    ItemFactory.create(title="Grandchild film", category=grandchild)
    ItemFactory.create(title="Unrelated film", category=other)

    response = Client().get(reverse("category", args=[root.slug]))

    assert response.status_code == 200
    assert sorted(_titles(response)) == ["Child film", "Grandchild film", "Root film"]
    assert 'data-pp-placement="category"' in response.content.decode()


def test_category_breadcrumb_and_subcategories(client: Client) -> None:
    root = CategoryFactory.create(name="Drama")
    child = CategoryFactory.create(name="Period Drama", parent=root)
    grandchild = CategoryFactory.create(name="Regency", parent=child)

    response = client.get(reverse("category", args=[child.slug]))

    html = response.content.decode()
    assert reverse("category", args=[root.slug]) in html
    assert reverse("category", args=[grandchild.slug]) in html


def test_category_paginates(client: Client) -> None:
    category = CategoryFactory.create()
    ItemFactory.create_batch(ITEMS_PER_PAGE + 6, category=category)
    url = reverse("category", args=[category.slug])

    first = client.get(url)
    second = client.get(url, {"page": 2})
    beyond = client.get(url, {"page": 99})

    assert len(first.context["page_obj"]) == ITEMS_PER_PAGE
    assert len(second.context["page_obj"]) == 6
    assert beyond.context["page_obj"].number == 2
    assert set(_titles(first)).isdisjoint(_titles(second))
    assert "page=2" in first.content.decode()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", ["Cheap", "Free", "Dear"]),
        ("price_asc", ["Free", "Cheap", "Dear"]),
        ("price_desc", ["Dear", "Cheap", "Free"]),
        ("title", ["Cheap", "Dear", "Free"]),
        ("bogus", ["Cheap", "Free", "Dear"]),
    ],
)
def test_category_sorts(client: Client, sort: str, expected: list[str]) -> None:
    category = CategoryFactory.create()
    ItemFactory.create(title="Dear", list_price=Decimal("30.00"), category=category)
    ItemFactory.create(title="Free", list_price=Decimal("0.00"), category=category)
    ItemFactory.create(title="Cheap", list_price=Decimal("5.00"), category=category)

    response = client.get(reverse("category", args=[category.slug]), {"sort": sort})

    assert _titles(response) == expected


def test_unknown_category_is_404(client: Client) -> None:
    assert client.get(reverse("category", args=["no-such-genre"])).status_code == 404


# Item


def test_item_page_shows_details(client: Client) -> None:
    parent = CategoryFactory.create(name="Animation")
    category = CategoryFactory.create(name="Family Animation", parent=parent)
    item = ItemFactory.create(
        title="Toy Story (1995)",
        description="Woody and Buzz.",
        category=category,
        list_price=Decimal("12.49"),
        currency="EUR",
        attributes={"year": 1995, "genres": ["Animation", "Comedy"]},
    )

    response = client.get(reverse("item", args=[item.external_id]))

    assert response.status_code == 200
    html = response.content.decode()
    for text in ["Toy Story (1995)", "12.49", "EUR", "Woody and Buzz.", "Animation, Comedy"]:
        assert text in html
    assert reverse("category", args=[parent.slug]) in html
    assert reverse("category", args=[category.slug]) in html
    assert f'data-pp-event="add_to_cart" data-pp-item="{item.external_id}"' in html
    assert 'class="placeholder' in html


def test_item_with_slash_in_external_id(client: Client) -> None:
    item = ItemFactory.create(external_id="shop/42")

    assert client.get(f"/i/{item.external_id}/").status_code == 200


def test_inactive_and_unknown_items_are_404(client: Client) -> None:
    item = ItemFactory.create(is_active=False)

    assert client.get(reverse("item", args=[item.external_id])).status_code == 404
    assert client.get(reverse("item", args=["missing"])).status_code == 404


def test_item_view_is_logged_with_consent(consenting_client: Client) -> None:
    item = ItemFactory.create()

    response = consenting_client.get(
        reverse("item", args=[item.external_id]), HTTP_REFERER="http://testserver/"
    )

    event = Interaction.objects.get()
    assert event.item == item
    assert event.event_type == EventType.VIEW
    assert event.visitor == response.wsgi_request.visitor  # type: ignore[attr-defined]
    assert event.session_id and event.session_id == consenting_client.session.session_key
    assert event.context == {
        "device": "desktop",
        "referrer": "http://testserver/",
        "page": reverse("item", args=[item.external_id]),
    }
    assert settings.VISITOR_COOKIE_NAME in response.cookies


def test_item_view_is_not_logged_without_consent(client: Client) -> None:
    item = ItemFactory.create()

    response = client.get(reverse("item", args=[item.external_id]))

    assert response.status_code == 200
    assert not Interaction.objects.exists()
    assert not Visitor.objects.exists()
    assert settings.VISITOR_COOKIE_NAME not in response.cookies
    assert settings.SESSION_COOKIE_NAME not in response.cookies


def test_head_request_is_not_logged(consenting_client: Client) -> None:
    item = ItemFactory.create()

    assert consenting_client.head(reverse("item", args=[item.external_id])).status_code == 200
    assert not Interaction.objects.exists()


def test_item_view_after_decline_is_not_logged(client: Client) -> None:
    item = ItemFactory.create()
    client.cookies[settings.CONSENT_COOKIE_NAME] = "no"

    client.get(reverse("item", args=[item.external_id]))

    assert not Interaction.objects.exists()


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (DESKTOP_UA, "desktop"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148", "mobile"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/124.0 Mobile Safari/537.36", "mobile"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", "tablet"),
        ("", "desktop"),
    ],
)
def test_device_from_user_agent(user_agent: str, device: str) -> None:
    assert device_from_user_agent(user_agent) == device


def test_attribute_rows() -> None:
    rows = attribute_rows({"year": 1995, "genres": ["A", "B"], "extra": {}, "release_date": ""})

    assert rows == [("Year", "1995"), ("Genres", "A, B")]
    assert attribute_rows(["not", "a", "dict"]) == []


# Escaping


def test_item_fields_are_escaped_everywhere(client: Client) -> None:
    category = CategoryFactory.create(name=XSS_TITLE)
    item = ItemFactory.create(
        title=XSS_TITLE,
        description=XSS_TITLE,
        category=category,
        attributes={"note": XSS_TITLE},
    )

    pages = [
        reverse("home"),
        reverse("category", args=[category.slug]),
        reverse("item", args=[item.external_id]),
        reverse("search") + "?q=alert",
        reverse("search") + "?q=" + XSS_TITLE,
    ]

    for url in pages:
        html = client.get(url).content.decode()
        assert XSS_TITLE not in html, url
        assert ESCAPED_XSS in html, url


# Search


def test_search_finds_by_title_word_and_ranks_title_matches_first(client: Client) -> None:
    in_title = ItemFactory.create(title="Galaxy Quest (1999)", description="Actors in space.")
    ItemFactory.create(title="Toy Story (1995)", description="Toys come alive.")
    in_description = ItemFactory.create(title="Space Camp (1986)", description="A galaxy of kids.")
    # Newer items come first by default: ranking must beat that.
    Item.objects.filter(pk=in_title.pk).update(created_at=timezone.now() - timedelta(days=9))

    response = client.get(reverse("search"), {"q": "galaxies"})

    assert response.status_code == 200
    assert [i.pk for i in response.context["page_obj"].object_list] == [
        in_title.pk,
        in_description.pk,
    ]
    assert 'data-pp-placement="search"' in response.content.decode()


def test_search_supports_web_syntax(client: Client) -> None:
    ItemFactory.create(title="Toy Story (1995)")
    ItemFactory.create(title="Story of Toys")
    ItemFactory.create(title="Toy Story 2 (1999)", description="The sequel.")

    response = client.get(reverse("search"), {"q": '"toy story" -sequel'})

    assert _titles(response) == ["Toy Story (1995)"]


def test_search_paginates(client: Client) -> None:
    ItemFactory.create_batch(ITEMS_PER_PAGE + 1, description="a western")

    response = client.get(reverse("search"), {"q": "western", "page": "2"})

    assert len(response.context["page_obj"]) == 1
    assert "q=western" in response.content.decode()


def test_search_without_query_shows_a_prompt(client: Client) -> None:
    response = client.get(reverse("search"))

    assert response.status_code == 200
    assert response.context["page_obj"] is None
    assert "Type a title" in response.content.decode()


@pytest.mark.parametrize("query", ["zzzyyyxxx", "'&|!():*", "-", '"', "a" * 1000])
def test_search_without_results_says_so(client: Client, query: str) -> None:
    ItemFactory.create(title="Toy Story (1995)")

    response = client.get(reverse("search"), {"q": query})

    assert response.status_code == 200
    assert "No results" in response.content.decode()


# Consent


def test_banner_is_shown_until_a_choice_is_made(client: Client) -> None:
    assert 'id="consent-banner"' in client.get(reverse("home")).content.decode()

    client.cookies[settings.CONSENT_COOKIE_NAME] = "no"
    assert 'id="consent-banner"' not in client.get(reverse("home")).content.decode()

    client.cookies[settings.CONSENT_COOKIE_NAME] = "yes"
    html = client.get(reverse("home")).content.decode()
    assert 'id="consent-banner"' not in html
    assert 'name="pp-beacon-token" content=""' not in html


def test_base_template_wires_the_beacon(client: Client) -> None:
    html = client.get(reverse("home")).content.decode()

    assert 'src="/static/webapp/beacon.js" defer' in html
    assert '<meta name="pp-beacon-url" content="/api/events/">' in html
    assert '<meta name="pp-beacon-token" content="">' in html


@pytest.mark.parametrize("choice", ["yes", "no"])
def test_consent_sets_cookie_and_redirects_back(client: Client, choice: str) -> None:
    response = client.post(reverse("consent"), {"consent": choice, "next": "/search/?q=toy"})

    assert response.status_code == 302
    assert response["Location"] == "/search/?q=toy"
    cookie = response.cookies[settings.CONSENT_COOKIE_NAME]
    assert cookie.value == choice
    assert cookie["max-age"] == 60 * 60 * 24 * 365
    assert cookie["samesite"] == "Lax"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)", ""]
)
def test_consent_rejects_off_site_next(client: Client, target: str) -> None:
    response = client.post(reverse("consent"), {"consent": "yes", "next": target})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_consent_validates_input_and_method(client: Client) -> None:
    assert client.post(reverse("consent"), {"consent": "maybe"}).status_code == 400
    assert client.get(reverse("consent")).status_code == 405


def test_consent_is_csrf_protected() -> None:
    client = Client(enforce_csrf_checks=True)

    assert client.post(reverse("consent"), {"consent": "yes"}).status_code == 403


def test_declining_drops_the_visitor_cookie(consenting_client: Client) -> None:
    consenting_client.get(reverse("home"))
    assert settings.VISITOR_COOKIE_NAME in consenting_client.cookies

    response = consenting_client.post(reverse("consent"), {"consent": "no"})

    assert response.cookies[settings.VISITOR_COOKIE_NAME].value == ""


def test_accepting_records_consent_on_the_account_visitor(client: Client) -> None:
    user = UserFactory.create()
    visitor = VisitorFactory.create(user=user, consent_given_at=None)
    client.force_login(user)

    client.post(reverse("consent"), {"consent": "yes"})

    visitor.refresh_from_db()
    assert visitor.consent_given_at is not None


# Accounts


def test_signup_login_logout_flow(client: Client) -> None:
    response = client.post(
        reverse("signup"),
        {"username": "newbie", "password1": "a-Long-pass-42", "password2": "a-Long-pass-42"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("account")
    assert client.get(reverse("account")).status_code == 200

    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("home")
    assert client.get(reverse("account")).status_code == 302

    response = client.post(reverse("login"), {"username": "newbie", "password": "a-Long-pass-42"})
    assert response["Location"] == reverse("account")
    assert "newbie" in client.get(reverse("home")).content.decode()


def test_signup_shows_errors(client: Client) -> None:
    response = client.post(
        reverse("signup"), {"username": "x", "password1": "abc", "password2": "abd"}
    )

    assert response.status_code == 200
    assert not get_user_model().objects.filter(username="x").exists()
    assert "field-errors" in response.content.decode()


def test_login_rejects_a_wrong_password(client: Client, user: object) -> None:
    response = client.post(
        reverse("login"),
        {"username": user.username, "password": "wrong"},  # type: ignore[attr-defined]
    )

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_pages_render_for_a_logged_in_user(client: Client, user: object) -> None:
    client.force_login(user)  # type: ignore[arg-type]

    for name in ["home", "search", "signup"]:
        assert client.get(reverse(name)).status_code in (200, 302)
    assert client.get(reverse("login")).status_code == 302


def test_account_requires_login(client: Client) -> None:
    for name in ["account", "account-export", "account-erase"]:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_account_shows_history_newest_first(client: Client) -> None:
    user = UserFactory.create()
    visitor = VisitorFactory.create(user=user)
    older = InteractionFactory.create(
        visitor=visitor,
        item=ItemFactory.create(title="Older Film"),
        timestamp=timezone.now() - timedelta(hours=2),
    )
    newer = InteractionFactory.create(visitor=visitor, item=ItemFactory.create(title="Newer Film"))
    InteractionFactory.create(item=ItemFactory.create(title="Somebody Else's Film"))
    client.force_login(user)

    response = client.get(reverse("account"))

    assert list(response.context["page_obj"].object_list) == [newer, older]
    html = response.content.decode()
    assert newer.item is not None
    assert reverse("item", args=[newer.item.external_id]) in html
    assert "Somebody Else" not in html
    assert reverse("account-export") in html and reverse("account-erase") in html


def test_account_uses_the_request_visitor_with_consent(consenting_client: Client) -> None:
    user = UserFactory.create()
    item = ItemFactory.create(title="Seen Film")
    consenting_client.force_login(user)
    consenting_client.get(reverse("item", args=[item.external_id]))

    response = consenting_client.get(reverse("account"))

    assert [e.item for e in response.context["page_obj"].object_list] == [item]


def test_account_without_any_visitor(client: Client, user: object) -> None:
    client.force_login(user)  # type: ignore[arg-type]

    assert "No history yet" in client.get(reverse("account")).content.decode()
    export = client.get(reverse("account-export"))
    assert json.loads(export.content) == {"visitor": None, "events": []}
    assert client.post(reverse("account-erase")).status_code == 302


def test_export_returns_the_events_as_a_json_attachment(client: Client) -> None:
    user = UserFactory.create()
    visitor = VisitorFactory.create(user=user)
    InteractionFactory.create_batch(3, visitor=visitor)
    InteractionFactory.create()
    client.force_login(user)

    response = client.get(reverse("account-export"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert data["visitor"]["user"] == user.username
    assert len(data["events"]) == 3


def test_erase_confirms_then_deletes_tracking_data_and_logs_out(client: Client) -> None:
    user = UserFactory.create()
    visitor = VisitorFactory.create(user=user)
    InteractionFactory.create_batch(2, visitor=visitor)
    kept = InteractionFactory.create()
    client.force_login(user)

    confirm = client.get(reverse("account-erase"))
    response = client.post(reverse("account-erase"))

    assert confirm.status_code == 200 and "Delete your tracking data?" in confirm.content.decode()
    assert response["Location"] == reverse("home")
    assert list(Interaction.objects.all()) == [kept]
    assert not Visitor.objects.filter(pk=visitor.pk).exists()
    assert get_user_model().objects.filter(pk=user.pk).exists()
    assert "_auth_user_id" not in client.session


def test_anonymous_history_merges_into_the_account_on_login(consenting_client: Client) -> None:
    # Given an account whose visitor has one event from another device
    user = UserFactory.create()
    account_visitor = VisitorFactory.create(user=user)
    InteractionFactory.create(visitor=account_visitor)
    first, second = ItemFactory.create(), ItemFactory.create()
    # and an anonymous visitor with consent who viewed two items
    consenting_client.get(reverse("item", args=[first.external_id]))
    consenting_client.get(reverse("item", args=[second.external_id]))
    anonymous = Visitor.objects.get(user__isnull=True)
    assert anonymous.interactions.count() == 2

    # When they log in through the real login view
    response = consenting_client.post(
        reverse("login"), {"username": user.username, "password": PASSWORD}, follow=True
    )

    # Then the account's visitor holds all three events, once each
    assert response.status_code == 200
    assert Interaction.objects.filter(visitor=account_visitor).count() == 3
    assert Interaction.objects.count() == 3
    anonymous.refresh_from_db()
    assert anonymous.merged_into_id == account_visitor.pk
    assert len(response.context["page_obj"].object_list) == 3
    assert {e.item_id for e in Interaction.objects.all()} >= {first.pk, second.pk}
