"""Reads on campaigns: which campaign and creative a visitor gets in a placement.

Serving reads campaigns from a per-process snapshot reloaded at most every
LIVE_CACHE_SECONDS (saving a campaign or creative clears this process's copy at once):
with no active campaign in schedule for a placement, deciding costs no query. Otherwise
the rules, in order: the visitor's segments (one shared-cache read), frequency caps (one
query when a candidate has a cap), the highest priority (then the lowest pk) wins; then
the person's stored assignment (one query); else the holdout by hash, else a creative
by hash over the configured weights, or over the bandit's weights in bandit mode.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from webapp.campaigns.models import (
    Campaign,
    CampaignAssignment,
    CampaignEvent,
    CampaignEventKind,
    CampaignStatus,
    Creative,
)
from webapp.campaigns.schedule import Schedule
from webapp.experiments.assignment import unit_hash, variant_for
from webapp.experiments.selectors import person_of
from webapp.models import Visitor
from webapp.segments.selectors import RequestContext, segments_of_visitor

LIVE_CACHE_SECONDS = 30.0
# Bandit shares become integer weights of this resolution for the hash split.
BANDIT_WEIGHT_SCALE = 10_000

_LIVE_CACHE: dict[str, tuple[float, tuple["LiveCampaign", ...]]] = {}


@dataclass(frozen=True, slots=True)
class LiveCreative:
    """A creative's content and weights as the serving path needs them."""

    pk: int
    headline: str
    text: str
    image_url: str
    link_url: str
    offer_code: str
    weight: int
    bandit_weight: float | None


@dataclass(frozen=True, slots=True)
class LiveCampaign:
    """An active campaign as the serving path needs it (no model instance, no DB)."""

    pk: int
    name: str
    placement: str
    priority: int
    segment_id: int | None
    schedule: Schedule
    holdout_percent: int
    cap_views: int | None
    cap_days: int | None
    bandit: bool
    creatives: tuple[LiveCreative, ...]

    @property
    def seed(self) -> str:
        return f"campaign-{self.pk}"

    def creative(self, pk: int) -> LiveCreative | None:
        return next((c for c in self.creatives if c.pk == pk), None)

    def serving_weights(self) -> list[int]:
        """The hash split's weights: the bandit's when it has set them all, else the admin's."""
        shares = [c.bandit_weight for c in self.creatives]
        if self.bandit and all(share is not None for share in shares):
            return [max(1, round((share or 0) * BANDIT_WEIGHT_SCALE)) for share in shares]
        return [c.weight for c in self.creatives]


@dataclass(frozen=True, slots=True)
class SlotDecision:
    """What a person gets in a placement: a creative, or nothing because of the holdout."""

    campaign: LiveCampaign
    creative: LiveCreative | None  # None: the holdout
    person: str
    stored: bool  # the assignment already exists

    @property
    def is_holdout(self) -> bool:
        return self.creative is None


def campaigns_timezone() -> ZoneInfo:
    return ZoneInfo(getattr(settings, "CAMPAIGNS_TIMEZONE", "UTC") or "UTC")


def live_campaign_of(campaign: Campaign, creatives: list[Creative]) -> LiveCampaign:
    """The snapshot of one campaign with its creatives."""
    return LiveCampaign(
        pk=campaign.pk,
        name=campaign.name,
        placement=campaign.placement,
        priority=campaign.priority,
        segment_id=campaign.segment_id,
        schedule=campaign.schedule,
        holdout_percent=campaign.holdout_percent,
        cap_views=campaign.cap_views,
        cap_days=campaign.cap_days,
        bandit=campaign.bandit,
        creatives=tuple(
            LiveCreative(
                c.pk,
                c.headline,
                c.text,
                c.image_url,
                c.link_url,
                c.offer_code,
                c.weight,
                c.bandit_weight,
            )
            for c in sorted(creatives, key=lambda c: (c.position, c.pk))
        ),
    )


