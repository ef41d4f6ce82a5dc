"""Campaign fixtures: a clean process snapshot around every test, and a campaign builder."""

from collections.abc import Iterator
from typing import Any

import pytest

from webapp.campaigns.models import Campaign, CampaignStatus, Creative
from webapp.campaigns.selectors import campaigns_cache_clear


@pytest.fixture(autouse=True)
def _campaign_snapshot_clear() -> Iterator[None]:
    # After too: a campaign rolled back with this test must not reach other tests' pages.
    campaigns_cache_clear()
    yield
    campaigns_cache_clear()


def campaign_with(*creatives: dict[str, Any], **fields: Any) -> Campaign:
    """An active campaign (everyone, always) with these creatives (field dicts)."""
    defaults: dict[str, Any] = {
        "name": "Campaign",
        "status": CampaignStatus.ACTIVE,
        "placement": "home_hero",
    }
    campaign = Campaign.objects.create(**(defaults | fields))
    for position, creative in enumerate(creatives or ({"headline": "Hello"},)):
        values = {"weight": 100 // max(1, len(creatives)), "position": position} | creative
        Creative.objects.create(campaign=campaign, **values)
    return campaign
