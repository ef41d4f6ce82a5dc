"""Celery tasks of campaigns (queue `default`): the bandit's periodic reweighting."""

import logging

from celery import shared_task

from webapp.campaigns.services import campaign_bandit_update, campaigns_bandit_ids

logger = logging.getLogger(__name__)


@shared_task(
    name="webapp.campaigns.tasks.campaign_bandit_update",
    time_limit=10 * 60,
    soft_time_limit=9 * 60,
)
def campaign_bandit_update_task(campaign_id: int) -> bool:
    """Reweight one bandit campaign's creatives; True when the weights changed."""
    allocation = campaign_bandit_update(campaign_id=campaign_id)
    return bool(allocation and allocation.updated)


@shared_task(
    name="webapp.campaigns.tasks.campaigns_bandit_update_all",
    time_limit=30 * 60,
    soft_time_limit=29 * 60,
)
def campaigns_bandit_update_all() -> int:
    """Reweight every active bandit campaign (periodic); returns how many changed."""
    changed = 0
    for campaign_id in campaigns_bandit_ids():
        allocation = campaign_bandit_update(campaign_id=campaign_id)
        changed += bool(allocation and allocation.updated)
    logger.info("campaigns: bandit weights changed for %d campaigns", changed)
    return changed
