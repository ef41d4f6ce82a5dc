"""The recommendation API's JSON answer: rendered once, cached, filled ahead of time.

An answer is cached without the site's origin: the items' absolute URLs are the only
part of the JSON that depends on the request (scheme and host), so the rendered body is
kept as the pieces between those URLs' origins and joined with the caller's origin when
served. The same entry therefore serves every host name of the site, and it can be
rendered before any request arrives: `answers_precompute` fills the home answer of
every recently active visitor after each training ("precomputed top-N per user"), so
a visitor's first request after a retraining is a cache hit, and `answers_refresh`
renders a visitor's answer again right after their new events (queued by
`recommender.signals`), so their next request is a hit too.

Keys are those of `served_cache_identity`: the visitor and their event generation, the
active model versions, the experiment variants and the live merchandising rules. A new
event, a promotion or a rule change makes an entry unreachable, never stale.
"""

import json
import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
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
REFRESH_K = 10  # the API's default k: the answer a widget or page asks for first


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
        served = _answer_store(cache, visitor, k)
        degraded += served_cache_seconds(served) < settings.RECOMMENDER_CACHE_SECONDS
        answers += 1
        if progress is not None:
            progress(done, total)
    logger.info("precomputed %d answers (%d degraded)", answers, degraded)
    return PrecomputeReport(visitors=answers - 1, answers=answers, degraded=degraded)


def answers_refresh(visitor_pks: Sequence[int], *, k: int = REFRESH_K) -> int:
    """Render and cache the home answer of these visitors as of their latest event, off
    the request path (queued after their events by `recommender.signals`); return how
    many were rendered.

    A visitor whose answer for their current generation is already cached (an earlier
    refresh, or their own request, came first) costs one cache read. Merged, bot and
    unknown visitors are skipped, and so is everything while experiments run (variants
    are decided per request). Entries live as long as precomputed ones: the key changes
    with the visitor's next event, a promotion or a rule change.
    """
    if experiments_running_cached():
        return 0
    cache = caches["recommendations"]
    rendered = 0
    for visitor in _visitors().filter(pk__in=set(visitor_pks)).select_related("user"):
        if cache.has_key(home_answer_key(visitor, k)):
            continue
        _answer_store(cache, visitor, k)
        rendered += 1
    return rendered


def home_answer_key(visitor: Visitor | None, k: int = REFRESH_K) -> str:
    """The cache key of the home answer (no experiments) of `visitor` as of now."""
    identity = served_cache_identity(visitor, {})
    return answer_key(placement=Placement.HOME, item="", category="", identity=identity, k=k)


def _answer_store(cache: Any, visitor: Visitor | None, k: int) -> Served:
    """Serve, render and cache one visitor's home answer ahead of their request, for
    RECOMMENDER_PRECOMPUTE_SECONDS (one served from a fallback as briefly as on request)."""
    served = placement_shelf(visitor=visitor, placement=Placement.HOME, k=k, strategies={})
    shelf = served.shelves[0] if served.shelves else None
    parts = answer_render(placement=Placement.HOME, shelf=shelf)
    seconds = served_cache_seconds(served)
    if seconds >= settings.RECOMMENDER_CACHE_SECONDS:
        seconds = int(settings.RECOMMENDER_PRECOMPUTE_SECONDS)
    cache.set(home_answer_key(visitor, k), parts, seconds)
    return served


def precompute_reaches_serving() -> bool:
    """Whether answers cached by this process reach the web processes: only through a
    shared cache (Redis); the default per-process cache cannot be filled from outside."""
    return not isinstance(caches["recommendations"], LocMemCache)


def _visitors() -> Any:
    return Visitor.objects.filter(generation__gt=0, merged_into__isnull=True, is_bot=False)


def _recent_visitors(limit: int) -> Iterator[Visitor]:
    rows = _visitors().select_related("user").order_by("-last_seen_at", "-pk")[:limit]
    yield from rows.iterator(chunk_size=PRECOMPUTE_CHUNK)
