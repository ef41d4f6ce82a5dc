"""A history built from what a client sends (current item, cart, recent items), for
clients without a stored history, merged in front of the visitor's own if there is one."""

from typing import Any

from django.utils import timezone

from recommender.history import EVENT_STRENGTH, HistoryEvent, VisitorHistory, visitor_history
from webapp.models import EventType, Item, Visitor


def history_from_context(*, visitor: Visitor | None, context: dict[str, Any]) -> VisitorHistory:
    """The context's items as the newest events (cart > current > recent), then the stored ones.

    Unknown or inactive ids in the context are ignored: a client's stale cart must not
    turn a recommendation request into an error.
    """
    wanted: list[tuple[str, str]] = [
        (str(i), EventType.ADD_TO_CART) for i in context.get("cart", [])
    ]
    if context.get("item"):
        wanted.append((str(context["item"]), EventType.VIEW))
    wanted += [(str(i), EventType.VIEW) for i in context.get("recent", [])]
    external_ids = {external_id for external_id, _ in wanted}
    found = {
        external_id: (pk, title)
        for external_id, pk, title in Item.objects.filter(
            external_id__in=external_ids, is_active=True
        ).values_list("external_id", "pk", "title")
    }
    now = timezone.now()
    events = tuple(
        HistoryEvent(
            found[external_id][0],
            found[external_id][1],
            event_type,
            now,
            "",
            EVENT_STRENGTH[EventType(event_type)],
        )
        for external_id, event_type in wanted
        if external_id in found
    )
    stored = visitor_history(visitor=visitor)
    return VisitorHistory(
        visitor_pk=None,  # never the training row: the context is newer than any model
        events=events + stored.events,
        consumed=stored.consumed,
        generation=f"context.{stored.generation}",
    )
