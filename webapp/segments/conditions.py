"""Conditions as they are evaluated: stored facts as SQL over visitors, time in Python.

A `LiveCondition` is a condition parsed once (values typed, category slugs resolved to
ids with their descendants). `condition_q` turns a database condition into a filter on
`Visitor` (profile columns through the one-to-one join, events through correlated
subqueries on the (visitor, -timestamp) index), so a single SELECT evaluates every
condition for one visitor and the same filters count a segment over all visitors.

Definitions used by the conditions:

- new visitor: at most one visit (`VisitorProfile.visit_count` <= 1; no profile = new);
- viewed / bought category: a `view` / `purchase` event of an item in one of the
  categories or their sub-categories (within the last N days when given);
- cart value: the sum of the list prices of the items added to the cart (`add_to_cart`
  events) after the visitor's latest purchase; the site keeps no cart of its own;
- custom context: is / one of compare the stored value's text (numbers as JSON writes
  them, booleans as true/false); more / less than match only numbers.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateTimeField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, Now
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
)

from webapp.models import EventType, Interaction
from webapp.segments.attributes import ATTRIBUTES, Operator
from webapp.segments.models import SegmentMatch

ALWAYS = Q(pk__isnull=False)
PROFILE_FIELDS = {
    "device_type": "profile__device_type",
    "referrer_domain": "profile__referrer_domain",
    "first_referrer_domain": "profile__first_referrer_domain",
    "utm_source": "profile__utm_source",
    "utm_medium": "profile__utm_medium",
    "utm_campaign": "profile__utm_campaign",
    "country": "profile__country",
    "audience": "profile__audience",
}
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    Operator.EQ: Exact,
    Operator.GT: GreaterThan,
    Operator.GTE: GreaterThanOrEqual,
    Operator.LT: LessThan,
    Operator.LTE: LessThanOrEqual,
}


@dataclass(frozen=True, slots=True)
class LiveCondition:
    """A parsed condition: `value` is typed (see attributes.parse_value)."""

    pk: int
    attribute: str
    operator: str
    value: Any
    key: str = ""
    last_days: int | None = None
    category_ids: tuple[int, ...] = ()

    @property
    def request_time(self) -> bool:
        return ATTRIBUTES[self.attribute].request_time


@dataclass(frozen=True, slots=True)
class LiveSegment:
    """An active segment with its conditions in groups (group order is irrelevant)."""

    pk: int
    name: str
    match: str
    groups: tuple[tuple[LiveCondition, ...], ...]

    @property
    def conditions(self) -> tuple[LiveCondition, ...]:
        return tuple(c for group in self.groups for c in group)

    def holds(self, truth: Callable[[LiveCondition], bool]) -> bool:
        """The segment's formula for the conditions' truth values (no condition: nobody)."""
        if not self.groups:
            return False
        if self.match == SegmentMatch.ALL:
            return any(all(truth(c) for c in group) for group in self.groups)
        return all(any(truth(c) for c in group) for group in self.groups)

    def visitors_q(self, *, now: datetime | None = None) -> Q:
        """The formula as one filter on Visitor; request-time conditions count as met."""
        if not self.groups:
            return ~ALWAYS
        inner, outer = (
            (Q.__and__, Q.__or__) if self.match == SegmentMatch.ALL else (Q.__or__, Q.__and__)
        )
        combined: Q | None = None
        for group in self.groups:
            group_q: Q | None = None
            for condition in group:
                q = ALWAYS if condition.request_time else condition_q(condition, now=now)
                group_q = q if group_q is None else inner(group_q, q)
            assert group_q is not None
            combined = group_q if combined is None else outer(combined, group_q)
        assert combined is not None
        return combined


def request_condition_holds(condition: LiveCondition, *, local_now: datetime) -> bool:
    """Time of day / day of week of the request (in SEGMENTS_TIME_ZONE)."""
    current = local_now.hour if condition.attribute == "hour_of_day" else local_now.weekday()
    inside = current in condition.value
    return inside if condition.operator == Operator.IN else not inside


def condition_truth_expression(condition: LiveCondition, *, now: datetime | None = None) -> Case:
    """True or False (never NULL) for the visitor of the row: for one SELECT of many."""
    return Case(
        When(condition_q(condition, now=now), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )


def condition_q(condition: LiveCondition, *, now: datetime | None = None) -> Q:
    """A database condition as a filter on Visitor; "last N days" counts from `now`, by
    default the database's clock (then the SQL does not change with time)."""
    attribute, op, value = condition.attribute, condition.operator, condition.value
    if attribute == "visitor_type":
        new = Q(profile__isnull=True) | Q(profile__visit_count__lte=1)
        return new if value == "new" else ~new
    if attribute == "logged_in":
        return Q(user__isnull=not value)
    if attribute in PROFILE_FIELDS:
        return _text_q(PROFILE_FIELDS[attribute], op, value)
    if attribute == "visit_count":
        return _compare_q(Coalesce(F("profile__visit_count"), 0), op, int(value))
    if attribute in ("viewed_category", "purchased_category"):
        kind = EventType.VIEW if attribute == "viewed_category" else EventType.PURCHASE
        events = _events(kind, condition, now).filter(item__category_id__in=condition.category_ids)
        return Q(Exists(events)) if op == Operator.IN else ~Q(Exists(events))
    if attribute == "purchase_count":
        counted = (
            _events(EventType.PURCHASE, condition, now)
            .values("visitor_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return _compare_q(Coalesce(Subquery(counted), 0), op, int(value))
    if attribute == "cart_value":
        return _compare_q(_cart_value(), op, value)
    if attribute == "context":
        return _context_q(condition.key, op, value)
    raise ValueError(f"{attribute} is not a database attribute")


def _events(kind: str, condition: LiveCondition, now: datetime | None) -> Any:
    events = Interaction.objects.filter(visitor_id=OuterRef("pk"), event_type=kind)
    if condition.last_days:
        window = timedelta(days=condition.last_days)
        since = (
            now - window
            if now is not None
            else ExpressionWrapper(Now() - Value(window), output_field=DateTimeField())
        )
        events = events.filter(timestamp__gte=since)
    return events


def _cart_value() -> Coalesce:
    later_purchase = Interaction.objects.filter(
        visitor_id=OuterRef("visitor_id"),
        event_type=EventType.PURCHASE,
        timestamp__gte=OuterRef("timestamp"),
    )
    added = (
        Interaction.objects.filter(visitor_id=OuterRef("pk"), event_type=EventType.ADD_TO_CART)
        .exclude(Exists(later_purchase))
        .values("visitor_id")
        .annotate(total=Sum("item__list_price"))
        .values("total")
    )
    money = DecimalField(max_digits=14, decimal_places=2)
    return Coalesce(Subquery(added, output_field=money), Value(Decimal(0)), output_field=money)


def _compare_q(expression: Any, op: str, value: Any) -> Q:
    if op == Operator.NE:
        return ~Q(Exact(expression, value))
    return Q(COMPARISONS[op](expression, value))


def _text_q(field: str, op: str, value: Any) -> Q:
    if op == Operator.IS_SET:
        return Q(**{f"{field}__gt": ""})
    if op == Operator.CONTAINS:
        return Q(**{f"{field}__contains": value})
    if op in (Operator.IN, Operator.NOT_IN):
        found = Q(**{f"{field}__in": list(value)})
        return found if op == Operator.IN else ~found
    found = Q(**{field: value})
    return found if op == Operator.EQ else ~found


def _context_q(key: str, op: str, value: Any) -> Q:
    if op == Operator.IS_SET:
        return Q(**{"profile__context__has_key": key})
    if op in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE):
        json_type = Func(
            KeyTransform(key, "profile__context"), function="jsonb_typeof", output_field=CharField()
        )
        # CASE keeps Postgres from casting a text value to a number (an error).
        number = Case(
            When(
                Exact(json_type, "number"),
                then=Cast(KeyTextTransform(key, "profile__context"), FloatField()),
            ),
            default=None,
            output_field=FloatField(),
        )
        return Q(COMPARISONS[op](number, float(value)))
    text = KeyTextTransform(key, "profile__context")
    if op in (Operator.IN, Operator.NOT_IN):
        found = Q(In(text, list(value)))
        return found if op == Operator.IN else ~found & Q(**{"profile__context__has_key": key})
    found = Q(Exact(text, str(value)))
    return found if op == Operator.EQ else ~found & Q(**{"profile__context__has_key": key})
