"""Reads on the catalog: listings, popularity and full-text search."""

from datetime import datetime, timedelta

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.core.cache import cache
from django.db.models import Aggregate, Count, F, FloatField, QuerySet
from django.db.models.expressions import OrderBy
from django.utils import timezone

from webapp.models import Category, EventType, Interaction, Item

POPULAR_WINDOW_DAYS = 30
# The aggregate scans the whole log when the window is quiet; a short cache keeps the
# home page cheap without making the shelf noticeably stale.
POPULAR_CACHE_SECONDS = 300
# Impressions measure what we showed, not what people wanted, so they do not count.
POPULARITY_EVENTS = (
    EventType.VIEW,
    EventType.CLICK,
    EventType.ADD_TO_CART,
    EventType.PURCHASE,
    EventType.RATING,
)
ITEM_SORTS: dict[str, tuple[str, list[str | OrderBy]]] = {
    "newest": ("Newest", ["-created_at", "-id"]),
    "price_asc": ("Price: low to high", [F("list_price").asc(nulls_last=True), "id"]),
    "price_desc": ("Price: high to low", [F("list_price").desc(nulls_last=True), "id"]),
    "title": ("Title A-Z", ["title", "id"]),
}
DEFAULT_SORT = "newest"
# Items whose anomaly score reaches this quantile of the catalog's are "anomalous content".
ANOMALY_QUANTILE = 0.99


def items_active() -> QuerySet[Item]:
    """Active items with their category, ready for cards."""
    return Item.objects.filter(is_active=True).select_related("category")


def item_get_active(*, external_id: str) -> Item | None:
    return items_active().filter(external_id=external_id).first()


def items_newest(*, limit: int = 12) -> list[Item]:
    return list(items_active().order_by("-created_at", "-id")[:limit])


def _popular_item_ids(
    *, limit: int, since: datetime | None = None, exclude: list[int]
) -> list[int]:
    events = Interaction.objects.filter(
        item__isnull=False,
        item__is_active=True,
        is_bot=False,
        event_type__in=POPULARITY_EVENTS,
    ).exclude(item_id__in=exclude)
    if since is not None:
        events = events.filter(timestamp__gte=since)
    rows = events.values("item_id").annotate(n=Count("id")).order_by("-n", "item_id")[:limit]
    return [row["item_id"] for row in rows]


def popular_item_ids(*, limit: int, days: int = POPULAR_WINDOW_DAYS) -> list[int]:
    """Ids of the most interacted-with items of the last `days`, topped up from all time."""
    since = timezone.now() - timedelta(days=days)
    ids = _popular_item_ids(limit=limit, since=since, exclude=[])
    if len(ids) < limit:
        ids += _popular_item_ids(limit=limit - len(ids), exclude=ids)
    return ids


def items_popular(*, limit: int = 12, days: int = POPULAR_WINDOW_DAYS) -> list[Item]:
    """The most popular active items (ranking cached for a few minutes)."""
    ids: list[int] = (
        cache.get_or_set(
            f"catalog:popular:{limit}:{days}",
            lambda: popular_item_ids(limit=limit, days=days),
            POPULAR_CACHE_SECONDS,
        )
        or []
    )
    by_id = items_active().in_bulk(ids)
    return [by_id[pk] for pk in ids if pk in by_id]


def category_get(*, slug: str) -> Category | None:
    return Category.objects.select_related("parent").filter(slug=slug).first()


def category_descendant_ids(*, category: Category) -> list[int]:
    """The category and every category below it (the tree is small: one query)."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in Category.objects.values_list("id", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    found: list[int] = []
    pending = [category.pk]
    while pending:
        pk = pending.pop()
        if pk not in found:
            found.append(pk)
            pending.extend(children.get(pk, []))
    return found


def category_children(*, category: Category) -> QuerySet[Category]:
    return category.children.order_by("name")


def items_in_category(*, category: Category, sort: str = DEFAULT_SORT) -> QuerySet[Item]:
    """Active items of the category and of its descendants, in the requested order."""
    ordering = ITEM_SORTS.get(sort, ITEM_SORTS[DEFAULT_SORT])[1]
    ids = category_descendant_ids(category=category)
    return items_active().filter(category_id__in=ids).order_by(*ordering)


def items_search(*, query: str) -> QuerySet[Item]:
    """Active items matching a web-style query, best match first."""
    search = SearchQuery(query, search_type="websearch", config="english")
    return (
        items_active()
        .filter(search_vector=search)
        .annotate(rank=SearchRank(F("search_vector"), search))
        .order_by("-rank", "-created_at", "-id")
    )


class _PercentileCont(Aggregate):
    """Postgres' interpolated quantile of an expression over the rows."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(quantile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, *, quantile: float) -> None:
        super().__init__(expression, quantile=float(quantile))


def item_anomaly_threshold(*, quantile: float = ANOMALY_QUANTILE) -> float | None:
    """The anomaly score that `quantile` of the scored items stay at or under; None when no
    item is scored."""
    row = Item.objects.filter(anomaly_score__isnull=False).aggregate(
        threshold=_PercentileCont("anomaly_score", quantile=quantile)
    )
    threshold = row["threshold"]
    return None if threshold is None else float(threshold)


def items_anomalous(*, quantile: float = ANOMALY_QUANTILE) -> QuerySet[Item]:
    """Items scoring at or above the catalog's `quantile` anomaly score, most anomalous first."""
    threshold = item_anomaly_threshold(quantile=quantile)
    if threshold is None:
        return Item.objects.none()
    return Item.objects.filter(anomaly_score__gte=threshold).order_by("-anomaly_score", "id")
