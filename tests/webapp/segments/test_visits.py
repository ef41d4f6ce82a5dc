"""The visit middleware: visits counted once per visit, landing facts remembered."""

from typing import Any

import pytest
from django.test import Client

from tests.webapp.segments.factories import segment_with
from webapp.models import Visitor
from webapp.segments.middleware import VISIT_COOKIE_NAME
from webapp.segments.models import VisitorProfile
from webapp.segments.selectors import segments_of_visitor

pytestmark = pytest.mark.django_db

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


@pytest.fixture
def browser() -> Client:
    client = Client(HTTP_USER_AGENT=PHONE)
    client.cookies["pp_consent"] = "yes"
    return client


def only_profile() -> VisitorProfile:
    return VisitorProfile.objects.select_related("visitor").get()


def test_the_landing_request_starts_a_visit_with_its_facts(browser: Client) -> None:
    response = browser.get(
        "/search/?q=x&utm_source=Newsletter&utm_medium=email&utm_campaign=Spring",
        HTTP_REFERER="https://www.mail.example/inbox",
        HTTP_CF_IPCOUNTRY="fr",
    )
    assert response.status_code == 200
    profile = only_profile()
    assert (profile.visit_count, profile.device_type, profile.country) == (1, "mobile", "FR")
    assert (profile.referrer_domain, profile.first_referrer_domain) == (
        "mail.example",
        "mail.example",
    )
    assert (profile.utm_source, profile.utm_medium, profile.utm_campaign) == (
        "newsletter",
        "email",
        "spring",
    )
    assert response.cookies[VISIT_COOKIE_NAME].value == str(profile.visitor.key)


def test_pages_inside_a_visit_cost_no_write_and_a_new_visit_counts(browser: Client) -> None:
    browser.get("/search/?q=a&utm_campaign=spring", HTTP_REFERER="https://google.com/")
    browser.get("/search/?q=b", HTTP_REFERER="http://testserver/search/")
    assert only_profile().visit_count == 1
    # The visit cookie expired (30 minutes without a page): a direct visit keeps the
    # campaign and referrer that brought the visitor, and takes the new device.
    del browser.cookies[VISIT_COOKIE_NAME]
    browser.defaults["HTTP_USER_AGENT"] = DESKTOP
    browser.get("/search/?q=c")
    profile = only_profile()
    assert profile.visit_count == 2
    assert (profile.utm_campaign, profile.referrer_domain) == ("spring", "google.com")
    assert profile.device_type == "desktop"
    assert profile.first_visit_at is not None and profile.last_visit_at is not None
    assert profile.last_visit_at > profile.first_visit_at
    del browser.cookies[VISIT_COOKIE_NAME]
    browser.get("/search/?q=d&utm_source=ads", HTTP_REFERER="https://bing.com/")
    profile = only_profile()
    assert (profile.visit_count, profile.utm_source, profile.utm_campaign) == (3, "ads", "")
    assert (profile.referrer_domain, profile.first_referrer_domain) == ("bing.com", "google.com")


def test_a_returning_visitor_enters_the_returning_segment(browser: Client) -> None:
    returning = segment_with({"attribute": "visitor_type", "operator": "eq", "value": "returning"})
    browser.get("/search/?q=a")
    visitor = Visitor.objects.get()
    assert segments_of_visitor(visitor=visitor) == frozenset()
    del browser.cookies[VISIT_COOKIE_NAME]
    browser.get("/search/?q=b")
    assert segments_of_visitor(visitor=visitor) == {returning.pk}  # the visit dropped the cache


def test_no_consent_no_profile_and_api_calls_are_not_visits(settings: Any) -> None:
    client = Client(HTTP_USER_AGENT=PHONE)
    client.get("/search/?q=a")
    assert not VisitorProfile.objects.exists()
    client.cookies["pp_consent"] = "yes"
    client.get("/api/categories/")
    assert not VisitorProfile.objects.exists()


def test_country_header_is_configurable_and_unknown_codes_are_dropped(
    browser: Client, settings: Any
) -> None:
    settings.SEGMENTS_COUNTRY_HEADER = "X-Country"
    browser.get("/search/?q=a", HTTP_X_COUNTRY="XX", HTTP_CF_IPCOUNTRY="FR")
    assert only_profile().country == ""
    del browser.cookies[VISIT_COOKIE_NAME]
    browser.get("/search/?q=a", HTTP_X_COUNTRY="de")
    assert only_profile().country == "DE"
