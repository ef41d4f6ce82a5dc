"""The Django edge of `ml`: datasets read from the interaction log."""

from collections.abc import Mapping
from datetime import datetime

import numpy as np

from ml.data.dataset import DEFAULT_EVENT_WEIGHTS, InteractionData, from_arrays
from webapp.models import Interaction

# Every rating counts as a positive interaction (as in RecBole's ML-100K defaults).
DATABASE_EVENT_WEIGHTS: Mapping[str, float] = {**DEFAULT_EVENT_WEIGHTS, "rating": 1.0}
READ_CHUNK_SIZE = 50_000


def interaction_data_from_database(
    *,
    event_weights: Mapping[str, float] = DATABASE_EVENT_WEIGHTS,
    since: datetime | None = None,
) -> InteractionData:
    """The interaction log as a dataset: bots and non-item events left out, one row per
    (visitor, item) keeping the largest event weight (latest timestamp)."""
    events = Interaction.objects.filter(
        is_bot=False, item__isnull=False, event_type__in=list(event_weights)
    )
    if since is not None:
        events = events.filter(timestamp__gte=since)
    rows = list(
        events.order_by("timestamp", "pk")
        .values_list("visitor_id", "item__external_id", "event_type", "timestamp")
        .iterator(chunk_size=READ_CHUNK_SIZE)
    )
    users = [row[0] for row in rows]
    items = [row[1] for row in rows]
    weights = np.array([event_weights[row[2]] for row in rows], dtype=np.float32)
    timestamps = np.array([row[3].timestamp() for row in rows], dtype=np.float64)
    return from_arrays(users, items, weights, timestamps, on_duplicate="max", source="database")
