"""Writes on the catalog: item upserts (API and feed import), deactivation, category paths."""

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from webapp.models import Category, Item

# Rows per INSERT ... ON CONFLICT statement: large enough to be fast, small enough to keep
# each statement's parameters and locks modest.
UPSERT_BATCH_SIZE = 500
DEACTIVATE_BATCH_SIZE = 1000
# "Movies > Comedy": a path of category names, root first.
CATEGORY_PATH_SEPARATOR = ">"
SLUG_MAX_LENGTH = Category._meta.get_field("slug").max_length or 200
# Slugs already taken by an unrelated category get a numeric suffix, up to this many tries.
CATEGORY_SLUG_ATTEMPTS = 20
# Every column an upsert writes; `created_at` is kept, `search_vector` is generated.
ITEM_UPSERT_FIELDS = [
    "title",
    "description",
    "category",
    "attributes",
    "list_price",
    "currency",
    "image_url",
    "url",
    "is_active",
    "updated_at",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ItemData:
    """One validated item as the shop describes it; an upsert replaces every field."""

    external_id: str
    title: str
    description: str = ""
    category: str | None = None  # an existing slug or a "Parent > Child" name path
    attributes: dict[str, Any] = field(default_factory=dict)
    list_price: Decimal | None = None
    currency: str = "USD"
    image_url: str = ""
    url: str = ""
    is_active: bool = True


@dataclass(frozen=True)
class UpsertResult:
    """External ids that were inserted and those that already existed and were updated."""

    created: list[str]
    updated: list[str]


def batched(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def category_path_names(path: str) -> list[str]:
    """The names of a "Parent > Child" path, root first, blanks dropped."""
    return [name.strip() for name in path.split(CATEGORY_PATH_SEPARATOR) if name.strip()]


def _category_slug(*, name: str, parent: Category | None) -> str:
    """A deterministic slug: the name's, prefixed by the parent's so siblings never clash."""
    own = slugify(name) or "c-" + hashlib.sha1(name.encode()).hexdigest()[:10]  # noqa: S324
    slug = f"{parent.slug}-{own}" if parent is not None else own
    if len(slug) > SLUG_MAX_LENGTH:
        digest = hashlib.sha1(slug.encode()).hexdigest()[:10]  # noqa: S324
        slug = f"{slug[: SLUG_MAX_LENGTH - 11]}-{digest}"
    return slug


def _category_child_get_or_create(*, name: str, parent: Category | None) -> Category:
    existing = Category.objects.filter(parent=parent, name__iexact=name).order_by("pk").first()
    if existing is not None:
        return existing
    base = _category_slug(name=name, parent=parent)
    for attempt in range(1, CATEGORY_SLUG_ATTEMPTS + 1):
        slug = base if attempt == 1 else f"{base[: SLUG_MAX_LENGTH - 4]}-{attempt}"
        # The unique slug makes this safe against a concurrent import creating the same node.
        category, _ = Category.objects.get_or_create(
            slug=slug, defaults={"name": name, "parent": parent}
        )
        same_parent = category.parent_id == (parent.pk if parent else None)
        if same_parent and category.name.lower() == name.lower():
            return category
    raise ValueError(f"No free slug for category {name!r} (tried {base!r} and suffixes).")


@transaction.atomic
def category_get_or_create_path(*, path: str) -> Category:
    """The category a path names, creating missing nodes; a bare existing slug is used as is.

    "Movies > Comedy" finds (case-insensitively by name under its parent) or creates
    "Movies" and its child "Comedy" (slug "movies-comedy"). A single word that is an
    existing slug, e.g. "movies-comedy", refers to that category.
    """
    names = category_path_names(path)
    if not names:
        raise ValueError("A category path needs at least one name.")
    if len(names) == 1:
        by_slug = Category.objects.filter(slug=names[0]).first()
        if by_slug is not None:
            return by_slug
    node: Category | None = None
    for name in names:
        node = _category_child_get_or_create(name=name, parent=node)
    assert node is not None
    return node


def _categories_for(items: Iterable[ItemData]) -> dict[str, Category]:
    paths = {item.category for item in items if item.category}
    return {path: category_get_or_create_path(path=path) for path in sorted(paths)}


def _item_from(data: ItemData, *, category: Category | None, now: datetime) -> Item:
    return Item(
        external_id=data.external_id,
        title=data.title,
        description=data.description,
        category=category,
        attributes=data.attributes,
        list_price=data.list_price,
        currency=data.currency,
        image_url=data.image_url,
        url=data.url,
        is_active=data.is_active,
        updated_at=now,
    )


def _deduplicated(items: Sequence[ItemData]) -> list[ItemData]:
    # One INSERT ... ON CONFLICT cannot touch a row twice; the last description wins.
    return list({item.external_id: item for item in items}.values())


@transaction.atomic
def items_upsert(
    *,
    items: Sequence[ItemData],
    on_batch_done: Callable[[int], None] | None = None,
) -> UpsertResult:
    """Insert new items and replace existing ones (by external id), in batches.

    Created and updated are told apart by looking the ids up first; a concurrent writer
    inserting the same id in between only makes it count as created instead of updated.
    """
    unique = _deduplicated(items)
    categories = _categories_for(unique)
    now = timezone.now()
    created: list[str] = []
    updated: list[str] = []
    for batch in batched(unique, UPSERT_BATCH_SIZE):
        ids = [data.external_id for data in batch]
        existing = set(
            Item.objects.filter(external_id__in=ids).values_list("external_id", flat=True)
        )
        rows = [
            _item_from(data, category=categories.get(data.category or ""), now=now)
            for data in batch
        ]
        Item.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["external_id"],
            update_fields=ITEM_UPSERT_FIELDS,
        )
        created += [i for i in ids if i not in existing]
        updated += [i for i in ids if i in existing]
        if on_batch_done is not None:
            on_batch_done(len(batch))
    return UpsertResult(created=created, updated=updated)


@transaction.atomic
def items_deactivate(*, external_ids: Iterable[str]) -> int:
    """Mark items inactive (never deleted: events keep pointing at them); returns how many
    were active before."""
    ids = sorted(set(external_ids))
    now = timezone.now()
    changed = 0
    for batch in batched(ids, DEACTIVATE_BATCH_SIZE):
        changed += Item.objects.filter(external_id__in=batch, is_active=True).update(
            is_active=False, updated_at=now
        )
    return changed
