"""Writes on segments' data: definitions version, visits, client context, audiences."""

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from ml.models import ModelVersion
from webapp.models import Visitor
from webapp.segments.models import VisitorProfile
from webapp.segments.selectors import VERSION_CACHE_KEY, segments_snapshot_clear
from webapp.segments.visits import VisitFacts
from webapp.services.visitors import visitor_cache_key

AUDIENCE_BATCH_SIZE = 2000
ContextValue = str | int | float | bool | None

# One statement per visit, race-free: the first request creates the profile, later visits
# count up. Referrer and UTM fields keep the latest visit that had them (a direct visit
# keeps the campaign that brought the visitor); device and country follow the latest visit.
VISIT_UPSERT = """
INSERT INTO segments_visitorprofile AS p (
    visitor_id, first_referrer_domain, referrer_domain, utm_source, utm_medium,
    utm_campaign, device_type, country, visit_count, first_visit_at, last_visit_at,
    context, audience
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, %s, %s, '{}'::jsonb, '')
ON CONFLICT (visitor_id) DO UPDATE SET
    visit_count = p.visit_count + 1,
    first_visit_at = COALESCE(p.first_visit_at, EXCLUDED.first_visit_at),
    last_visit_at = EXCLUDED.last_visit_at,
    first_referrer_domain = CASE WHEN p.visit_count = 0
        THEN EXCLUDED.first_referrer_domain ELSE p.first_referrer_domain END,
    referrer_domain = CASE WHEN EXCLUDED.referrer_domain <> ''
        THEN EXCLUDED.referrer_domain ELSE p.referrer_domain END,
    utm_source = CASE WHEN {has_utm} THEN EXCLUDED.utm_source ELSE p.utm_source END,
    utm_medium = CASE WHEN {has_utm} THEN EXCLUDED.utm_medium ELSE p.utm_medium END,
    utm_campaign = CASE WHEN {has_utm} THEN EXCLUDED.utm_campaign ELSE p.utm_campaign END,
    device_type = EXCLUDED.device_type,
    country = EXCLUDED.country
""".replace(
    "{has_utm}",
    "(EXCLUDED.utm_source <> '' OR EXCLUDED.utm_medium <> '' OR EXCLUDED.utm_campaign <> '')",
)


def segment_definitions_changed() -> None:
    """A segment or condition changed: every process and cached membership starts over."""

    def bump() -> None:
        cache.set(VERSION_CACHE_KEY, uuid.uuid4().hex, None)
        segments_snapshot_clear()

    bump()
    # Again after commit: a request between now and then may have read the old rows.
    transaction.on_commit(bump)


def _segments_cache_drop(visitor: Visitor) -> None:
    key = visitor_cache_key(visitor.key, "segments")
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


def visitor_profile_visit_start(
    *, visitor: Visitor, facts: VisitFacts, now: datetime | None = None
) -> None:
    """Count a new visit of `visitor` and remember its landing facts (one upsert)."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            VISIT_UPSERT,
            [
                visitor.pk,
                facts.referrer_domain,
                facts.referrer_domain,
                facts.utm_source,
                facts.utm_medium,
                facts.utm_campaign,
                facts.device_type,
                facts.country,
                now,
                now,
            ],
        )
    _segments_cache_drop(visitor)


@transaction.atomic
def visitor_context_update(
    *, visitor: Visitor, values: Mapping[str, ContextValue]
) -> dict[str, Any]:
    """Merge validated custom context into the visitor's profile (None deletes a key).

    At most SEGMENTS_CONTEXT_MAX_KEYS keys are kept per visitor; more is a ValidationError
    and nothing is written.
    """
    VisitorProfile.objects.get_or_create(visitor=visitor)
    profile = VisitorProfile.objects.select_for_update().get(pk=visitor.pk)
    merged = dict(profile.context)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    limit = settings.SEGMENTS_CONTEXT_MAX_KEYS
    if len(merged) > limit:
        raise ValidationError(
            {"context": f"A visitor keeps at most {limit} context keys ({len(merged)} given)."}
        )
    profile.context, profile.context_updated_at = merged, timezone.now()
    profile.save(update_fields=["context", "context_updated_at"])
    _segments_cache_drop(visitor)
    return merged


def visitor_audiences_set(
    *, audiences: Mapping[int, str], model_version: ModelVersion | None = None
) -> int:
    """Store learned audience codes ({visitor pk: code}) with the model that made them.

    For the model work (clusters / VQ codes of user embeddings); cached memberships follow
    within SEGMENTS_CACHE_SECONDS.
    """
    now = timezone.now()
    rows = [
        VisitorProfile(
            visitor_id=pk,
            audience=code[:64],
            audience_model_version=model_version,
            audience_updated_at=now,
        )
        for pk, code in sorted(audiences.items())
    ]
    VisitorProfile.objects.bulk_create(
        rows,
        batch_size=AUDIENCE_BATCH_SIZE,
        update_conflicts=True,
        unique_fields=["visitor"],
        update_fields=["audience", "audience_model_version", "audience_updated_at"],
    )
    return len(rows)
