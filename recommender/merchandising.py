"""Merchandising: the marketers' rules applied to a section's ranked candidates.

`merchandising_apply` runs after ranking and returns the section's final top k, in
three steps:

1. **Exclude** drops every candidate an exclude rule matches (exclusion beats pins).
2. **Boost / bury** shift ranks, not scores: scores of different sources (models,
   trending) are not comparable and may be negative, so multiplying them means nothing.
   A candidate at 0-based rank r with matching boosts b1, b2… and buries u1, u2… sorts
   at r - (b1 + b2 + …) + (u1 + u2 + …): "strength" is how many of the original ranks it
   passes. On a tie the item that moved up goes first and the one that moved down goes
   last. Pass more than k candidates (e.g. 3k) so boosts can lift items from below k.
3. **Pins** put one item at a 1-based position. The highest-priority rule wins a
   position; a lower one takes the next free position. A pin at a position beyond k, or
   of an inactive item, does nothing. Pinned items not among the candidates are
   inserted as `Candidate(source="pinned")`; pinned candidates get that source too, so
   the pins' clicks are counted apart from the models'. Free positions are filled by
   the remaining candidates in order; pins past the end of a short list move up.

Rules are read at most every RULES_CACHE_SECONDS per process (saving a rule clears this
process's copy at once): with no live rule for a section, applying costs no query; with
some, one query for the facts of the items involved (two when the rules are reloaded).
"""

import hashlib
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.module_loading import import_string

from recommender.candidates import Candidate
from recommender.models import EVERY_SECTION, MerchandisingRule, RuleAction
from webapp.models import Category, Item

RULES_CACHE_SECONDS = 30.0
PRICE_RELATIONS_SETTING = "RECOMMENDER_PRICE_RELATIONS"
PINNED_SOURCE = "pinned"
PINNED_REASON = "Featured"

