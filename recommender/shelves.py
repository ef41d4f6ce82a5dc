"""From candidates to what a page shows: active items only, nothing consumed, nothing
twice on a page, no section dominated by one category, then the merchandising rules."""

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from recommender.candidates import Candidate
from webapp.models import Item

MERCHANDISED = 3  # pool depth, in multiples of k, that the merchandising rules reorder
CARD_FIELDS = (
    "pk",
    "external_id",
    "title",
    "image_url",
    "list_price",
    "currency",
    "category_id",
    "category__name",
)


@dataclass(frozen=True)
class ItemCard:
    """What a shelf needs to draw an item (no model instance: it is cached and pickled)."""

    pk: int
    external_id: str
    title: str
    image_url: str
    list_price: Decimal | None
    currency: str
    category_id: int | None
    category_name: str | None


@dataclass(frozen=True)
class ShelfItem:
    card: ItemCard
    score: float
    source: str
    model_version: int | None
    reason: str
    rank: int  # 1-based


@dataclass(frozen=True)
class Shelf:
    """One section of recommendations as served."""

    section: str
    title: str
    items: tuple[ShelfItem, ...]
    fallback: str = ""  # why the section is not what it should have been, if it is not
    variant: str = ""  # "<experiment>=<variant>" when an experiment's variant served it


@dataclass
class PageState:
    """What the sections of one page share: the items already placed."""

    placed: set[int] = field(default_factory=set)


def item_cards(pks: Iterable[int]) -> dict[int, ItemCard]:
    """Cards of the active items among `pks` (one query)."""
    wanted = set(pks)
    if not wanted:
        return {}
    rows = Item.objects.filter(pk__in=wanted, is_active=True).values_list(*CARD_FIELDS)
    return {row[0]: ItemCard(*row) for row in rows}


def diversified(
    candidates: Sequence[Candidate], cards: dict[int, ItemCard], k: int, max_share: float
) -> list[Candidate]:
    """The first k candidates with at most ceil(max_share * k) per category, when possible.

    Items over a category's quota are kept aside and only used to fill the section if
    there are not enough others, so a one-category catalog still fills its shelves.
    """
    quota = max(1, math.ceil(max_share * k)) if max_share < 1.0 else k
    per_category: dict[int | None, int] = {}
    chosen: list[Candidate] = []
    overflow: list[Candidate] = []
    for candidate in candidates:
        category = cards[candidate.item_id].category_id
        full = category is not None and per_category.get(category, 0) >= quota
        if full and candidate.source != "pinned":  # a marketer's pin wins over diversity
            overflow.append(candidate)
            continue
        per_category[category] = per_category.get(category, 0) + 1
        chosen.append(candidate)
        if len(chosen) == k:
            return chosen
    return chosen + overflow[: k - len(chosen)]


def eligible(
    candidates: Iterable[Candidate],
    cards: dict[int, ItemCard],
    *,
    exclude: Collection[int],
    page: PageState,
) -> list[Candidate]:
    """Candidates that are active, not consumed, not already on the page; first of each."""
    seen: set[int] = set()
    kept = []
    for candidate in candidates:
        pk = candidate.item_id
        if pk in cards and pk not in exclude and pk not in page.placed and pk not in seen:
            seen.add(pk)
            kept.append(candidate)
    return kept


def shelf_build(
    *,
    section: str,
    title: str,
    ranked: Sequence[Candidate],
    fill: Sequence[Candidate],
    cards: dict[int, ItemCard],
    exclude: Collection[int],
    page: PageState,
    k: int,
    fallback: str = "",
    now: datetime | None = None,
) -> Shelf:
    """Filter, diversify, apply the section's rules, top up from `fill`, number the items."""
    from recommender.merchandising import merchandising_apply

    pool = eligible([*ranked, *fill], cards, exclude=exclude, page=page)[: MERCHANDISED * k]
    # Rules see a deep pool, so a boost can lift an item from below the fold.
    ruled = merchandising_apply(section=section, candidates=pool, k=len(pool) + k, now=now)
    missing = [c.item_id for c in ruled if c.item_id not in cards]
    if missing:  # pinned items outside the candidates
        cards.update(item_cards(missing))
    ruled = [c for c in ruled if c.item_id in cards and c.item_id not in page.placed]
    final = diversified(ruled, cards, k, settings.RECOMMENDER_MAX_CATEGORY_SHARE)
    items: list[ShelfItem] = []
    for candidate in final:
        card = cards.get(candidate.item_id)
        if card is None or candidate.item_id in page.placed:
            continue
        page.placed.add(candidate.item_id)
        items.append(
            ShelfItem(
                card,
                candidate.score,
                candidate.source,
                candidate.model_version,
                candidate.reason,
                len(items) + 1,
            )
        )
    return Shelf(section, title, tuple(items), fallback)
