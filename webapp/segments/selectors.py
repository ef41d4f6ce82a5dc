"""Reads on segments: which segments a visitor is in now, and how many visitors match.

Per request, `segments_of_visitor` costs one shared-cache read when the visitor's entry
is fresh, else one SELECT that evaluates every database condition of every active
segment for that visitor (under a Postgres statement_timeout). Time-of-day and
day-of-week conditions are evaluated in Python on each call, never cached.

Caching: the entry `visitor:<key>:segments` (so privacy erasure clears it) holds the
conditions' truth values with the segment-definitions version they were computed for
(and the visitor's event generation where visitors have one); it lives
SEGMENTS_CACHE_SECONDS (60 s). Saving or deleting a segment or condition writes a new
definitions version into the shared cache, so every process drops its entries and its
snapshot of the definitions at once; other changes (new events, a new visit) show
within those 60 s (a new visit or posted context drops the entry at once).

Budget: evaluating the conditions may take SEGMENTS_BUDGET_MS (20 ms; loading the
definitions, once per process and version, is not counted). Past it (a statement
cancelled by the timeout, or a budget already spent) the visitor is in no segment for
this request, nothing is cached, and a warning is logged.
"""

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection
from django.db.models import QuerySet
from django.utils import timezone

from recommender.budget import Budget, statement_timeout
from webapp.models import Category, Visitor
from webapp.segments.attributes import ATTRIBUTES, Kind, parse_value
from webapp.segments.conditions import (
    LiveCondition,
    LiveSegment,
    condition_truth_expression,
    request_condition_holds,
)
from webapp.segments.models import Segment, SegmentCondition
from webapp.services.visitors import visitor_cache_key

logger = logging.getLogger(__name__)

VERSION_CACHE_KEY = "segments:definitions_version"
# A process re-reads the definitions at least this often (category trees change too).
SNAPSHOT_MAX_SECONDS = 300.0
_SNAPSHOT: dict[str, tuple[str, float, tuple[LiveSegment, ...]]] = {}


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the request itself contributes to segment membership: when it happens."""

    now: datetime


def request_context_now() -> RequestContext:
    return RequestContext(now=timezone.now())


def definitions_version() -> str:
    """The current segment-definitions version (created on first use)."""
    version: str | None = cache.get(VERSION_CACHE_KEY)
    return version or _version_init()


def _version_init() -> str:
    cache.add(VERSION_CACHE_KEY, uuid.uuid4().hex, None)
    return str(cache.get(VERSION_CACHE_KEY))


def segments_snapshot_clear() -> None:
    """Forget this process's copy of the definitions (and the SQL compiled from them)."""
    _SNAPSHOT.clear()
    _QUERIES.clear()


def _category_descendants() -> dict[str, tuple[int, ...]]:
    """Each category slug -> its id and the ids of every category below it."""
    rows = list(Category.objects.values_list("pk", "parent_id", "slug"))
    children: dict[int | None, list[int]] = defaultdict(list)
    for pk, parent, _ in rows:
        children[parent].append(pk)
    found: dict[str, tuple[int, ...]] = {}
    for pk, _, slug in rows:
        ids: list[int] = []
        todo = [pk]
        while todo and len(ids) <= len(rows):
            node = todo.pop()
            ids.append(node)
            todo.extend(children.get(node, ()))
        found[slug] = tuple(sorted(set(ids)))
    return found


def live_segment_of(
    segment: Segment,
    conditions: Iterable[SegmentCondition],
    categories: Mapping[str, tuple[int, ...]] | None = None,
) -> LiveSegment:
    """A segment and its conditions, parsed (ValidationError for a stored bad condition)."""
    groups: dict[int, list[LiveCondition]] = defaultdict(list)
    for c in sorted(conditions, key=lambda c: (c.group, c.position, c.pk)):
        value = parse_value(c.attribute, c.operator, c.value)
        ids: tuple[int, ...] = ()
        if ATTRIBUTES[c.attribute].kind == Kind.CATEGORIES:
            tree = categories if categories is not None else _category_descendants()
            ids = tuple(sorted({i for slug in value for i in tree.get(slug, ())}))
        groups[c.group].append(
            LiveCondition(c.pk, c.attribute, c.operator, value, c.key, c.last_days, ids)
        )
    return LiveSegment(
        segment.pk, segment.name, segment.match, tuple(tuple(g) for _, g in sorted(groups.items()))
    )


def segments_live_load() -> tuple[LiveSegment, ...]:
    """Every active segment, parsed (two queries, three with category conditions)."""
    segments = list(Segment.objects.filter(is_active=True).prefetch_related("conditions"))
    uses_categories = any(
        ATTRIBUTES.get(c.attribute, ATTRIBUTES["visit_count"]).kind == Kind.CATEGORIES
        for s in segments
        for c in s.conditions.all()
    )
    categories = _category_descendants() if uses_categories else {}
    live = []
    for segment in segments:
        try:
            live.append(live_segment_of(segment, segment.conditions.all(), categories))
        except ValidationError as error:
            logger.error("segment %s (#%s) skipped: %s", segment, segment.pk, error.messages)
    return tuple(live)


def segments_live(version: str) -> tuple[LiveSegment, ...]:
    """This process's snapshot of the active segments for `version`."""
    cached = _SNAPSHOT.get("live")
    if (
        cached is None
        or cached[0] != version
        or time.monotonic() - cached[1] > SNAPSHOT_MAX_SECONDS
    ):
        cached = (version, time.monotonic(), segments_live_load())
        _SNAPSHOT["live"] = cached
    return cached[2]


