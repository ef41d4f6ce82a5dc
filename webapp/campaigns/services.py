"""Writes on campaigns: assignments and views at render, clicks, bandit reweighting."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from webapp.campaigns.models import (
    Campaign,
    CampaignAssignment,
    CampaignEvent,
    CampaignEventKind,
    CampaignStatus,
    Creative,
    CreativeWeightHistory,
    creatives_errors,
)
from webapp.campaigns.selectors import SlotDecision
from webapp.experiments.stats.bandit import BanditAllocation, thompson_allocation
from webapp.models import Visitor


def campaign_slot_record(
    *, decision: SlotDecision, visitor: Visitor, now: datetime | None = None
) -> None:
    """Store the person's assignment (first render only) and one view of the slot.

    The unique (campaign, person) constraint makes a racing second insert a no-op: the
    first stored assignment is the one that sticks.
    """
    now = now or timezone.now()
    creative_id = decision.creative.pk if decision.creative is not None else None
    if not decision.stored:
        CampaignAssignment.objects.bulk_create(
            [
                CampaignAssignment(
                    campaign_id=decision.campaign.pk,
                    creative_id=creative_id,
                    person=decision.person,
                    visitor_id=visitor.pk,
                    user_id=visitor.user_id,
                    assigned_at=now,
                )
            ],
            ignore_conflicts=True,
        )
    CampaignEvent.objects.create(
        campaign_id=decision.campaign.pk,
        creative_id=creative_id,
        person=decision.person,
        kind=CampaignEventKind.VIEW,
        at=now,
    )


def campaign_set_status(*, campaign: Campaign, status: str) -> Campaign:
    """Move a campaign to `status` after the same checks as the admin form.

    ValidationError (nothing saved) when an ended campaign would restart, when an active
    one has no creatives or weights not summing to 100, or when it would tie with another.
    """
    if campaign.status == CampaignStatus.ENDED and status != CampaignStatus.ENDED:
        raise ValidationError("An ended campaign cannot be restarted: copy it instead.")
    if status == CampaignStatus.ACTIVE:
        weights = list(campaign.creatives.values_list("weight", flat=True))
        errors = creatives_errors(weights=weights, count=len(weights))
        if not weights:
            errors.append("An active campaign needs at least one creative.")
        if errors:
            raise ValidationError(errors)
    campaign.status = status
    campaign.full_clean()
    campaign.save(update_fields=["status", "updated_at"])
    return campaign


def campaign_click_record(*, creative: Creative, person: str, now: datetime | None = None) -> None:
    """One followed link of a creative by a person."""
    CampaignEvent.objects.create(
        campaign_id=creative.campaign_id,
        creative=creative,
        person=person,
        kind=CampaignEventKind.CLICK,
        at=now or timezone.now(),
    )


def creative_click_counts(*, campaign: Campaign) -> dict[int, tuple[int, int]]:
    """Creative id -> (persons assigned, persons who clicked) for the bandit."""
    assigned = dict(
        CampaignAssignment.objects.filter(campaign=campaign, creative__isnull=False)
        .values("creative_id")
        .annotate(n=Count("pk"))
        .values_list("creative_id", "n")
    )
    clicked = dict(
        CampaignEvent.objects.filter(campaign=campaign, kind=CampaignEventKind.CLICK)
        .values("creative_id")
        .annotate(n=Count("person", distinct=True))
        .values_list("creative_id", "n")
    )
    return {
        pk: (assigned.get(pk, 0), min(clicked.get(pk, 0), assigned.get(pk, 0)))
        for pk in campaign.creatives.values_list("pk", flat=True)
    }


def campaign_bandit_update(
    *, campaign_id: int, now: datetime | None = None, seed: int | None = None
) -> BanditAllocation | None:
    """Thompson-sampling weights for an active bandit campaign's creatives (None: not one).

    Weights change only once every creative has `bandit_min_visitors` persons; each keeps
    at least `bandit_min_share`. Every run is written to the weight history.
    """
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or not campaign.bandit or campaign.status != CampaignStatus.ACTIVE:
            return None
        creatives = list(campaign.creatives.order_by("position", "pk"))
        if len(creatives) < 2:
            return None
        counts = creative_click_counts(campaign=campaign)
        current = _current_shares(creatives)
        allocation = thompson_allocation(
            [counts[c.pk][1] for c in creatives],
            [counts[c.pk][0] for c in creatives],
            current_weights=current,
            min_share=campaign.bandit_min_share,
            min_trials=campaign.bandit_min_visitors,
            seed=seed if seed is not None else int(now.timestamp()),
        )
        _store(campaign, creatives, allocation, counts, now)
    return allocation


def _current_shares(creatives: list[Creative]) -> list[float]:
    if all(c.bandit_weight is not None for c in creatives):
        return [c.bandit_weight or 0.0 for c in creatives]
    total = sum(c.weight for c in creatives) or 1
    return [c.weight / total for c in creatives]


def _store(
    campaign: Campaign,
    creatives: list[Creative],
    allocation: BanditAllocation,
    counts: dict[int, tuple[int, int]],
    now: datetime,
) -> None:
    for creative, weight in zip(creatives, allocation.weights, strict=True):
        if allocation.updated:
            creative.bandit_weight = weight
            creative.save(update_fields=["bandit_weight"])
    CreativeWeightHistory.objects.bulk_create(
        CreativeWeightHistory(
            campaign=campaign,
            creative=creative,
            at=now,
            trials=counts[creative.pk][0],
            successes=counts[creative.pk][1],
            probability_best=p_best,
            weight=weight,
            updated=allocation.updated,
        )
        for creative, weight, p_best in zip(
            creatives, allocation.weights, allocation.probability_best, strict=True
        )
    )


def campaigns_bandit_ids() -> list[int]:
    """Ids of the active bandit campaigns (the periodic task updates each)."""
    return list(
        Campaign.objects.filter(Q(status=CampaignStatus.ACTIVE), bandit=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
