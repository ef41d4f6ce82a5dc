"""The slot tag: escaped content, data attributes, recording, private responses, clicks."""

from html.parser import HTMLParser
from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory

from tests.factories import VisitorFactory
from tests.webapp.campaigns.conftest import campaign_with
from webapp.campaigns.models import CampaignAssignment, CampaignEvent, CampaignEventKind

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
XSS = '<script>alert("x")</script>"\'><img src=x onerror=alert(1)>'


def render_slot(placement: str, visitor: Any) -> str:
    request = RequestFactory().get("/")
    request.visitor = visitor  # type: ignore[attr-defined]
    template = Template('{% load campaigns %}{% campaign_slot "' + placement + '" %}')
    return template.render(Context({"request": request}))


class TagCollector(HTMLParser):
    """Every start tag and its attributes, as a browser would parse the markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parsed_tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = TagCollector()
    collector.feed(html)
    return collector.tags


@pytest.mark.parametrize("field", ["headline", "text", "offer_code", "image_url", "link_url"])
def test_every_content_field_is_escaped(field: str) -> None:
    value = ("https://example.com/" + XSS) if field in ("image_url", "link_url") else XSS
    campaign_with({"headline": "Sale", "text": "Now", "offer_code": "SAVE", field: value})

    html = render_slot("home_hero", VisitorFactory.create())

    tags = parsed_tags(html)
    assert tags and tags[0][0] == "aside"  # the slot rendered
    assert not [tag for tag, _ in tags if tag == "script"]
    assert not [attrs for _, attrs in tags if "onerror" in attrs]
    assert not [attrs for tag, attrs in tags if tag == "img" and attrs.get("src") == "x"]
    if field in ("headline", "text", "offer_code"):
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


@pytest.mark.parametrize("url", ["javascript:alert(1)", "//evil.example/x", "data:text/html,x"])
def test_unsafe_link_schemes_are_dropped(url: str) -> None:
    campaign_with({"headline": "Sale", "link_url": url, "image_url": url})
    html = render_slot("home_hero", VisitorFactory.create())
    assert "Sale" in html and url not in html and "href" not in html and "<img" not in html


def test_slot_carries_data_attributes_and_records_assignment_and_view() -> None:
    campaign = campaign_with({"headline": "Hero", "link_url": "/sale/"})
    creative = campaign.creatives.get()
    visitor = VisitorFactory.create()

    html = render_slot("home_hero", visitor)

    assert 'data-pp-placement="campaign:home_hero"' in html
    assert f'data-pp-campaign="{campaign.pk}"' in html
    assert f'data-pp-creative="{creative.pk}"' in html
    assert f'href="/campaigns/click/{creative.pk}/"' in html
    assert CampaignAssignment.objects.get().creative == creative
    assert CampaignEvent.objects.get().kind == CampaignEventKind.VIEW


def test_unknown_placement_is_a_template_error() -> None:
    from django.template import TemplateSyntaxError

    with pytest.raises(TemplateSyntaxError, match="unknown placement"):
        render_slot("sidebar", VisitorFactory.create())


@pytest.fixture
def client(settings: Any) -> Client:
    client = Client(HTTP_USER_AGENT=BROWSER)  # an empty user agent is a bot
    client.cookies[settings.CONSENT_COOKIE_NAME] = "yes"
    return client


def test_pages_with_a_campaign_are_private_and_show_it(client: Client) -> None:
    campaign_with({"headline": "Banner for you"}, placement="site_banner")
    campaign_with({"headline": "Hero for you"}, placement="home_hero")

    response = client.get("/search/?q=x")
    home = client.get("/")

    assert "Banner for you" in response.content.decode()
    assert "private" in response["Cache-Control"]
    assert "Hero for you" in home.content.decode() and "private" in home["Cache-Control"]


def test_click_endpoint_counts_and_redirects(client: Client) -> None:
    campaign = campaign_with({"headline": "Go", "link_url": "https://example.com/sale"})
    creative = campaign.creatives.get()
    client.get("/")  # a visitor cookie

    response = client.get(f"/campaigns/click/{creative.pk}/")

    assert response.status_code == 302 and response["Location"] == "https://example.com/sale"
    assert (
        CampaignEvent.objects.filter(kind=CampaignEventKind.CLICK, creative=creative).count() == 1
    )


def test_the_holdout_renders_nothing_but_is_recorded() -> None:
    campaign_with({"headline": "Hero"}, holdout_percent=50)
    visitors = VisitorFactory.create_batch(30)

    pages = {v.pk: render_slot("home_hero", v) for v in visitors}

    held = set(
        CampaignAssignment.objects.filter(creative__isnull=True).values_list("visitor", flat=True)
    )
    assert 0 < len(held) < 30
    assert all(pages[pk] == "" for pk in held)
    assert all("Hero" in html for pk, html in pages.items() if pk not in held)