def segments_of_visitor(
    *, visitor: Visitor | None, request_context: RequestContext | None = None
) -> frozenset[int]:
    """Ids of the active segments `visitor` is in for this request (see module docstring)."""
    if visitor is None:
        return frozenset()
    context = request_context or request_context_now()
    entry_key = visitor_cache_key(visitor.key, "segments")
    found = cache.get_many([VERSION_CACHE_KEY, entry_key])
    version = found.get(VERSION_CACHE_KEY) or _version_init()
    segments = segments_live(version)
    if not segments:
        return frozenset()
    # Loading the definitions (once per process and version) is not the request's cost.
    budget = Budget(settings.SEGMENTS_BUDGET_MS)
    generation = getattr(visitor, "generation", None)
    entry = found.get(entry_key)
    if (
        isinstance(entry, dict)
        and entry.get("version") == version
        and entry.get("generation") == generation
    ):
        truths: dict[int, bool] | None = entry["truths"]
    else:
        truths = _database_truths(visitor, segments, budget=budget)
        if truths is None:
            return frozenset()
        entry = {"version": version, "generation": generation, "truths": truths}
        cache.set(entry_key, entry, settings.SEGMENTS_CACHE_SECONDS)
    assert truths is not None
    local_now = context.now.astimezone(ZoneInfo(settings.SEGMENTS_TIME_ZONE))

    def truth(condition: LiveCondition) -> bool:
        if condition.request_time:
            return request_condition_holds(condition, local_now=local_now)
        return truths.get(condition.pk, False)

    return frozenset(s.pk for s in segments if s.holds(truth))


def _database_truths(
    visitor: Visitor, segments: tuple[LiveSegment, ...], *, budget: Budget
) -> dict[int, bool] | None:
    """Each database condition's truth for the visitor, in one SELECT; None past the budget."""
    conditions = {c.pk: c for s in segments for c in s.conditions if not c.request_time}
    if not conditions:
        return {}
    if budget.exceeded():
        _log_fallback(visitor, budget, "spent before the query")
        return None
    query = _truths_query(segments, conditions)
    params = list(query.params)
    params[query.visitor_param] = visitor.pk
    try:
        with statement_timeout(budget.remaining_ms), connection.cursor() as cursor:
            cursor.execute(query.sql, params)
            row = cursor.fetchone()
            names = [column.name for column in cursor.description or ()]
    except OperationalError as error:  # the statement was cancelled: past the budget
        _log_fallback(visitor, budget, str(error).strip())
        return None
    if row is None:
        return dict.fromkeys(conditions, False)
    found = dict(zip(names, row, strict=True))
    return {pk: bool(found[f"c{pk}"]) for pk in conditions}


@dataclass(frozen=True, slots=True)
class TruthsQuery:
    """The SELECT of every database condition, compiled once per definitions snapshot."""

    sql: str
    params: tuple[Any, ...]
    visitor_param: int


# Compiling ~25 conditions through the ORM takes ~30 ms of Python, more than the whole
# budget; the compiled SQL depends only on the definitions (time windows use the
# database's clock), so it is kept with the snapshot it was made from.
_QUERIES: dict[int, tuple[tuple[LiveSegment, ...], TruthsQuery]] = {}
VISITOR_PLACEHOLDER = -7_301_947_113


def _truths_query(
    segments: tuple[LiveSegment, ...], conditions: Mapping[int, LiveCondition]
) -> TruthsQuery:
    cached = _QUERIES.get(id(segments))
    if cached is not None and cached[0] is segments:
        return cached[1]
    columns = {f"c{pk}": condition_truth_expression(c) for pk, c in conditions.items()}
    queryset = Visitor.objects.filter(pk=VISITOR_PLACEHOLDER).values(**columns)
    sql, params = queryset.query.sql_with_params()
    [index] = [i for i, p in enumerate(params) if p == VISITOR_PLACEHOLDER]
    query = TruthsQuery(sql=sql, params=tuple(params), visitor_param=index)
    _QUERIES.clear()
    _QUERIES[id(segments)] = (segments, query)
    return query


def _log_fallback(visitor: Visitor, budget: Budget, reason: str) -> None:
    logger.warning(
        "segments: budget of %s ms exceeded for visitor %s after %.1f ms (%s); "
        "no segment matches this request",
        budget.milliseconds,
        visitor.pk,
        budget.elapsed_ms,
        reason,
    )


def known_visitors() -> QuerySet[Visitor]:
    """The visitors a preview counts: every stored visitor not merged into another."""
    return Visitor.objects.filter(merged_into__isnull=True)


@dataclass(frozen=True, slots=True)
class SegmentPreview:
    """How many known visitors match now, and which conditions the count leaves out."""

    count: int
    request_time_conditions: tuple[str, ...]

    def describe(self) -> str:
        text = f"{self.count} known visitor{'s' if self.count != 1 else ''} match now."
        if self.request_time_conditions:
            text += (
                f" Conditions on {', '.join(self.request_time_conditions)} are evaluated at "
                "request time and are left out of this count (counted as met)."
            )
        return text


def segment_preview(
    *, segment: Segment, conditions: Iterable[SegmentCondition] | None = None, now: Any = None
) -> SegmentPreview:
    """The segment's conditions as one COUNT over the known visitors."""
    rows = list(conditions) if conditions is not None else list(segment.conditions.all())
    live = live_segment_of(segment, rows)
    count = known_visitors().filter(live.visitors_q(now=now)).count()
    labels = sorted({ATTRIBUTES[c.attribute].label for c in live.conditions if c.request_time})
    return SegmentPreview(count=count, request_time_conditions=tuple(labels))
