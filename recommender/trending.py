"""Trending (recent velocity) and new arrivals: the lists every fallback ends in.

Both are shared by all visitors, so they are computed at most once a minute per
process (and by the `refresh_trending` task into the shared cache) and never on the
hot path more than that.
"""

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Max

from recommender.budget import statement_timeout_lifted
from recommender.candidates import Candidate
from recommender.history import semantic_key
from webapp.models import Interaction, Item

TRENDING_CACHE_KEY = "recommender:trending:v1"
POPULAR_CACHE_KEY = "recommender:popular:v1"
TRENDING_LIMIT = 200
TRENDING_WINDOW = timedelta(days=7)
TRENDING_HALF_LIFE_HOURS = 48.0
NEW_ARRIVALS_LIMIT = 100
PROCESS_CACHE_SECONDS = 60.0

# Decayed, weighted event counts over the week before the latest event (not before
# "now": a catalog imported from old data, like MovieLens, still has a trend).
TRENDING_SQL = """
    SELECT e.item_id,
           SUM(CASE e.event_type WHEN 'purchase' THEN 5 WHEN 'add_to_cart' THEN 3
                                 WHEN 'rating' THEN 2 ELSE 1 END
               * EXP(-EXTRACT(EPOCH FROM (%(latest)s - e.timestamp)) / 3600.0 / %(half_life)s))
               AS score
    FROM webapp_interaction e
    JOIN webapp_item i ON i.id = e.item_id
    WHERE e.timestamp > %(since)s AND e.timestamp <= %(latest)s
      AND e.item_id IS NOT NULL AND NOT e.is_bot AND i.is_active
      AND e.event_type IN ('view', 'click', 'add_to_cart', 'purchase', 'rating')
    GROUP BY e.item_id
    ORDER BY score DESC, e.item_id
    LIMIT %(limit)s
"""


# All-time weighted event counts: the "popular" strategy an experiment can pit against
# trending or a model.
POPULAR_SQL = """
    SELECT e.item_id,
           SUM(CASE e.event_type WHEN 'purchase' THEN 5 WHEN 'add_to_cart' THEN 3
                                 WHEN 'rating' THEN 2 ELSE 1 END) AS score
    FROM webapp_interaction e
    JOIN webapp_item i ON i.id = e.item_id
    WHERE e.item_id IS NOT NULL AND NOT e.is_bot AND i.is_active
      AND e.event_type IN ('view', 'click', 'add_to_cart', 'purchase', 'rating')
    GROUP BY e.item_id
    ORDER BY score DESC, e.item_id
    LIMIT %(limit)s
"""


def popular_compute(*, limit: int = TRENDING_LIMIT) -> list[tuple[int, float]]:
    """(item pk, score) of the items with the most weighted events ever, best first."""
    with connection.cursor() as cursor:
        cursor.execute(POPULAR_SQL, {"limit": limit})
        return [(int(pk), float(score)) for pk, score in cursor.fetchall()]


def trending_compute(*, limit: int = TRENDING_LIMIT) -> list[tuple[int, float]]:
    """(item pk, score) of the items gaining attention, best first; tops up with newest."""
    latest = Interaction.objects.filter(is_bot=False).aggregate(t=Max("timestamp"))["t"]
    rows: list[tuple[int, float]] = []
    if latest is not None:
        params = {
            "latest": latest,
            "since": latest - TRENDING_WINDOW,
            "half_life": TRENDING_HALF_LIFE_HOURS,
            "limit": limit,
        }
        with connection.cursor() as cursor:
            cursor.execute(TRENDING_SQL, params)
            rows = [(int(pk), float(score)) for pk, score in cursor.fetchall()]
    if len(rows) < limit:
        have = {pk for pk, _ in rows}
        newest = new_arrival_ids_compute(limit=limit)
        rows += [(pk, 0.0) for pk in newest if pk not in have][: limit - len(rows)]
    return rows


