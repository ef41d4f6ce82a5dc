"""Database side of the A/B simulation: the MovieLens items, and the replay's events."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from webapp.models import EventType, Interaction, Visitor

# The same loader code as `load_movielens` creates the movies, so a later full load finds
# them as it would have made them (categories, demo prices) and adds only the ratings.
from webapp.services.movielens import (
    ITEM_PREFIX,
    _genre_categories,
    _items_create,
    movielens_files_from_wheel,
    parse_movies,
)

EVENT_BATCH_SIZE = 5000
SOURCE = "simulate_ab"


def movielens_item_pks(*, wheel: Path, item_ids: Sequence[str]) -> np.ndarray:
    """`Item.pk` of each MovieLens item id ("1".."1682"), creating the missing movies."""
    movies = parse_movies(movielens_files_from_wheel(wheel=wheel).item)
    _, pks = _items_create(movies, _genre_categories(movies))
    missing = [item for item in item_ids if int(item) not in pks]
    if missing:
        raise ValueError(f"no {ITEM_PREFIX}{missing[0]} item in the catalog file")
    return np.array([pks[int(item)] for item in item_ids], dtype=np.int64)


def simulation_interactions_create(
    *,
    shown: Sequence[tuple[Visitor, str, datetime, np.ndarray, frozenset[int]]],
    item_pks: np.ndarray,
    experiment_key: str,
    placement: str,
) -> int:
    """Impressions of each shown list, then a click on each held-out positive shown.

    `shown` rows: (visitor, variant key, arrival, internal item ids, positives). Every
    event carries the variant in `context["variants"]`, as the site's events do.
    """
    events = []
    for visitor, variant, arrival, items, positives in shown:
        context: dict[str, object] = {"variants": {experiment_key: variant}, "source": SOURCE}
        session = f"sim-{visitor.pk}"
        for rank, item in enumerate(items):
            at = arrival + timedelta(seconds=1 + rank / 100)
            events.append(
                _event(
                    visitor, item_pks[item], EventType.IMPRESSION, at, session, placement, context
                )
            )
            if int(item) in positives:
                click_at = arrival + timedelta(seconds=5 + rank)
                events.append(
                    _event(
                        visitor,
                        item_pks[item],
                        EventType.CLICK,
                        click_at,
                        session,
                        placement,
                        context,
                    )
                )
    Interaction.objects.bulk_create(events, batch_size=EVENT_BATCH_SIZE)
    return len(events)


def _event(
    visitor: Visitor,
    item_pk: int,
    kind: str,
    at: datetime,
    session: str,
    placement: str,
    context: dict[str, object],
) -> Interaction:
    return Interaction(
        event_id=uuid.uuid4(),
        visitor=visitor,
        item_id=int(item_pk),
        event_type=kind,
        timestamp=at,
        session_id=session,
        placement=placement,
        context=context,
    )
