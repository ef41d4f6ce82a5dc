"""A real browser: an anonymous visitor's home page adapts within the session, and the
beacon logs impressions and clicks of recommended items with their model version."""

import time
from typing import Any

import pytest
from django.conf import settings

from ml.models import ModelVersion, ModelVersionStatus
from recommender.candidates import Section
from tests.e2e.test_browser import DESKTOP_UA, browser_page  # noqa: F401  (the fixture)
from tests.factories import experiment_with_variants
from tests.recommender.conftest import build_world, reset_serving, train
from webapp.experiments.models import Exposure, Variant
from webapp.middleware import visitor_key_from_token
from webapp.models import EventType, Interaction, Visitor

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _serving_settings(settings: Any, tmp_path: Any) -> None:
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    settings.RECOMMENDER_MODEL_REFRESH_SECONDS = 0.0
    settings.RECOMMENDER_LATENCY_BUDGET_MS = 10_000.0
    settings.RECOMMENDER_STATEMENT_TIMEOUT_MS = 10_000
    settings.RECOMMENDER_MAX_CATEGORY_SHARE = 1.0
    reset_serving()


def section_titles(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("section.shelf h2").all_inner_texts()]


def card_titles(page: Any, section: str) -> list[str]:
    return page.locator(f'section[data-section="{section}"] .card-title').all_inner_texts()


def wait_for(query: Any, timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = query.first()
        if found is not None:
            return found
        time.sleep(0.1)
    return None


def test_home_page_adapts_to_the_session_and_logs_what_was_shown(
    live_server: Any,
    browser_page: Any,  # noqa: F811
) -> None:
    world = build_world()
    train()
    page = browser_page

    page.goto(live_server.url + "/")
    page.locator("#consent-banner").get_by_role("button", name="Accept").click()
    page.wait_for_load_state()
    assert "Top picks for you" not in section_titles(page)
    assert "Trending now" in section_titles(page)

    for item in world.clusters[2][:3]:
        page.goto(f"{live_server.url}/i/{item.external_id}/")
        assert page.locator("h1").inner_text() == item.title
    page.goto(live_server.url + "/")

    titles = section_titles(page)
    assert titles[0] == "Top picks for you"
    assert f"Because you viewed {world.clusters[2][2].title}" in titles
    picks = card_titles(page, Section.TOP_PICKS)
    assert picks and all(title.startswith("Film 2-") for title in picks[:4])
    assert not {item.title for item in world.clusters[2][:3]} & set(picks)

    page.evaluate("window.ppBeacon.flush()")
    home = ModelVersion.objects.get(role="home", status=ModelVersionStatus.ACTIVE)
    impression = wait_for(
        Interaction.objects.filter(
            event_type=EventType.IMPRESSION, placement=Section.TOP_PICKS
        ).order_by("pk")
    )
    assert impression is not None, "the beacon sent no impression of top picks"
    assert impression.context["model_version"] == home.pk
    assert impression.context["rank"] >= 1 and impression.context["model"] == "ease"

    page.locator(f'section[data-section="{Section.TOP_PICKS}"] a.card-link').first.click()
    page.wait_for_load_state()
    page.evaluate("window.ppBeacon && window.ppBeacon.flush()")
    click = wait_for(
        Interaction.objects.filter(event_type=EventType.CLICK, placement=Section.TOP_PICKS)
    )
    assert click is not None and click.context["rank"] == 1
    assert click.context["model_version"] == home.pk


def test_two_fresh_visitors_see_their_assigned_variants_and_are_exposed(
    live_server: Any,
    browser_page: Any,  # noqa: F811
) -> None:
    build_world()
    train()
    experiment = experiment_with_variants(key="trend-vs-popular", placement=Section.TRENDING)
    Variant.objects.filter(experiment=experiment, key="v1").update(config={"strategy": "popular"})
    titles = {
        "trend-vs-popular=control": "Trending now",
        "trend-vs-popular=v1": "Popular right now",
    }
    browser = browser_page.context.browser
    seen: dict[str, Visitor] = {}

    for _ in range(12):  # fresh browsers until both variants showed up (50/50 by the hash)
        context = browser.new_context(user_agent=DESKTOP_UA)
        page = context.new_page()
        page.goto(live_server.url + "/")
        page.locator("#consent-banner").get_by_role("button", name="Accept").click()
        page.wait_for_load_state()
        section = page.locator(f'section[data-section="{Section.TRENDING}"]')
        token = section.get_attribute("data-variant")
        assert token in titles and section.locator("h2").inner_text() == titles[token]
        cookie = next(c for c in context.cookies() if c["name"] == settings.VISITOR_COOKIE_NAME)
        key = visitor_key_from_token(cookie["value"])
        assert key is not None
        seen.setdefault(token, Visitor.objects.get(key=key))
        context.close()
        if len(seen) == 2:
            break

    assert len(seen) == 2, f"12 fresh visitors all got {list(seen)}"
    for token, visitor in seen.items():
        exposure = Exposure.objects.get(experiment=experiment, visitor=visitor)
        assert f"{experiment.key}={exposure.variant.key}" == token
