"""The fixed list of attributes a segment condition can test, and how values are written.

Each attribute has a kind (how its value is parsed), the operators valid for it, and
where it is evaluated: from stored facts in the database (the visitor's profile and
interaction log: the same SQL serves the per-request check and the admin preview) or
at request time (time of day, day of week: they describe the request, not the visitor).
No Django models here, so forms and the evaluator share one parser.
"""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models


class Kind(StrEnum):
    NUMBER = "number"
    TEXT = "text"
    CHOICE = "choice"
    BOOLEAN = "boolean"
    HOURS = "hours"
    DAYS = "days"
    CATEGORIES = "categories"
    CONTEXT = "context"


class Operator(models.TextChoices):
    EQ = "eq", "is"
    NE = "ne", "is not"
    IN = "in", "is one of (comma-separated)"
    NOT_IN = "not_in", "is none of (comma-separated)"
    CONTAINS = "contains", "contains"
    GT = "gt", "is more than"
    GTE = "gte", "is at least"
    LT = "lt", "is less than"
    LTE = "lte", "is at most"
    IS_SET = "is_set", "is set (any value)"


COMPARE = (Operator.EQ, Operator.NE, Operator.GT, Operator.GTE, Operator.LT, Operator.LTE)
TEXT_OPS = (
    Operator.EQ,
    Operator.NE,
    Operator.IN,
    Operator.NOT_IN,
    Operator.CONTAINS,
    Operator.IS_SET,
)
LIST_OPS = (Operator.IN, Operator.NOT_IN)
DEVICE_TYPES = ("mobile", "tablet", "desktop", "bot")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CONTEXT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute: how its value is parsed and which operators apply."""

    key: str
    label: str
    kind: Kind
    operators: tuple[str, ...]
    request_time: bool = False
    takes_days: bool = False
    choices: tuple[str, ...] = ()
    integer: bool = False


ATTRIBUTES: dict[str, Attribute] = {
    a.key: a
    for a in (
        Attribute(
            "visitor_type",
            "New or returning visitor",
            Kind.CHOICE,
            (Operator.EQ,),
            choices=("new", "returning"),
        ),
        Attribute("visit_count", "Number of visits", Kind.NUMBER, COMPARE, integer=True),
        Attribute("logged_in", "Logged in (yes/no)", Kind.BOOLEAN, (Operator.EQ,)),
        Attribute(
            "device_type",
            "Device type",
            Kind.CHOICE,
            (Operator.EQ, Operator.NE, *LIST_OPS),
            choices=DEVICE_TYPES,
        ),
        Attribute(
            "referrer_domain", "Referrer domain (latest visit from a link)", Kind.TEXT, TEXT_OPS
        ),
        Attribute(
            "first_referrer_domain", "Referrer domain of the first visit", Kind.TEXT, TEXT_OPS
        ),
        Attribute("utm_source", "UTM source", Kind.TEXT, TEXT_OPS),
        Attribute("utm_medium", "UTM medium", Kind.TEXT, TEXT_OPS),
        Attribute("utm_campaign", "UTM campaign", Kind.TEXT, TEXT_OPS),
        Attribute(
            "country",
            "Country (ISO code)",
            Kind.TEXT,
            (Operator.EQ, Operator.NE, *LIST_OPS, Operator.IS_SET),
        ),
        Attribute(
            "hour_of_day", "Hour of day (e.g. 9-17)", Kind.HOURS, LIST_OPS, request_time=True
        ),
        Attribute(
            "day_of_week", "Day of week (e.g. mon-fri)", Kind.DAYS, LIST_OPS, request_time=True
        ),
        Attribute(
            "viewed_category",
            "Viewed an item of category (slugs)",
            Kind.CATEGORIES,
            LIST_OPS,
            takes_days=True,
        ),
        Attribute(
            "purchased_category",
            "Bought an item of category (slugs)",
            Kind.CATEGORIES,
            LIST_OPS,
            takes_days=True,
        ),
        Attribute("cart_value", "Cart value", Kind.NUMBER, COMPARE),
        Attribute(
            "purchase_count",
            "Number of purchases",
            Kind.NUMBER,
            COMPARE,
            takes_days=True,
            integer=True,
        ),
        Attribute(
            "context",
            "Custom context key (sent by a client app)",
            Kind.CONTEXT,
            (*COMPARE, *LIST_OPS, Operator.IS_SET),
        ),
        Attribute(
            "audience",
            "Learned audience (code from a model)",
            Kind.TEXT,
            (Operator.EQ, Operator.NE, *LIST_OPS, Operator.IS_SET),
        ),
    )
}


def attribute_choices() -> list[tuple[str, str]]:
    return [(a.key, a.label) for a in ATTRIBUTES.values()]


def _items(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _number(raw: str, attribute: Attribute) -> Decimal:
    try:
        number = Decimal(raw.strip())
    except InvalidOperation:
        raise ValidationError(f"“{raw}” is not a number: {attribute.label} needs one.") from None
    if not number.is_finite():
        raise ValidationError(f"“{raw}” is not a finite number.")
    if attribute.integer and number != number.to_integral_value():
        raise ValidationError(f"{attribute.label} needs a whole number, not “{raw}”.")
    return number


def _cyclic(raw: str, size: int, name_of: Any, what: str) -> frozenset[int]:
    """ "9-17, 20" -> {9..17, 20}; a range may wrap ("22-2", "sat-mon")."""
    values: set[int] = set()
    for part in _items(raw):
        bounds = [name_of(b.strip()) for b in part.split("-", 1)]
        if any(b is None for b in bounds):
            raise ValidationError(f"“{part}” is not a {what}.")
        start, end = bounds[0], bounds[-1]
        values.update((start + step) % size for step in range((end - start) % size + 1))
    if not values:
        raise ValidationError(f"Give at least one {what}.")
    return frozenset(values)


def _hour(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 <= int(text) <= 23 else None


def _day(text: str) -> int | None:
    short = text.lower()[:3]
    return DAY_NAMES.index(short) if short in DAY_NAMES and len(text) >= 3 else None


def _text(raw: str, attribute: Attribute) -> str:
    text = raw.strip()
    if attribute.key == "country":
        text = text.upper()
        if not COUNTRY.match(text):
            raise ValidationError(f"“{raw}” is not a two-letter country code (e.g. FR).")
    elif attribute.key != "audience":
        text = text.lower().removeprefix("www.") if "domain" in attribute.key else text.lower()
    return text


def parse_value(attribute_key: str, operator: str, raw: str) -> Any:
    """The condition's value in the form the evaluator uses; ValidationError naming the problem."""
    attribute = ATTRIBUTES.get(attribute_key)
    if attribute is None:
        raise ValidationError(f"Unknown attribute “{attribute_key}”.")
    if operator not in attribute.operators:
        valid = ", ".join(str(Operator(o).label) for o in attribute.operators)
        raise ValidationError(
            f"“{Operator(operator).label if operator in Operator.values else operator}” "
            f"does not apply to {attribute.label}; use one of: {valid}."
        )
    if operator == Operator.IS_SET:
        return None
    raw = raw or ""
    if not raw.strip():
        raise ValidationError(f"Give a value for {attribute.label}.")
    return _parse_kind(attribute, operator, raw)