PriceRelations = Callable[[Collection[int]], dict[int, str]]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A merchandising rule as the serving path needs it (no model instance, no DB)."""

    pk: int
    action: str
    name: str = ""
    placement: str = EVERY_SECTION
    priority: int = 0
    item_id: int | None = None
    category_ids: frozenset[int] | None = None  # the category and all its descendants
    attribute: tuple[str, str] | None = None
    price_relation: str = ""
    position: int | None = None
    strength: int = 1
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def is_live(self, *, section: str, now: datetime) -> bool:
        """Applies to `section` and `now` is inside its schedule."""
        return self.placement in (EVERY_SECTION, section) and _scheduled(self, now)

    @property
    def needs_facts(self) -> bool:
        """Matching needs the items' category, attributes or prices."""
        return bool(self.category_ids is not None or self.attribute or self.price_relation)


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What rules match on, for one item."""

    item_id: int
    category_id: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    is_active: bool = True
    price_relation: str | None = None  # "cheaper", "pricier", "same" or unknown


def rule_matches(rule: RuleSpec, item_id: int, facts: Mapping[int, ItemFacts]) -> bool:
    """Every target the rule sets holds for the item (targets combine with AND)."""
    if rule.item_id is not None and rule.item_id != item_id:
        return False
    if not rule.needs_facts:
        return rule.item_id is not None
    fact = facts.get(item_id)
    if fact is None:
        return False
    if rule.category_ids is not None and fact.category_id not in rule.category_ids:
        return False
    if rule.attribute and not attribute_matches(fact.attributes, *rule.attribute):
        return False
    return not rule.price_relation or fact.price_relation == rule.price_relation


def attribute_matches(attributes: Mapping[str, Any], key: str, value: str) -> bool:
    """`attributes[key]` equals `value` as text, or is a list holding it."""
    if key not in attributes:
        return False
    found = attributes[key]
    values = found if isinstance(found, list) else [found]
    return any(_as_text(v) == value for v in values)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):  # JSON's spelling, as marketers see it in the feed
        return "true" if value else "false"
    return "" if value is None else str(value)


def rule_order(rule: RuleSpec) -> tuple[int, bool, int]:
    """Higher priority first; on a tie, section rules before every-section ones, newest first."""
    return (-rule.priority, rule.placement == EVERY_SECTION, -rule.pk)


def merchandising_rerank(
    *,
    candidates: Sequence[Candidate],
    rules: Sequence[RuleSpec],
    facts: Mapping[int, ItemFacts],
    k: int,
) -> list[Candidate]:
    """The final top k after the (already live) rules: exclude, shift, pin. No DB."""
    ordered = sorted(rules, key=rule_order)
    excludes = [r for r in ordered if r.action == RuleAction.EXCLUDE]

    def excluded(item_id: int) -> bool:
        return any(rule_matches(r, item_id, facts) for r in excludes)

    kept = [c for c in _unique(candidates) if not excluded(c.item_id)]
    shifted = _shifted(kept, [r for r in ordered if r.action in _SHIFTS], facts)
    pins = [r for r in ordered if r.action == RuleAction.PIN and not excluded(r.item_id or 0)]
    slots = _pin_slots(pins, facts, k)
    return _filled(shifted, slots, k)


_SHIFTS = {RuleAction.BOOST: -1, RuleAction.BURY: 1}


def _unique(candidates: Sequence[Candidate]) -> list[Candidate]:
    first: dict[int, Candidate] = {}
    for candidate in candidates:
        first.setdefault(candidate.item_id, candidate)
    return list(first.values())


def _shifted(
    candidates: list[Candidate], shifters: list[RuleSpec], facts: Mapping[int, ItemFacts]
) -> list[Candidate]:
    """Candidates re-sorted by rank plus the places their boosts and buries move them."""
    if not shifters:
        return candidates

    def shift(item_id: int) -> int:
        return sum(
            _SHIFTS[RuleAction(r.action)] * r.strength
            for r in shifters
            if rule_matches(r, item_id, facts)
        )

    shifts = [shift(c.item_id) for c in candidates]
    order = sorted(range(len(candidates)), key=lambda i: (i + shifts[i], shifts[i], i))
    return [candidates[i] for i in order]


def _pin_slots(pins: list[RuleSpec], facts: Mapping[int, ItemFacts], k: int) -> dict[int, int]:
    """0-based slot → pinned item pk, for the pins (best first) that fit in the top k."""
    slots: dict[int, int] = {}
    for pin in pins:
        fact = facts.get(pin.item_id or 0)
        if pin.item_id in slots.values() or fact is None or not fact.is_active:
            continue
        slot = (pin.position or 1) - 1
        while slot in slots:
            slot += 1
        if slot < k:
            slots[slot] = pin.item_id or 0
    return slots


def _filled(shifted: list[Candidate], slots: dict[int, int], k: int) -> list[Candidate]:
    """Pinned items at their slots, the other candidates in order around them."""
    by_item = {c.item_id: c for c in shifted}
    pinned = set(slots.values())
    rest = iter([c for c in shifted if c.item_id not in pinned])
    result: list[Candidate] = []
    for slot in range(k):
        if slot in slots:
            result.append(_pinned(slots[slot], by_item.get(slots[slot])))
        elif (candidate := next(rest, None)) is not None:
            result.append(candidate)
    return result


def _pinned(item_id: int, candidate: Candidate | None) -> Candidate:
    if candidate is None:
        return Candidate(item_id, 0.0, PINNED_SOURCE, None, PINNED_REASON)
    return replace(candidate, source=PINNED_SOURCE, model_version=None)


# --- loading from the database -------------------------------------------------------

_RULES_CACHE: dict[str, tuple[float, tuple[RuleSpec, ...]]] = {}
_TOKENS: dict[tuple[RuleSpec, ...], str] = {}


def merchandising_apply(
    *, section: str, candidates: Sequence[Candidate], k: int, now: datetime | None = None
) -> list[Candidate]:
    """The section's final top k after the live merchandising rules."""
    now = now or timezone.now()
    rules = [r for r in merchandising_rules_cached() if r.is_live(section=section, now=now)]
    if not rules:
        return _unique(candidates)[:k]
    facts = item_facts_load(rules=rules, candidates=candidates)
    return merchandising_rerank(candidates=candidates, rules=rules, facts=facts, k=k)


def merchandising_rules_cached() -> tuple[RuleSpec, ...]:
    """Every active rule (any schedule, any section), read at most every RULES_CACHE_SECONDS."""
    cached = _RULES_CACHE.get("rules")
    if cached is None or time.monotonic() - cached[0] > RULES_CACHE_SECONDS:
        cached = (time.monotonic(), merchandising_rules_load())
        _RULES_CACHE["rules"] = cached
    return cached[1]


