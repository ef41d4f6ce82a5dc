"""The embeddable widget: its script, the API headers it relies on, and a real browser."""

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.test import Client
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import TemplateView

from tests.e2e.test_browser import browser_page  # noqa: F401  (the fixture)
from tests.factories import ItemFactory
from webapp.models import EventType, Interaction

pytestmark = pytest.mark.django_db

WIDGET = "recommender/widget.js"
API = "/api/recommendations/"
SHOP = "https://shop.example"
XSS_TITLE = "<img src=x onerror=alert(1)>"

# A test-only URLconf (the demo page's view belongs to the site's URLconf, not to this file).
urlpatterns: list[URLPattern | URLResolver] = [
    path("widget-demo/", TemplateView.as_view(template_name="shop/widget_demo.html")),
    path("", include("webapp.urls")),
]


def _body(response: Any) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode()


def test_the_script_is_a_static_file_served_as_javascript(client: Client) -> None:
    assert finders.find(WIDGET)

    response = client.get(static(WIDGET))

    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    assert "window.ppRecommendations" in _body(response)


def test_the_script_never_writes_html() -> None:
    found = finders.find(WIDGET)
    assert isinstance(found, str)
    source = Path(found).read_text()

    assert not re.search(r"\.(inner|outer)HTML\s*\+?=", source)
    assert "insertAdjacentHTML" not in source
    assert "document.write" not in source
    assert ".textContent = " in source


@pytest.mark.parametrize(
    ("origin", "allowed"), [(SHOP, True), ("https://evil.example", False), ("", False)]
)
def test_cors_answers_only_allowed_origins(
    client: Client, settings: Any, origin: str, allowed: bool
) -> None:
    settings.RECOMMENDER_CORS_ORIGINS = [SHOP]
    headers = {"Origin": origin} if origin else {}

    response = client.get(API, {"placement": "home", "k": "4"}, headers=headers)

    assert response.status_code == 200
    if allowed:
        assert response["Access-Control-Allow-Origin"] == SHOP
        assert response["Access-Control-Allow-Credentials"] == "true"
    else:
        assert "Access-Control-Allow-Origin" not in response
        assert "Access-Control-Allow-Credentials" not in response


def test_a_preflight_from_an_allowed_origin_gets_the_allow_headers(
    client: Client, settings: Any
) -> None:
    settings.RECOMMENDER_CORS_ORIGINS = [SHOP]

    response = client.options(
        API,
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Content-Type" in response["Access-Control-Allow-Headers"]


def test_answers_are_private_and_vary_on_the_cookie(client: Client) -> None:
    ItemFactory.create()

    response = client.get(API, {"placement": "home"})

    assert response.status_code == 200
    assert "private" in response["Cache-Control"]
    vary = {value.strip().lower() for value in response["Vary"].split(",")}
    assert {"cookie", "origin"} <= vary


# --- A real browser -----------------------------------------------------------------------


@dataclass
class Tab:
    page: Any
    dialogs: list[str] = field(default_factory=list)
    widget_logs: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser_page: Any) -> Tab:  # noqa: F811
    """The e2e Chromium page, recording dialogs and the widget's console logs."""
    opened = Tab(browser_page)

    def on_dialog(dialog: Any) -> None:
        opened.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: Any) -> None:
        if "[pp-recs]" in message.text:
            opened.widget_logs.append(message.text)

    opened.page.on("dialog", on_dialog)
    opened.page.on("console", on_console)
    return opened


def _impressions_after_flush(page: Any, count: int, timeout: float = 5.0) -> list[Interaction]:
    # The beacon queues an impression once a card is half on screen; flush until they land.
    deadline = time.monotonic() + timeout
    found: list[Interaction] = []
    while time.monotonic() < deadline and len(found) < count:
        page.evaluate("window.ppBeacon.flush()")
        time.sleep(0.2)
        found = list(Interaction.objects.filter(event_type=EventType.IMPRESSION))
    return found


