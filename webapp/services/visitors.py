"""Writes on visitors: creation, login merge, export and erasure."""

import re
import uuid
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from webapp.models import Interaction, Visitor

BOT_USER_AGENT = re.compile(
    r"bot|crawl|spider|slurp|bingpreview|facebookexternalhit|headlesschrome|phantomjs|"
    r"python-requests|python-urllib|curl/|wget/|scrapy|httpclient|go-http-client|java/",
    re.IGNORECASE,
)
# Every per-visitor cache entry is named here so erasure can find all of them.
VISITOR_CACHE_NAMES = ("recent_items", "segments", "recommendations")


def user_agent_is_bot(user_agent: str) -> bool:
    return not user_agent or bool(BOT_USER_AGENT.search(user_agent))


def visitor_cache_key(visitor_key: uuid.UUID | str, name: str) -> str:
    assert name in VISITOR_CACHE_NAMES, name
    return f"visitor:{visitor_key}:{name}"


def visitor_create(*, is_bot: bool = False, consent: bool = False) -> Visitor:
    """A new anonymous visitor (one per cookie)."""
    return Visitor.objects.create(
        is_bot=is_bot, consent_given_at=timezone.now() if consent else None
    )


def visitor_resolve(*, key: uuid.UUID | str) -> Visitor | None:
    """The live visitor for a cookie key, following merges."""
    # No join, no ORDER BY: this runs on every request; merged cookies are rare.
    # The account comes along (a join): the middleware verifies the session against it.
    visitor = next(iter(Visitor.objects.select_related("user").filter(key=key)[:1]), None)
    seen: set[int] = set()
    while visitor is not None and visitor.merged_into_id is not None and visitor.pk not in seen:
        seen.add(visitor.pk)
        visitor = Visitor.objects.select_related("user").filter(pk=visitor.merged_into_id).first()
    return visitor


def exposures_merge_on_login(*, anonymous: Visitor, user: User) -> int:
    """Experiments keep one variant per person across login (webapp.experiments rules)."""
    from webapp.experiments.services import exposures_merge_on_login as merge

    return merge(anonymous=anonymous, user=user)


@transaction.atomic
def visitor_attach_to_user(*, visitor: Visitor | None, user: User) -> Visitor:
    """Give `user` one canonical visitor; an anonymous one's history moves onto it once."""
    canonical = Visitor.objects.select_for_update().filter(user=user).first()
    if visitor is not None:
        visitor = Visitor.objects.select_for_update().get(pk=visitor.pk)
    if canonical is None:
        if visitor is not None and visitor.user_id is None and visitor.merged_into_id is None:
            visitor.user = user
            visitor.save(update_fields=["user"])
            # Same visitor, new person ("visitor:" -> "user:"): its exposures follow.
            exposures_merge_on_login(anonymous=visitor, user=user)
            return visitor
        return Visitor.objects.create(user=user)
    if visitor is not None and visitor.pk != canonical.pk and visitor.user_id is None:
        visitor_merge(source=visitor, target=canonical)
        exposures_merge_on_login(anonymous=visitor, user=user)
        canonical.refresh_from_db(fields=["generation"])  # the moved events bumped it
    return canonical


@transaction.atomic
def visitor_merge(*, source: Visitor, target: Visitor) -> int:
    """Move `source`'s events to `target` (moved, never copied) and mark it merged."""
    moved = Interaction.objects.filter(visitor=source).update(visitor=target)
    Visitor.objects.filter(merged_into=source).update(merged_into=target)
    source.merged_into = target
    source.save(update_fields=["merged_into"])
    if source.consent_given_at and not target.consent_given_at:
        target.consent_given_at = source.consent_given_at
        target.save(update_fields=["consent_given_at"])
    visitor_cache_clear(visitor=source)
    visitor_cache_clear(visitor=target)
    return moved


def visitor_give_consent(*, visitor: Visitor) -> None:
    Visitor.objects.filter(pk=visitor.pk, consent_given_at__isnull=True).update(
        consent_given_at=timezone.now()
    )


def visitor_cache_clear(*, visitor: Visitor) -> None:
    cache.delete_many([visitor_cache_key(visitor.key, name) for name in VISITOR_CACHE_NAMES])


def visitor_export(*, visitor: Visitor) -> dict[str, Any]:
    """Everything stored about a visitor (and the visitors merged into it), as JSON data."""
    keys = [visitor.pk, *Visitor.objects.filter(merged_into=visitor).values_list("pk", flat=True)]
    events = (
        Interaction.objects.filter(visitor_id__in=keys)
        .select_related("item")
        .order_by("timestamp", "pk")
    )
    return {
        "visitor": {
            "key": str(visitor.key),
            "user": visitor.user.get_username() if visitor.user else None,
            "created_at": visitor.created_at.isoformat(),
            "consent_given_at": visitor.consent_given_at.isoformat()
            if visitor.consent_given_at
            else None,
        },
        "events": [
            {
                "event_id": str(e.event_id) if e.event_id else None,
                "type": e.event_type,
                "item": e.item.external_id if e.item else None,
                "value": str(e.value) if e.value is not None else None,
                "query": e.query,
                "session_id": e.session_id,
                "timestamp": e.timestamp.isoformat(),
                "placement": e.placement,
                "context": e.context,
            }
            for e in events.iterator(chunk_size=2000)
        ],
        "profiles": _profiles_export(keys),
    }


def _profiles_export(visitor_pks: list[int]) -> list[dict[str, Any]]:
    """Visit facts and app-posted context kept for segments (webapp.segments)."""
    from django.forms.models import model_to_dict

    from webapp.segments.models import VisitorProfile

    exported = []
    for profile in VisitorProfile.objects.filter(visitor_id__in=visitor_pks):
        fields = model_to_dict(profile, exclude=["visitor", "audience_model_version"])
        exported.append(
            {
                key: value.isoformat() if hasattr(value, "isoformat") else value
                for key, value in fields.items()
            }
        )
    return exported


@transaction.atomic
def visitor_erase(*, visitor: Visitor) -> dict[str, int]:
    """Delete a visitor, their events, merged-in visitors and every cache holding them."""
    related = list(Visitor.objects.filter(merged_into=visitor))
    for other in [visitor, *related]:
        visitor_cache_clear(visitor=other)
    ids = [visitor.pk, *(v.pk for v in related)]
    exposures = exposures_erase(visitors=[visitor, *related])
    events, _ = Interaction.objects.filter(visitor_id__in=ids).delete()
    Visitor.objects.filter(pk__in=ids).delete()
    return {"visitors": len(ids), "events": events, "exposures": exposures}


def exposures_erase(*, visitors: list[Visitor]) -> int:
    """The experiments' exposures of these visitors and their persons go with them."""
    from webapp.experiments.services import exposures_erase as erase

    return erase(visitors=visitors)
