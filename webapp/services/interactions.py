"""Writes on the interaction log."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from webapp.models import EventType, Interaction, Item, Visitor
from webapp.services.visitors import visitor_resolve

# Columns of one inserted event, in the order of the VALUES tuples.
INSERT_FIELDS = (
    "event_id",
    "visitor",
    "item",
    "event_type",
    "value",
    "query",
    "session_id",
    "timestamp",
    "placement",
    "context",
    "is_bot",
)

# Sent once the transaction that stored a visitor's new events has committed, with
# `visitor_pks` (a frozenset): what a visitor sees may change now (e.g. the recommender
# refreshes their cached answer off the request path). Bulk loads do not send it.
events_recorded = Signal()


def _announce(visitor_pks: set[int]) -> None:
    if visitor_pks:
        pks = frozenset(visitor_pks)
        transaction.on_commit(lambda: events_recorded.send(sender=Interaction, visitor_pks=pks))


def interaction_record_view(
    *, visitor: Visitor, item: Item, session_id: str = "", context: dict[str, Any] | None = None
) -> Interaction:
    """Log a server-side page view of an item page (with the visitor's variants)."""
    from webapp.experiments.serving import event_context, event_variants

    view = Interaction.objects.create(
        visitor=visitor,
        item=item,
        event_type=EventType.VIEW,
        session_id=session_id[:64],
        timestamp=timezone.now(),
        placement="item_page",
        context=event_context(context or {}, event_variants(visitor=visitor)),
        is_bot=visitor.is_bot,
    )
    visitor.generation += 1  # what the trigger did to the row: this request sees it too
    _announce({visitor.pk})
    return view


@dataclass(frozen=True)
class ValidatedEvent:
    """One event that passed input validation, as the ingestion service takes it."""

    event_type: str
    visitor_key: uuid.UUID
    timestamp: datetime
    event_id: uuid.UUID | None = None
    item_external_id: str | None = None
    value: Decimal | None = None
    query: str = ""
    session_id: str = ""
    placement: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    is_bot: bool = False


class IngestStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class IngestOutcome:
    status: IngestStatus
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    """One outcome per ingested event, in the order they were given."""

    outcomes: tuple[IngestOutcome, ...]

    def count(self, status: IngestStatus) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


def _items_by_external_id(events: Sequence[ValidatedEvent]) -> dict[str, int]:
    wanted = {e.item_external_id for e in events if e.item_external_id}
    if not wanted:
        return {}
    return dict(Item.objects.filter(external_id__in=wanted).values_list("external_id", "pk"))


def _visitors_by_key(keys: set[uuid.UUID], *, create: bool) -> dict[uuid.UUID, Visitor]:
    """The live visitor for each key (following merges); unknown keys are created if asked."""
    found = {v.key: v for v in Visitor.objects.select_related("merged_into").filter(key__in=keys)}
    missing = keys - found.keys()
    if create and missing:
        # ignore_conflicts: a concurrent request may create the same visitor first.
        Visitor.objects.bulk_create(
            [Visitor(key=k) for k in sorted(missing)], ignore_conflicts=True
        )
        found |= {v.key: v for v in Visitor.objects.filter(key__in=missing)}
    live: dict[uuid.UUID, Visitor] = {}
    for key, visitor in found.items():
        target = visitor.merged_into or visitor
        if target.merged_into_id is not None:  # merges are flattened, so this is rare
            target = visitor_resolve(key=target.key) or target
        live[key] = target
    return live


def _insert_new(rows: list[Interaction]) -> set[uuid.UUID | None]:
    """Insert `rows`, skipping event_ids that already exist; the event_ids really inserted."""
    if not rows:
        return set()
    by_name = {f.name: f for f in Interaction._meta.concrete_fields}
    fields = [by_name[name] for name in INSERT_FIELDS]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(cast(str, f.column)) for f in fields)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
    params = [
        f.get_db_prep_save(getattr(row, f.attname), connection) for row in rows for f in fields
    ]
    sql = (
        f"INSERT INTO {quote(Interaction._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES {placeholders} ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


@transaction.atomic
def interactions_ingest(
    *, events: Sequence[ValidatedEvent], create_visitors: bool = False
) -> IngestResult:
    """Store a batch of events at most once per event_id, in one insert; per-event outcomes.

    Unknown items are rejected; unknown visitors are rejected unless `create_visitors`.
    An event_id already stored, or repeated earlier in the batch, is a duplicate.
    """
    if not events:
        return IngestResult(outcomes=())
    from webapp.experiments.serving import event_variants

    items = _items_by_external_id(events)
    visitors = _visitors_by_key({e.visitor_key for e in events}, create=create_visitors)
    variants = {v.pk: event_variants(visitor=v) for v in visitors.values()}
    ids = {e.event_id for e in events if e.event_id is not None}
    stored = set(Interaction.objects.filter(event_id__in=ids).values_list("event_id", flat=True))
    outcomes: list[IngestOutcome | None] = []
    pending: dict[int, Interaction] = {}
    seen: set[uuid.UUID] = set()
    for index, event in enumerate(events):
        errors = _reference_errors(event, items, visitors)
        if errors:
            outcomes.append(IngestOutcome(IngestStatus.REJECTED, errors))
        elif event.event_id is not None and (event.event_id in stored or event.event_id in seen):
            outcomes.append(IngestOutcome(IngestStatus.DUPLICATE))
        else:
            if event.event_id is not None:
                seen.add(event.event_id)
            outcomes.append(None)
            visitor = visitors[event.visitor_key]
            pending[index] = _interaction(event, items, visitor, variants[visitor.pk])
    # One lock order for every batch, so two overlapping batches cannot deadlock.
    rows = sorted(pending.values(), key=lambda row: (row.event_id is None, str(row.event_id)))
    inserted = _insert_new(rows)
    stored_for: set[int] = set()
    for index, row in pending.items():
        # Not returned by the insert: another request stored this event_id meanwhile.
        won = row.event_id is None or row.event_id in inserted
        outcomes[index] = IngestOutcome(IngestStatus.ACCEPTED if won else IngestStatus.DUPLICATE)
        if won:
            stored_for.add(row.visitor_id)
    _announce(stored_for)
    return IngestResult(outcomes=tuple(o for o in outcomes if o is not None))


def _reference_errors(
    event: ValidatedEvent, items: dict[str, int], visitors: dict[uuid.UUID, Visitor]
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if event.item_external_id and event.item_external_id not in items:
        errors["item"] = [f"Unknown item {event.item_external_id!r}."]
    if event.visitor_key not in visitors:
        errors["visitor"] = [f"Unknown visitor {event.visitor_key}."]
    return errors


def _interaction(
    event: ValidatedEvent, items: dict[str, int], visitor: Visitor, variants: dict[str, str]
) -> Interaction:
    from webapp.experiments.serving import event_context

    return Interaction(
        event_id=event.event_id,
        visitor=visitor,
        item_id=items[event.item_external_id] if event.item_external_id else None,
        event_type=event.event_type,
        value=event.value,
        query=event.query,
        session_id=event.session_id,
        timestamp=event.timestamp,
        placement=event.placement,
        context=event_context(event.context, variants),
        is_bot=event.is_bot or visitor.is_bot,
    )
