"""Reads on the catalog for the REST API: filter sets and lookups by external id / slug."""

from collections.abc import Iterable

import django_filters
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, QuerySet

from webapp.models import Category, Item
from webapp.selectors.catalog import category_descendant_ids

LOOKUP_BATCH_SIZE = 5000


class ItemFilter(django_filters.FilterSet):
    """Filters of `GET /api/items/`; without `is_active` only active items are listed."""

    category = django_filters.ModelChoiceFilter(
        queryset=Category.objects.all(),
        to_field_name="slug",
        method="filter_category",
        help_text="Category slug; items of its descendant categories are included.",
    )
    is_active = django_filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="filter_is_active",
        help_text="true (the default) or false for deactivated items.",
    )
    min_price = django_filters.NumberFilter(field_name="list_price", lookup_expr="gte")
    max_price = django_filters.NumberFilter(field_name="list_price", lookup_expr="lte")
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text="ISO 8601 date-time; items changed at or after it.",
    )
    q = django_filters.CharFilter(
        method="filter_search",
        help_text="Full-text search on title and description (web search syntax), best first.",
    )
    ordering = django_filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("updated_at", "updated_at"), ("list_price", "price"))
    )

    class Meta:
        model = Item
        fields = ["category", "is_active", "min_price", "max_price", "updated_since", "q"]

    @property
    def qs(self) -> QuerySet[Item]:
        queryset = super().qs
        if not self.form.cleaned_data.get("is_active"):
            queryset = queryset.filter(is_active=True)
        return queryset

    def filter_category(self, queryset: QuerySet[Item], name: str, value: Category) -> QuerySet:
        return queryset.filter(category_id__in=category_descendant_ids(category=value))

    def filter_is_active(self, queryset: QuerySet[Item], name: str, value: str) -> QuerySet:
        return queryset.filter(is_active=value == "true")

    def filter_search(self, queryset: QuerySet[Item], name: str, value: str) -> QuerySet:
        if not value.strip():
            return queryset
        search = SearchQuery(value, search_type="websearch", config="english")
        return (
            queryset.filter(search_vector=search)
            .annotate(rank=SearchRank(F("search_vector"), search))
            .order_by("-rank", "-created_at", "-id")
        )


def items_for_api() -> QuerySet[Item]:
    """Every item (active or not) with its category, newest first."""
    return Item.objects.select_related("category").order_by("-created_at", "-id")


def item_get_by_external_id(*, external_id: str) -> Item | None:
    return items_for_api().filter(external_id=external_id).first()


def items_existing_external_ids(*, external_ids: Iterable[str]) -> set[str]:
    """Those of `external_ids` that are already in the catalog (active or not)."""
    ids = sorted(set(external_ids))
    found: set[str] = set()
    for start in range(0, len(ids), LOOKUP_BATCH_SIZE):
        batch = ids[start : start + LOOKUP_BATCH_SIZE]
        found.update(
            Item.objects.filter(external_id__in=batch).values_list("external_id", flat=True)
        )
    return found


def categories_for_api() -> QuerySet[Category]:
    """The whole category tree, each node with its parent (for the parent's slug)."""
    return Category.objects.select_related("parent").order_by("name", "id")


def category_get_by_slug(*, slug: str) -> Category | None:
    return (
        Category.objects.select_related("parent")
        .prefetch_related("children")
        .filter(slug=slug)
        .first()
    )
