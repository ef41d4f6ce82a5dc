"""A real browser: accept consent on the banner, open an item, and the view is logged."""

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import ItemFactory
from webapp.models import EventType, Interaction, Item

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Headless Chromium says "HeadlessChrome" in its user agent, which the site counts as a bot.
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; our ORM calls here are sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


def _wait_for_view(item: Item, timeout: float = 5.0) -> Interaction | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = Interaction.objects.filter(item=item, event_type=EventType.VIEW).first()
        if event is not None:
            return event
        time.sleep(0.1)
    return None


def test_consent_then_item_view_is_logged(live_server: Any, browser_page: Any) -> None:
    ItemFactory.create(title="Heat (1995)")
    target = ItemFactory.create(title="Toy Story (1995)", attributes={"year": 1995})
    page = browser_page

    page.goto(live_server.url + "/")
    banner = page.locator("#consent-banner")
    assert banner.is_visible()
    banner.get_by_role("button", name="Accept").click()
    page.wait_for_load_state()
    assert page.locator("#consent-banner").count() == 0
    assert page.locator('meta[name="pp-beacon-token"]').get_attribute("content")

    # Trending tops up with new items, so the card may sit in either home section.
    page.locator(f'a[data-pp-item="{target.external_id}"]').first.click()
    page.wait_for_url(f"**/i/{target.external_id}/")
    assert page.locator("h1").inner_text() == "Toy Story (1995)"

    event = _wait_for_view(target)
    assert event is not None, "the item view was not logged"
    assert event.is_bot is False
    assert event.session_id
    assert event.context["device"] == "desktop"
    assert not Interaction.objects.filter(event_type=EventType.VIEW).exclude(item=target).exists()