def campaigns_active_load() -> tuple[LiveCampaign, ...]:
    """Every active campaign that has creatives (one query, two when there are some)."""
    active = Campaign.objects.filter(status=CampaignStatus.ACTIVE).prefetch_related("creatives")
    live = (live_campaign_of(c, list(c.creatives.all())) for c in active.order_by("pk"))
    return tuple(c for c in live if c.creatives)


def campaigns_active_cached() -> tuple[LiveCampaign, ...]:
    """This process's snapshot of active campaigns, at most LIVE_CACHE_SECONDS old."""
    cached = _LIVE_CACHE.get("active")
    if cached is None or time.monotonic() - cached[0] > LIVE_CACHE_SECONDS:
        cached = (time.monotonic(), campaigns_active_load())
        _LIVE_CACHE["active"] = cached
    return cached[1]


def campaigns_cache_clear() -> None:
    """Forget this process's snapshot (after a campaign or a creative changed)."""
    _LIVE_CACHE.clear()


def campaigns_live_for(*, placement: str, now: datetime) -> list[LiveCampaign]:
    """Active campaigns on `placement` inside their schedule, best first (no query if cached)."""
    zone = campaigns_timezone()
    live = [
        c
        for c in campaigns_active_cached()
        if c.placement == placement and c.schedule.contains(now, zone=zone)
    ]
    return sorted(live, key=lambda c: (-c.priority, c.pk))


def campaigns_over_cap(
    *, person: str, campaigns: list[LiveCampaign], now: datetime
) -> frozenset[int]:
    """Ids of the capped campaigns the person has already viewed too often (one query)."""
    capped = [c for c in campaigns if c.cap_views is not None and c.cap_days is not None]
    if not capped:
        return frozenset()
    counts = {
        f"c{c.pk}": Count(
            "pk", filter=Q(campaign_id=c.pk, at__gte=now - timedelta(days=c.cap_days or 0))
        )
        for c in capped
    }
    row = CampaignEvent.objects.filter(
        person=person, kind=CampaignEventKind.VIEW, campaign_id__in=[c.pk for c in capped]
    ).aggregate(**counts)
    return frozenset(c.pk for c in capped if (row[f"c{c.pk}"] or 0) >= (c.cap_views or 0))


def campaign_for_slot(
    *,
    visitor: Visitor | None,
    placement: str,
    now: datetime | None = None,
    request_context: RequestContext | None = None,
) -> SlotDecision | None:
    """The campaign decision for `visitor` in `placement`, or None (nothing applies).

    Visitors without consent (None) and bots get no campaign: they cannot be assigned
    or counted.
    """
    if visitor is None or visitor.is_bot:
        return None
    now = now or timezone.now()
    live = campaigns_live_for(placement=placement, now=now)
    if not live:
        return None
    if any(c.segment_id is not None for c in live):
        member = segments_of_visitor(visitor=visitor, request_context=request_context)
        live = [c for c in live if c.segment_id is None or c.segment_id in member]
    person = person_of(visitor)
    capped = campaigns_over_cap(person=person, campaigns=live, now=now)
    winner = next((c for c in live if c.pk not in capped), None)
    if winner is None:
        return None
    return _decide(winner, person)


def _decide(campaign: LiveCampaign, person: str) -> SlotDecision:
    row = (
        CampaignAssignment.objects.filter(campaign_id=campaign.pk, person=person)
        .values_list("pk", "creative_id")
        .first()
    )
    if row is not None:
        if row[1] is None:
            return SlotDecision(campaign, None, person, stored=True)
        creative = campaign.creative(row[1])
        if creative is not None:
            return SlotDecision(campaign, creative, person, stored=True)
    # No assignment yet (or its creative was deleted, which deletes the row too).
    return SlotDecision(campaign, creative_by_hash(campaign, person), person, stored=False)


def creative_by_hash(campaign: LiveCampaign, person: str) -> LiveCreative | None:
    """The holdout (None) or a creative for a person without a stored assignment."""
    if unit_hash(f"{campaign.seed}.holdout", person) < campaign.holdout_percent / 100:
        return None
    index = variant_for(campaign.seed, 1, person, campaign.serving_weights())
    return campaign.creatives[index]