def new_arrival_ids_compute(*, limit: int = NEW_ARRIVALS_LIMIT) -> list[int]:
    ids = Item.objects.filter(is_active=True).order_by("-created_at", "-id")
    return list(ids.values_list("pk", flat=True)[:limit])


class _Memo:
    """A value recomputed at most every PROCESS_CACHE_SECONDS in this process."""

    def __init__(self, compute: Callable[[], list[tuple[int, float]]]) -> None:
        self._compute = compute
        self._value: list[tuple[int, float]] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self) -> list[tuple[int, float]]:
        if self._value is None or time.monotonic() - self._at > PROCESS_CACHE_SECONDS:
            with self._lock:
                if self._value is None or time.monotonic() - self._at > PROCESS_CACHE_SECONDS:
                    with statement_timeout_lifted():
                        self._value = self._compute()
                    self._at = time.monotonic()
        return self._value

    def clear(self) -> None:
        self._value = None


def _trending_shared() -> list[tuple[int, float]]:
    rows = cache.get(TRENDING_CACHE_KEY)
    if rows is None:
        rows = trending_compute()
        cache.set(TRENDING_CACHE_KEY, rows, settings.RECOMMENDER_TRENDING_SECONDS)
    return [(int(pk), float(score)) for pk, score in rows]


def _new_arrivals() -> list[tuple[int, float]]:
    ids = new_arrival_ids_compute()
    return [(pk, float(len(ids) - rank)) for rank, pk in enumerate(ids)]


def _popular_shared() -> list[tuple[int, float]]:
    rows = cache.get(POPULAR_CACHE_KEY)
    if rows is None:
        rows = popular_compute()
        cache.set(POPULAR_CACHE_KEY, rows, settings.RECOMMENDER_TRENDING_SECONDS)
    return [(int(pk), float(score)) for pk, score in rows]


_CODES: dict[str, tuple[float, dict[int, str]]] = {}
TRENDING = _Memo(_trending_shared)
NEW_ARRIVALS = _Memo(_new_arrivals)
POPULAR = _Memo(_popular_shared)


def trending_candidates(*, reason: str = "Trending now") -> list[Candidate]:
    return [Candidate(pk, score, "trending", None, reason) for pk, score in TRENDING.get()]


def popular_candidates() -> list[Candidate]:
    return [Candidate(pk, score, "popular", None, "Popular") for pk, score in POPULAR.get()]


def new_arrival_candidates() -> list[Candidate]:
    return [Candidate(pk, score, "new", None, "New arrival") for pk, score in NEW_ARRIVALS.get()]


def new_arrival_codes() -> dict[int, str]:
    """Semantic IDs ("<version>:<codes>") of the coded new arrivals, at most
    PROCESS_CACHE_SECONDS old: what matches a brand-new item with a visitor's taste."""
    now = time.monotonic()
    cached = _CODES.get("codes")
    if cached is None or now - cached[0] > PROCESS_CACHE_SECONDS:
        pks = [pk for pk, _ in NEW_ARRIVALS.get()]
        rows = (
            Item.objects.filter(pk__in=pks)
            .exclude(semantic_id="")
            .values_list("pk", "semantic_id", "semantic_id_version_id")
        )
        cached = (now, {pk: semantic_key(codes, version) for pk, codes, version in rows})
        _CODES["codes"] = cached
    return {pk: key for pk, key in cached[1].items() if key}


def trending_refresh() -> int:
    """Recompute the shared trending list now (the periodic task); return its length."""
    rows = trending_compute()
    cache.set(TRENDING_CACHE_KEY, rows, settings.RECOMMENDER_TRENDING_SECONDS)
    TRENDING.clear()
    return len(rows)


def serving_caches_clear() -> None:
    """Forget the per-process lists (tests, and after a catalog import)."""
    _CODES.clear()
    TRENDING.clear()
    NEW_ARRIVALS.clear()
    POPULAR.clear()