@pytest.mark.slow
@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_the_widget_renders_escaped_cards_the_beacon_counts(
    live_server: Any, tab: Tab, settings: Any
) -> None:
    hostile = ItemFactory.create(title=XSS_TITLE, image_url="javascript:alert(2)")
    pictured = ItemFactory.create(
        title="Heat (1995)", image_url=live_server.url + "/static/webapp/no-such.png"
    )
    page = tab.page
    page.context.add_cookies(
        [{"name": settings.CONSENT_COOKIE_NAME, "value": "yes", "url": live_server.url}]
    )

    page.goto(live_server.url + "/widget-demo/")
    page.wait_for_selector("#widget-demo-home[data-recs-state=rendered]")

    home = page.locator("#widget-demo-home")
    assert home.locator("a.pp-recs-link").count() == 2
    assert XSS_TITLE in home.locator(".pp-recs-name").all_inner_texts()
    assert home.locator("img").count() == 1  # only the http(s) image
    assert home.locator(f'[data-pp-item="{pictured.external_id}"] img').count() == 1
    assert "9.99 USD" in home.inner_text()
    card = home.locator(f'a[data-pp-item="{hostile.external_id}"]')
    assert card.get_attribute("href") == f"{live_server.url}/i/{hostile.external_id}/"
    assert card.get_attribute("data-pp-placement") == "home_top_picks"
    assert card.get_attribute("data-pp-model") == "trending"
    assert card.get_attribute("data-pp-rank") in {"1", "2"}
    assert card.get_attribute("data-pp-version") == ""

    card.scroll_into_view_if_needed()
    impressions = _impressions_after_flush(page, 2)
    assert {event.item_id for event in impressions} == {hostile.pk, pictured.pk}
    assert {event.placement for event in impressions} == {"home_top_picks"}
    assert {event.context["model"] for event in impressions} == {"trending"}
    assert tab.dialogs == []
    assert tab.widget_logs == []


@pytest.mark.slow
@pytest.mark.urls(__name__)
@pytest.mark.django_db(transaction=True)
def test_cross_origin_placements_need_the_allow_list_and_keep_fallbacks(
    live_server: Any, tab: Tab, settings: Any
) -> None:
    ItemFactory.create(title="Heat (1995)")
    page = tab.page
    page.goto(live_server.url + "/widget-demo/")
    page.wait_for_selector("#widget-demo-home[data-recs-state=rendered]")
    # The same server under another host name is another origin.
    other_api = live_server.url.replace("localhost", "127.0.0.1") + API
    assert other_api != live_server.url + API
    add_placement = """([id, api, extra]) => {
        const element = document.createElement("div");
        element.id = id;
        element.dataset.recsPlacement = "home";
        element.dataset.recsApi = api;
        Object.assign(element.dataset, extra);
        element.textContent = "fallback " + id;
        document.querySelector("main").appendChild(element);
        return window.ppRecommendations.render(element);
    }"""

    settings.RECOMMENDER_CORS_ORIGINS = []
    assert page.evaluate(add_placement, ["refused", other_api, {}]) is False
    settings.RECOMMENDER_CORS_ORIGINS = [live_server.url]
    assert page.evaluate(add_placement, ["allowed", other_api, {}]) is True
    assert page.evaluate(add_placement, ["unknown", other_api, {"recsPlacement": "x"}]) is False
    missing = {"recsPlacement": "item", "recsItem": "no-such-item"}
    assert page.evaluate(add_placement, ["missing", other_api, missing]) is False

    assert page.locator("#refused").inner_text() == "fallback refused"
    assert page.locator("#allowed .pp-recs-name").all_inner_texts() == ["Heat (1995)"]
    assert page.locator("#unknown").inner_text() == "fallback unknown"
    assert page.locator("#missing").inner_text() == "fallback missing"
    assert len(tab.widget_logs) == 1  # logged once, not once per failure
