"""The recommendation API's JSON answer: rendered once, cached, filled ahead of time.

An answer is cached without the site's origin: the items' absolute URLs are the only
part of the JSON that depends on the request (scheme and host), so the rendered body is
kept as the pieces between those URLs' origins and joined with the caller's origin when
served. The same entry therefore serves every host name of the site, and it can be
rendered before any request arrives: `answers_precompute` fills the home answer of
every recently active visitor after each training ("precomputed top-N per user"), so
a visitor's first request after a retraining is a cache hit.

Keys are those of `served_cache_identity`: the visitor and their event generation, the
active model versions, the experiment variants and the live merchandising rules. A new
event, a promotion or a rule change makes an entry unreachable, never stale.
"""

import json
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.urls import reverse
from rest_framework.renderers import JSONRenderer

from recommender.active_models import ACTIVE_MODELS
from recommender.candidates import Placement
from recommender.selectors import (
    Served,
    placement_shelf,
    served_cache_identity,
    served_cache_seconds,
)
from recommender.shelves import Shelf, ShelfItem
from webapp.experiments.selectors import experiments_running_cached
from webapp.models import Visitor

logger = logging.getLogger(__name__)

AnswerParts = tuple[bytes, ...]
KEY_PREFIX = "recs:api:v2"
PRECOMPUTE_CHUNK = 500


def answer_key(*, placement: str, item: str, category: str, identity: str, k: int) -> str:
    """The cache key of an answer (no origin: see `answer_body`)."""
    return f"{KEY_PREFIX}:{placement}:{item}:{category}:{identity}:{k}"


def answer_payload(*, placement: str, shelf: Shelf | None, origin: str) -> dict[str, Any]:
    """The answer's JSON document; the items' URLs start with `origin`."""
    if shelf is None:
        return {
            "placement": placement,
            "section": "",
            "title": "",
            "fallback": "empty",
            "variant": "",
            "items": [],
        }
    return {
        "placement": placement,
        "section": shelf.section,
        "title": shelf.title,
        "fallback": shelf.fallback,
        "variant": shelf.variant,
        "items": [_item(shown, origin) for shown in shelf.items],
    }


def _item(shown: ShelfItem, origin: str) -> dict[str, Any]:
    card = shown.card
    return {
        "id": card.external_id,
        "title": card.title,
        "url": origin + reverse("item", args=[card.external_id]),
        "image_url": card.image_url,
        "price": card.list_price,
        "currency": card.currency,
        "score": round(shown.score, 6),
        "rank": shown.rank,
        "reason": shown.reason,
        "source": {"model": shown.source, "version": shown.model_version},
    }


def answer_render(*, placement: str, shelf: Shelf | None) -> AnswerParts:
    """The rendered answer, split where the origin goes (one piece more than URLs).

    The URLs are rendered with a random marker as their origin; the marker is drawn
    again in the (astronomically unlikely) case that the rest of the answer contains it.
    """
    urls = len(shelf.items) if shelf is not None else 0
    while True:
        marker = f"origin-{secrets.token_hex(12)}"
        payload = answer_payload(placement=placement, shelf=shelf, origin=marker)
        body = JSONRenderer().render(payload)
        parts = tuple(body.split(marker.encode()))
        if len(parts) == urls + 1:
            return parts


def answer_body(parts: AnswerParts, origin: str) -> bytes:
    """The JSON answer for a request from `origin` ("https://shop.example")."""
    return json.dumps(origin)[1:-1].encode().join(parts)


@dataclass(frozen=True)
class PrecomputeReport:
    """What one precompute pass did."""

    visitors: int = 0
    answers: int = 0
    degraded: int = 0
    skipped: str = ""


def answers_precompute(
    *,
    k: int = 10,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PrecomputeReport:
    """Render and cache the home answer of the most recently active visitors.

    Runs after every training (the cached entries carry the new model versions in their
    key) and is cheap to repeat. Visitors are taken most recent first, at most `limit`
    (RECOMMENDER_PRECOMPUTE_VISITORS); the anonymous answer is filled too. Entries live
    RECOMMENDER_PRECOMPUTE_SECONDS (degraded ones, served from a fallback, as briefly as
    any other). Skipped while experiments run: variants are decided per request.
    """
    if experiments_running_cached():
        return PrecomputeReport(skipped="experiments are running")
    ACTIVE_MODELS.clear()  # the versions active now, as the web processes will see them
    limit = settings.RECOMMENDER_PRECOMPUTE_VISITORS if limit is None else limit
    total = min(limit, _visitors().count())
    cache = caches["recommendations"]
    answers = degraded = 0
    for done, visitor in enumerate([None, *_recent_visitors(limit)]):
        served = placement_shelf(visitor=visitor, placement=Placement.HOME, k=k, strategies={})
        shelf = served.shelves[0] if served.shelves else None
        parts = answer_render(placement=Placement.HOME, shelf=shelf)
        key = answer_key(
            placement=Placement.HOME,
            item="",
            category="",
            identity=served_cache_identity(visitor, {}),
            k=k,
        )
        seconds = _seconds(served)
        degraded += seconds != settings.RECOMMENDER_PRECOMPUTE_SECONDS
        cache.set(key, parts, seconds)
        answers += 1
        if progress is not None:
            progress(done, total)
    logger.info("precomputed %d answers (%d degraded)", answers, degraded)
    return PrecomputeReport(visitors=answers - 1, answers=answers, degraded=degraded)


def precompute_reaches_serving() -> bool:
    """Whether answers cached by this process reach the web processes: only through a
    shared cache (Redis); the default per-process cache cannot be filled from outside."""
    return not isinstance(caches["recommendations"], LocMemCache)


def _seconds(served: Served) -> int:
    ordinary = served_cache_seconds(served)
    if ordinary < settings.RECOMMENDER_CACHE_SECONDS:
        return ordinary  # a fallback: retried soon, as on the request path
    return int(settings.RECOMMENDER_PRECOMPUTE_SECONDS)


def _visitors() -> Any:
    return Visitor.objects.filter(generation__gt=0, merged_into__isnull=True, is_bot=False)


def _recent_visitors(limit: int) -> Iterator[Visitor]:
    rows = _visitors().select_related("user").order_by("-last_seen_at", "-pk")[:limit]
    yield from rows.iterator(chunk_size=PRECOMPUTE_CHUNK)
