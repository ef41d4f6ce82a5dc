"""A visitor's recent behaviour, read once per request: what serving personalises on."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from webapp.models import EventType, Interaction, Visitor

# Strength of each event as a signal of interest (ratings: see `rating_strength`).
EVENT_STRENGTH = {
    EventType.VIEW: 1.0,
    EventType.CLICK: 1.0,
    EventType.ADD_TO_CART: 3.0,
    EventType.PURCHASE: 5.0,
    EventType.RATING: 3.0,
}
HISTORY_EVENTS = tuple(str(event) for event in EVENT_STRENGTH)


@dataclass(frozen=True)
class HistoryEvent:
    item_pk: int
    title: str
    event_type: str
    timestamp: datetime
    session_id: str
    strength: float
    semantic_id: str = ""  # "<version>:<codes>" when a semantic-IDs model coded the item


@dataclass(frozen=True)
class VisitorHistory:
    """Recent item events, newest first, and what must never be recommended again."""

    visitor_pk: int | None
    events: tuple[HistoryEvent, ...]
    consumed: frozenset[int]  # Item pks bought or rated (or viewed, if so configured)
    generation: str  # changes whenever the visitor logs an event: part of cache keys

    @property
    def is_empty(self) -> bool:
        return not self.events

    def recent_items(self, limit: int) -> list[HistoryEvent]:
        """The most recent distinct items, newest first."""
        seen: set[int] = set()
        recent: list[HistoryEvent] = []
        for event in self.events:
            if event.item_pk not in seen:
                seen.add(event.item_pk)
                recent.append(event)
                if len(recent) == limit:
                    break
        return recent

    def newer_than(self, moment: datetime) -> bool:
        return bool(self.events) and self.events[0].timestamp > moment


EMPTY_HISTORY = VisitorHistory(visitor_pk=None, events=(), consumed=frozenset(), generation="0")


def rating_strength(value: float | None) -> float:
    """Ratings above the middle of a 1-5 scale say more than low ones."""
    return 3.0 if value is None else max(0.5, float(value) - 1.5)


def visitor_generation(*, visitor: Visitor) -> str:
    """A token that changes with every event of the visitor (no query: triggers keep it)."""
    return str(visitor.generation)


def visitor_history(*, visitor: Visitor | None, generation: str | None = None) -> VisitorHistory:
    """The visitor's latest item events (at most RECOMMENDER_HISTORY_LENGTH), newest first."""
    if visitor is None:
        return EMPTY_HISTORY
    rows = (
        Interaction.objects.filter(
            visitor=visitor, item__isnull=False, event_type__in=HISTORY_EVENTS
        )
        .order_by("-timestamp", "-pk")
        .values_list(
            "item_id",
            "item__title",
            "event_type",
            "timestamp",
            "session_id",
            "value",
            "item__semantic_id",
            "item__semantic_id_version_id",
        )[: settings.RECOMMENDER_HISTORY_LENGTH]
    )
    events = tuple(_history_event(row) for row in rows)
    consumed_types = set(settings.RECOMMENDER_EXCLUDE_EVENTS)
    return VisitorHistory(
        visitor_pk=visitor.pk,
        events=events,
        consumed=frozenset(e.item_pk for e in events if e.event_type in consumed_types),
        generation=generation or visitor_generation(visitor=visitor),
    )


def _history_event(
    row: tuple[int, str, str, datetime, str, object, str, int | None],
) -> HistoryEvent:
    item_pk, title, event_type, timestamp, session_id, value, codes, version = row
    if event_type == EventType.RATING:
        strength = rating_strength(float(value) if value is not None else None)  # type: ignore[arg-type]
    else:
        strength = EVENT_STRENGTH.get(EventType(event_type), 1.0)
    semantic_id = semantic_key(codes, version)
    return HistoryEvent(item_pk, title, event_type, timestamp, session_id, strength, semantic_id)


def semantic_key(codes: str, version: int | None) -> str:
    """An item's semantic ID qualified by the version that gave it ("" when uncoded):
    codes of different quantizers mean different things and must never match."""
    return f"{version}:{codes}" if codes and version is not None else ""
