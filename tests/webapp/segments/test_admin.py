"""Segment admin: conditions built in rows, clear errors, and the preview count."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.factories import CategoryFactory, VisitorFactory
from tests.webapp.segments.factories import VisitorProfileFactory, segment_with
from webapp.segments.models import Segment

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:segments_segment_add")


@pytest.fixture
def admin_client(db: Any) -> Client:
    User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client = Client()
    client.login(username="boss", password="pw-boss-123")
    return client


def form(*rows: dict[str, str], **fields: str) -> dict[str, str]:
    data = {
        "name": "Mobile regulars",
        "description": "",
        "match": "all",
        "is_active": "on",
        "conditions-TOTAL_FORMS": str(len(rows)),
        "conditions-INITIAL_FORMS": "0",
        "conditions-MIN_NUM_FORMS": "0",
        "conditions-MAX_NUM_FORMS": "1000",
        **fields,
    }
    for index, row in enumerate(rows):
        full = {"group": "1", "key": "", "value": "", "last_days": "", "position": str(index)}
        data |= {f"conditions-{index}-{k}": v for k, v in (full | row).items()}
    return data


def test_a_marketer_builds_a_segment_from_rows(admin_client: Client) -> None:
    response = admin_client.post(
        ADD_URL,
        form(
            {"attribute": "device_type", "operator": "eq", "value": "mobile"},
            {"attribute": "visit_count", "operator": "gte", "value": "3"},
            {"group": "2", "attribute": "utm_campaign", "operator": "eq", "value": "Spring"},
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    segment = Segment.objects.get()
    assert [(c.group, c.attribute, c.value) for c in segment.conditions.all()] == [
        (1, "device_type", "mobile"),
        (1, "visit_count", "3"),
        (2, "utm_campaign", "Spring"),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"attribute": "visit_count", "operator": "contains", "value": "3"}, "does not apply"),
        ({"attribute": "visit_count", "operator": "gt", "value": "many"}, "is not a number"),
        ({"attribute": "cart_value", "operator": "gt", "value": "€20"}, "is not a number"),
        ({"attribute": "day_of_week", "operator": "in", "value": "mon-someday"}, "day name"),
        ({"attribute": "hour_of_day", "operator": "in", "value": "8-24"}, "hour (0-23)"),
        ({"attribute": "context", "operator": "eq", "value": "high"}, "Give the context key"),
        (
            {"attribute": "visit_count", "operator": "gt", "value": "1", "last_days": "7"},
            "does not look back over days",
        ),
        (
            {"attribute": "viewed_category", "operator": "in", "value": "films,nope"},
            "Unknown category slugs: nope",
        ),
    ],
)
def test_bad_rows_are_clear_form_errors(
    admin_client: Client, row: dict[str, str], message: str
) -> None:
    CategoryFactory.create(slug="films")
    response = admin_client.post(ADD_URL, form(row))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Segment.objects.exists()


def test_an_empty_segment_is_refused(admin_client: Client) -> None:
    response = admin_client.post(ADD_URL, form())
    assert response.status_code == 200
    assert "Add at least one condition" in response.content.decode()
    assert not Segment.objects.exists()


def test_change_page_and_list_show_how_many_visitors_match(admin_client: Client) -> None:
    segment = segment_with(
        {"attribute": "visit_count", "operator": "gte", "value": "2"},
        {"attribute": "day_of_week", "operator": "in", "value": "mon-fri"},
    )
    for visits in (1, 2, 5):
        VisitorProfileFactory.create(visitor=VisitorFactory.create(), visit_count=visits)
    page = admin_client.get(reverse("admin:segments_segment_change", args=[segment.pk]))
    text = page.content.decode()
    assert "2 known visitors match now." in text
    assert "Day of week (e.g. mon-fri) are evaluated at request time" in text
    listing = admin_client.get(reverse("admin:segments_segment_changelist")).content.decode()
    assert "2 (+ time rules)" in listing