def merchandising_token(now: datetime | None = None) -> str:
    """A short digest of the rules live now (any section): part of served answers' keys.

    Editing, adding or ending a rule changes it, so long-lived cached answers (the
    precomputed ones) never outlive the rules they were ranked under. The same in every
    process (no Python hash), and computed without a query.
    """
    now = now or timezone.now()
    live = tuple(rule for rule in merchandising_rules_cached() if _scheduled(rule, now))
    if not live:
        return "-"
    token = _TOKENS.get(live)
    if token is None:
        canonical = repr([_canonical(rule) for rule in sorted(live, key=lambda r: r.pk)])
        token = hashlib.blake2b(canonical.encode(), digest_size=6).hexdigest()
        if len(_TOKENS) > 64:
            _TOKENS.clear()
        _TOKENS[live] = token
    return token


def _scheduled(rule: RuleSpec, now: datetime) -> bool:
    started = rule.starts_at is None or rule.starts_at <= now
    return started and (rule.ends_at is None or now < rule.ends_at)


def _canonical(rule: RuleSpec) -> tuple[Any, ...]:
    return (
        rule.pk,
        rule.action,
        rule.placement,
        rule.priority,
        rule.item_id,
        sorted(rule.category_ids) if rule.category_ids is not None else None,
        rule.attribute,
        rule.price_relation,
        rule.position,
        rule.strength,
    )


def merchandising_rules_cache_clear() -> None:
    """Forget this process's rules (after a rule or category changes; tests)."""
    _RULES_CACHE.clear()


def merchandising_rules_load() -> tuple[RuleSpec, ...]:
    """Every active rule, its category expanded to the whole subtree, in one query."""
    rows = (
        MerchandisingRule.objects.filter(is_active=True)
        .annotate(category_tree=RawSQL(_category_tree_sql(), ()))  # noqa: S611
        .values(
            "pk",
            "action",
            "name",
            "placement",
            "priority",
            "item_id",
            "category_tree",
            "attribute_key",
            "attribute_value",
            "price_relation",
            "position",
            "strength",
            "starts_at",
            "ends_at",
        )
    )
    return tuple(_rule_spec(row) for row in rows)


def _category_tree_sql() -> str:
    """The rule's category and its descendants (UNION stops on a cycle), or NULL."""
    quote = connection.ops.quote_name
    rule, category = quote(MerchandisingRule._meta.db_table), quote(Category._meta.db_table)
    return f"""
        CASE WHEN {rule}."category_id" IS NULL THEN NULL ELSE ARRAY(
            WITH RECURSIVE tree(id) AS (
                SELECT {rule}."category_id"
                UNION
                SELECT c."id" FROM {category} c JOIN tree ON c."parent_id" = tree.id
            )
            SELECT id FROM tree
        ) END
    """  # noqa: S608 - table names from the models, no user input


def _rule_spec(row: Mapping[str, Any]) -> RuleSpec:
    tree = row["category_tree"]
    return RuleSpec(
        pk=row["pk"],
        action=row["action"],
        name=row["name"],
        placement=row["placement"],
        priority=row["priority"],
        item_id=row["item_id"],
        category_ids=None if tree is None else frozenset(tree),
        attribute=(row["attribute_key"], row["attribute_value"]) if row["attribute_key"] else None,
        price_relation=row["price_relation"],
        position=row["position"],
        strength=row["strength"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
    )


def item_facts_load(
    *, rules: Sequence[RuleSpec], candidates: Sequence[Candidate]
) -> dict[int, ItemFacts]:
    """Facts of the pinned items, and of the candidates when a rule matches on facts."""
    ids = {r.item_id for r in rules if r.action == RuleAction.PIN and r.item_id is not None}
    if any(r.needs_facts for r in rules):
        ids |= {c.item_id for c in candidates}
    if not ids:
        return {}
    rows = Item.objects.filter(pk__in=ids).values_list(
        "pk", "category_id", "attributes", "is_active"
    )
    prices = _price_relations(ids) if any(r.price_relation for r in rules) else {}
    return {
        pk: ItemFacts(pk, category_id, attributes or {}, is_active, prices.get(pk))
        for pk, category_id, attributes, is_active in rows
    }


def _price_relations(item_ids: Collection[int]) -> dict[int, str]:
    """From the RECOMMENDER_PRICE_RELATIONS callable; none configured: no price facts."""
    path = getattr(settings, PRICE_RELATIONS_SETTING, None)
    if not path:
        return {}
    relations: PriceRelations = import_string(path)
    return relations(item_ids)