def _parse_kind(attribute: Attribute, operator: str, raw: str) -> Any:
    many = operator in LIST_OPS
    if attribute.kind == Kind.NUMBER:
        return _number(raw, attribute)
    if attribute.kind == Kind.BOOLEAN:
        answer = {"yes": True, "true": True, "no": False, "false": False}.get(raw.strip().lower())
        if answer is None:
            raise ValidationError(f"“{raw}” is not yes or no.")
        return answer
    if attribute.kind == Kind.HOURS:
        return _cyclic(raw, 24, _hour, "hour (0-23) or range of hours (9-17)")
    if attribute.kind == Kind.DAYS:
        return _cyclic(raw, 7, _day, "day name (mon..sun) or range of days (mon-fri)")
    if attribute.kind == Kind.CONTEXT and operator in COMPARE[2:]:
        return _number(raw, attribute)
    values = _items(raw) if many else [raw.strip()]
    if attribute.kind == Kind.CHOICE:
        unknown = [v for v in values if v.lower() not in attribute.choices]
        if unknown:
            raise ValidationError(
                f"{attribute.label} can be {', '.join(attribute.choices)}, not “{unknown[0]}”."
            )
        values = [v.lower() for v in values]
    elif attribute.kind == Kind.TEXT:
        values = [_text(v, attribute) for v in values]
    if not values:
        raise ValidationError(f"Give at least one value for {attribute.label}.")
    return tuple(values) if many else values[0]


def key_errors(attribute_key: str, key: str) -> str | None:
    """What is wrong with the condition's context key (None when fine)."""
    if attribute_key != "context":
        return "Only custom context conditions take a key." if key else None
    if not CONTEXT_KEY.match(key or ""):
        return "Give the context key: lowercase letters, digits and _, starting with a letter."
    return None
