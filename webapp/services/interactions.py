"""Writes on the interaction log."""

from typing import Any

from django.utils import timezone

from webapp.models import EventType, Interaction, Item, Visitor


def interaction_record_view(
    *, visitor: Visitor, item: Item, session_id: str = "", context: dict[str, Any] | None = None
) -> Interaction:
    """Log a server-side page view of an item page."""
    return Interaction.objects.create(
        visitor=visitor,
        item=item,
        event_type=EventType.VIEW,
        session_id=session_id[:64],
        timestamp=timezone.now(),
        placement="item_page",
        context=context or {},
        is_bot=visitor.is_bot,
    )
