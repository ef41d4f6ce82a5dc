"""Admin: each invalid campaign is a clear form error; the uplift report on a built log."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import InteractionFactory, VisitorFactory
from tests.webapp.campaigns.conftest import campaign_with
from webapp.campaigns.models import Campaign, CampaignAssignment, CampaignEvent, CampaignEventKind
from webapp.campaigns.report import campaign_report
from webapp.campaigns.services import campaign_bandit_update
from webapp.models import EventType

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/campaigns/campaign/add/"


def post_data(campaign: dict[str, Any], creatives: list[dict[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Spring sale",
        "status": "active",
        "placement": "home_hero",
        "priority": "1",
        "days": ["0", "1", "2", "3", "4", "5", "6"],
        "hour_from": "0",
        "hour_to": "24",
        "holdout_percent": "10",
        "bandit_min_share": "0.05",
        "bandit_min_visitors": "100",
        "creatives-TOTAL_FORMS": str(len(creatives)),
        "creatives-INITIAL_FORMS": "0",
        "creatives-MIN_NUM_FORMS": "0",
        "creatives-MAX_NUM_FORMS": "1000",
    } | campaign
    for i, creative in enumerate(creatives):
        fields = {"headline": "Hi", "weight": "100", "position": str(i)} | creative
        data |= {f"creatives-{i}-{key}": value for key, value in fields.items()}
    return data


def test_a_valid_campaign_is_saved(admin_client: Client) -> None:
    data = post_data({}, [{"weight": "60"}, {"weight": "40", "text": "Two"}])
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Campaign.objects.get().creatives.count() == 2


@pytest.mark.parametrize(
    ("campaign", "creatives", "message"),
    [
        ({}, [{"weight": "60"}, {"weight": "30"}], "must add up to 100 (they add up to 90)"),
        (
            {
                "starts_at_0": "2026-05-02",
                "starts_at_1": "10:00",
                "ends_at_0": "2026-05-01",
                "ends_at_1": "10:00",
            },
            [{}],
            "The end must be after the start.",
        ),
        (
            {},
            [{"headline": "", "text": "", "image_url": ""}],
            "needs a headline, a text or an image",
        ),
        ({"hour_from": "18", "hour_to": "9"}, [{}], "must be after the first hour"),
        ({"hour_to": "25"}, [{}], "between 1 and 24"),
        ({"days": []}, [{}], "Pick at least one day"),
        ({"holdout_percent": "60"}, [{}], "between 0 and 50"),
        ({}, [{"link_url": "javascript:alert(1)"}], "must start with http://"),
        ({"cap_views": "3"}, [{}], "needs both the number of views and the days"),
    ],
)
def test_invalid_campaigns_are_form_errors(
    admin_client: Client, campaign: dict[str, Any], creatives: list[dict[str, Any]], message: str
) -> None:
    response = admin_client.post(ADD_URL, post_data(campaign, creatives))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Campaign.objects.exists()


def test_overlapping_campaign_with_equal_priority_is_refused(admin_client: Client) -> None:
    campaign_with({"headline": "Old"}, name="Winter", priority=1, days=[0, 1])
    response = admin_client.post(ADD_URL, post_data({"days": ["1", "2"]}, [{}]))
    assert response.status_code == 200
    assert "Campaign “Winter”" in response.content.decode()
    assert "same priority (1)" in response.content.decode()


@pytest.mark.parametrize(
    "campaign",
    [{"priority": "2"}, {"days": ["3"]}, {"status": "draft"}, {"placement": "site_banner"}],
)
def test_no_overlap_when_priority_days_status_or_placement_differ(
    admin_client: Client, campaign: dict[str, Any]
) -> None:
    campaign_with({"headline": "Old"}, name="Winter", priority=1, days=[0, 1])
    response = admin_client.post(ADD_URL, post_data(campaign, [{}]))
    assert response.status_code == 302


def build_log(campaign: Campaign) -> None:
    """40 exposed (10 buy after their assignment, 4 click) and 40 holdout (2 buy)."""
    creative = campaign.creatives.get()
    start = timezone.now() - timedelta(days=2)
    for i in range(80):
        visitor = VisitorFactory.create()
        exposed = i < 40
        CampaignAssignment.objects.create(
            campaign=campaign,
            creative=creative if exposed else None,
            person=f"visitor:{visitor.pk}",
            visitor=visitor,
            assigned_at=start,
        )
        bought = (exposed and i < 10) or (not exposed and i < 42)
        if bought:
            InteractionFactory.create(
                visitor=visitor, event_type=EventType.PURCHASE, timestamp=start + timedelta(hours=1)
            )
        if i == 45:  # a purchase before the assignment does not count
            InteractionFactory.create(
                visitor=visitor, event_type=EventType.PURCHASE, timestamp=start - timedelta(hours=1)
            )
        if exposed and i < 4:
            CampaignEvent.objects.create(
                campaign=campaign,
                creative=creative,
                person=f"visitor:{visitor.pk}",
                kind=CampaignEventKind.CLICK,
                at=start,
            )


def test_uplift_report_on_a_constructed_log(admin_client: Client) -> None:
    from scipy import stats

    campaign = campaign_with({"headline": "Hero"}, holdout_percent=50)
    build_log(campaign)

    report = campaign_report(campaign)

    assert (report.exposed.persons, report.exposed.converted, report.exposed.clicked) == (40, 10, 4)
    assert (report.holdout.persons, report.holdout.converted) == (40, 2)
    assert report.uplift is not None
    assert report.uplift.absolute_lift == pytest.approx(0.25 - 0.05)
    pooled = 12 / 80
    z = 0.2 / (pooled * (1 - pooled) * (2 / 40)) ** 0.5
    assert report.uplift.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-6)
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "campaign-conversion-chart" in html and "<svg" in html


def test_bandit_report_shows_allocation_and_posteriors(admin_client: Client) -> None:
    campaign = campaign_with(
        {"headline": "A", "weight": 50}, {"headline": "B", "weight": 50}, bandit=True
    )
    campaign_bandit_update(campaign_id=campaign.pk, seed=1)
    page = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/report/")
    html = page.content.decode()
    assert "campaign-allocation-chart" in html and "Posterior of the click rate" in html
    changelist = admin_client.get("/admin/campaigns/campaign/")
    assert "Uplift report" in changelist.content.decode()


def test_activate_action_refuses_a_tie_and_reports_it(admin_client: Client) -> None:
    campaign_with({"headline": "Old"}, name="Winter", priority=1)
    draft = campaign_with({"headline": "New"}, name="Spring", priority=1, status="draft")
    fine = campaign_with({"headline": "Other"}, name="Summer", priority=2, status="draft")

    response = admin_client.post(
        "/admin/campaigns/campaign/",
        {"action": "activate", "_selected_action": [draft.pk, fine.pk]},
        follow=True,
    )

    html = response.content.decode()
    assert "Spring: Campaign “Winter”" in html and "Summer is now active." in html
    draft.refresh_from_db()
    fine.refresh_from_db()
    assert (draft.status, fine.status) == ("draft", "active")
