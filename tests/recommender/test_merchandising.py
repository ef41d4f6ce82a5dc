"""Merchandising rules: the pure re-ranking, loading from Postgres, the model and the admin."""

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import factory
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from recommender.candidates import Candidate, Section
from recommender.merchandising import (
    ItemFacts,
    RuleSpec,
    attribute_matches,
    merchandising_apply,
    merchandising_rerank,
    merchandising_rules_cache_clear,
)
from recommender.models import MerchandisingRule, RuleAction, ServingFailure
from tests.factories import CategoryFactory, ItemFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOME = Section.TOP_PICKS.value


class MerchandisingRuleFactory(factory.django.DjangoModelFactory[MerchandisingRule]):
    class Meta:
        model = MerchandisingRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    action = RuleAction.EXCLUDE


@pytest.fixture(autouse=True)
def _fresh_rules() -> None:
    merchandising_rules_cache_clear()


def ranked(*item_ids: int) -> list[Candidate]:
    """Candidates in this order, scores falling, as a model would return them."""
    return [Candidate(pk, 1.0 - rank / 100, "ease", 7, "") for rank, pk in enumerate(item_ids)]


def ids(candidates: list[Candidate]) -> list[int]:
    return [c.item_id for c in candidates]


def rerank(
    rules: list[RuleSpec], candidates: list[Candidate], facts: list[ItemFacts], k: int = 5
) -> list[int]:
    facts_by_pk = {f.item_id: f for f in facts}
    return ids(merchandising_rerank(candidates=candidates, rules=rules, facts=facts_by_pk, k=k))


def pin(pk: int, item_id: int, position: int, priority: int = 0) -> RuleSpec:
    return RuleSpec(pk, "pin", item_id=item_id, position=position, priority=priority)


def active(*item_ids: int, is_active: bool = True) -> list[ItemFacts]:
    return [ItemFacts(pk, is_active=is_active) for pk in item_ids]


# --- the pure part: no database ------------------------------------------------------


def test_pin_moves_a_candidate_to_its_position_as_pinned() -> None:
    result = merchandising_rerank(
        candidates=ranked(1, 2, 3, 4), rules=[pin(1, 4, 1)], facts={4: ItemFacts(4)}, k=3
    )

    assert ids(result) == [4, 1, 2]
    assert result[0] == Candidate(4, 0.97, "pinned", None, "")


def test_pin_inserts_an_item_that_is_not_a_candidate() -> None:
    result = merchandising_rerank(
        candidates=ranked(1, 2, 3), rules=[pin(1, 9, 2)], facts={9: ItemFacts(9)}, k=3
    )

    assert ids(result) == [1, 9, 2]
    assert (result[1].source, result[1].model_version) == ("pinned", None)


def test_pin_of_an_inactive_or_unknown_item_is_skipped() -> None:
    rules = [pin(1, 9, 1), pin(2, 8, 2)]

    assert rerank(rules, ranked(1, 2, 3), active(9, is_active=False)) == [1, 2, 3]


def test_pin_beyond_k_leaves_the_item_at_its_rank() -> None:
    assert rerank([pin(1, 2, 8)], ranked(1, 2, 3, 4), active(2), k=3) == [1, 2, 3]


def test_pins_past_the_end_of_a_short_list_move_up() -> None:
    assert rerank([pin(1, 9, 5)], ranked(1, 2), active(9), k=10) == [1, 2, 9]


def test_two_pins_at_one_position_the_higher_priority_wins_the_other_goes_next() -> None:
    rules = [pin(1, 8, 1, priority=0), pin(2, 9, 1, priority=5)]

    assert rerank(rules, ranked(1, 2, 3), active(8, 9)) == [9, 8, 1, 2, 3]


def test_one_item_pinned_twice_takes_the_higher_priority_position_once() -> None:
    rules = [pin(1, 9, 1, priority=0), pin(2, 9, 3, priority=1)]

    assert rerank(rules, ranked(1, 2, 9, 3), active(9)) == [1, 2, 9, 3]


def test_a_pin_that_cannot_fit_in_k_after_a_collision_is_dropped() -> None:
    rules = [pin(1, 8, 2, priority=1), pin(2, 9, 2)]

    assert rerank(rules, ranked(1, 2, 3), active(8, 9), k=2) == [1, 8]


def test_exclusion_beats_a_pin() -> None:
    rules = [pin(1, 9, 1, priority=10), RuleSpec(2, "exclude", item_id=9)]

    assert rerank(rules, ranked(1, 9, 2), active(9)) == [1, 2]


def test_exclude_by_item_category_tree_and_attribute() -> None:
    facts = [
        ItemFacts(1, category_id=10),
        ItemFacts(2, category_id=11),  # a subcategory of 10
        ItemFacts(3, category_id=12, attributes={"brand": "Acme"}),
        ItemFacts(4, category_id=12, attributes={"tags": ["sale", "new"]}),
        ItemFacts(5, category_id=12, attributes={"brand": "Other"}),
    ]
    rules = [
        RuleSpec(1, "exclude", category_ids=frozenset({10, 11})),
        RuleSpec(2, "exclude", attribute=("brand", "Acme")),
        RuleSpec(3, "exclude", attribute=("tags", "new")),
        RuleSpec(4, "exclude", item_id=6),
    ]

    assert rerank(rules, ranked(1, 2, 3, 4, 5, 6, 7), facts) == [5, 7]


def test_targets_combine_with_and() -> None:
    rule = RuleSpec(1, "exclude", category_ids=frozenset({10}), attribute=("brand", "Acme"))
    facts = [
        ItemFacts(1, category_id=10, attributes={"brand": "Acme"}),
        ItemFacts(2, category_id=10, attributes={"brand": "Other"}),
        ItemFacts(3, category_id=11, attributes={"brand": "Acme"}),
    ]

    assert rerank([rule], ranked(1, 2, 3), facts) == [2, 3]


@pytest.mark.parametrize(
    ("attributes", "value", "matches"),
    [
        ({"brand": "Acme"}, "Acme", True),
        ({"brand": "acme"}, "Acme", False),
        ({"brand": 1995}, "1995", True),
        ({"brand": True}, "true", True),
        ({"brand": ["a", "b"]}, "b", True),
        ({"brand": ["a", "b"]}, "c", False),
        ({"other": "Acme"}, "Acme", False),
        ({}, "Acme", False),
    ],
)
def test_attribute_matches_as_text_or_list_member(
    attributes: dict[str, Any], value: str, matches: bool
) -> None:
    assert attribute_matches(attributes, "brand", value) is matches


def test_boost_moves_matching_items_up_by_strength_places() -> None:
    rule = RuleSpec(1, "boost", category_ids=frozenset({10}), strength=2)
    facts = [ItemFacts(pk, category_id=10 if pk in (4, 6) else 20) for pk in range(1, 7)]

    assert rerank([rule], ranked(1, 2, 3, 4, 5, 6), facts, k=6) == [1, 4, 2, 3, 6, 5]


def test_bury_moves_matching_items_down_and_shifts_add_up() -> None:
    rules = [
        RuleSpec(1, "bury", attribute=("brand", "Acme"), strength=3),
        RuleSpec(2, "bury", category_ids=frozenset({10}), strength=1),
        RuleSpec(3, "boost", category_ids=frozenset({30}), strength=1),
    ]
    facts = [
        ItemFacts(1, category_id=10, attributes={"brand": "Acme"}),
        ItemFacts(2, category_id=10),
        ItemFacts(3, category_id=30),
    ]

    # item 1 goes down 4 places, item 2 down 1, item 3 up 1 (relative to the original ranks)
    assert rerank(rules, ranked(1, 2, 3, 4, 5, 6), facts, k=6) == [3, 2, 4, 5, 1, 6]


def test_price_relation_rules_match_only_items_with_that_price_fact() -> None:
    rule = RuleSpec(1, "boost", price_relation="cheaper", strength=10)
    facts = [
        ItemFacts(3, price_relation="cheaper"),
        ItemFacts(2, price_relation="same"),
        ItemFacts(4),
    ]

    assert rerank([rule], ranked(1, 2, 3, 4), facts) == [3, 1, 2, 4]


def test_no_duplicates_and_at_most_k() -> None:
    candidates = ranked(1, 2, 1, 3, 2, 4, 5, 6)

    assert rerank([pin(1, 3, 1)], candidates, active(3), k=4) == [3, 1, 2, 4]


@pytest.mark.parametrize(
    ("placement", "starts", "ends", "live"),
    [
        ("", None, None, True),
        (HOME, None, None, True),
        (Section.SIMILAR.value, None, None, False),
        ("", timedelta(hours=1), None, False),
        ("", None, timedelta(hours=-1), False),
        ("", None, timedelta(0), False),
        ("", timedelta(0), timedelta(hours=1), True),
        ("", timedelta(days=-1), timedelta(days=1), True),
    ],
)
def test_rule_spec_is_live_for_its_section_and_schedule(
    placement: str, starts: timedelta | None, ends: timedelta | None, live: bool
) -> None:
    rule = RuleSpec(
        1,
        "exclude",
        item_id=1,
        placement=placement,
        starts_at=None if starts is None else NOW + starts,
        ends_at=None if ends is None else NOW + ends,
    )

    assert rule.is_live(section=HOME, now=NOW) is live


# --- merchandising_apply on Postgres --------------------------------------------------


@pytest.fixture
def catalog() -> dict[str, Any]:
    """Films > Comedy > Romantic comedy, and Books; one item in each, plus a branded one."""
    films = CategoryFactory.create(name="Films")
    comedy = CategoryFactory.create(name="Comedy", parent=films)
    romcom = CategoryFactory.create(name="Romantic comedy", parent=comedy)
    books = CategoryFactory.create(name="Books")
    return {
        "films": films,
        "comedy": comedy,
        "books": books,
        "film": ItemFactory.create(category=films),
        "romcom": ItemFactory.create(category=romcom),
        "book": ItemFactory.create(category=books),
        "acme": ItemFactory.create(category=books, attributes={"brand": "Acme"}),
    }


def apply_ids(*item_ids: int, section: str = HOME, k: int = 10, now: Any = None) -> list[int]:
    candidates = ranked(*item_ids)
    return ids(merchandising_apply(section=section, candidates=candidates, k=k, now=now))


def test_exclude_by_category_includes_subcategories(catalog: dict[str, Any]) -> None:
    MerchandisingRuleFactory.create(category=catalog["comedy"])
    film, romcom, book = catalog["film"].pk, catalog["romcom"].pk, catalog["book"].pk

    assert apply_ids(romcom, film, book) == [film, book]


def test_exclude_by_attribute_and_boost_by_category(catalog: dict[str, Any]) -> None:
    MerchandisingRuleFactory.create(attribute_key="brand", attribute_value="Acme")
    MerchandisingRuleFactory.create(action=RuleAction.BOOST, category=catalog["books"], strength=5)
    film, romcom, book, acme = (catalog[key].pk for key in ("film", "romcom", "book", "acme"))

    assert apply_ids(film, romcom, acme, book) == [book, film, romcom]


def test_pins_from_the_database_skip_inactive_items(catalog: dict[str, Any]) -> None:
    hidden = ItemFactory.create(is_active=False)
    MerchandisingRuleFactory.create(action=RuleAction.PIN, item=catalog["book"], position=1)
    MerchandisingRuleFactory.create(action=RuleAction.PIN, item=hidden, position=2)

    assert apply_ids(catalog["film"].pk) == [catalog["book"].pk, catalog["film"].pk]


@pytest.mark.parametrize(
    ("starts", "ends", "applies"),
    [
        (timedelta(days=1), None, False),  # not started
        (None, timedelta(days=-1), False),  # expired
        (timedelta(days=-1), timedelta(days=1), True),  # live
    ],
)
def test_schedule(
    item: Any, starts: timedelta | None, ends: timedelta | None, applies: bool
) -> None:
    now = timezone.now()
    MerchandisingRuleFactory.create(
        item=item,
        starts_at=None if starts is None else now + starts,
        ends_at=None if ends is None else now + ends,
    )

    assert apply_ids(item.pk, 999, now=now) == ([999] if applies else [item.pk, 999])


def test_inactive_rules_do_nothing(item: Any) -> None:
    MerchandisingRuleFactory.create(item=item, is_active=False)

    assert apply_ids(item.pk) == [item.pk]


def test_section_rules_apply_to_their_section_and_every_section_rules_to_all() -> None:
    home_only, everywhere, other = ItemFactory.create_batch(3)
    MerchandisingRuleFactory.create(item=home_only, placement=HOME)
    MerchandisingRuleFactory.create(item=everywhere)
    candidates = (home_only.pk, everywhere.pk, other.pk)

    assert apply_ids(*candidates, section=HOME) == [other.pk]
    assert apply_ids(*candidates, section=Section.SIMILAR) == [home_only.pk, other.pk]


def test_priority_decides_between_pins_of_one_position() -> None:
    low, high, candidate = ItemFactory.create_batch(3)
    MerchandisingRuleFactory.create(action=RuleAction.PIN, item=low, position=1, priority=1)
    MerchandisingRuleFactory.create(action=RuleAction.PIN, item=high, position=1, priority=2)

    assert apply_ids(candidate.pk) == [high.pk, low.pk, candidate.pk]


def test_no_live_rule_costs_no_query(django_assert_num_queries: Any, item: Any) -> None:
    MerchandisingRuleFactory.create(item=item, placement=Section.SIMILAR)
    apply_ids(item.pk)  # loads the rules once

    with django_assert_num_queries(0):
        assert apply_ids(item.pk, 2, 2, 3, k=2) == [item.pk, 2]


def test_live_rules_cost_at_most_two_queries(
    django_assert_max_num_queries: Any, django_assert_num_queries: Any, catalog: dict[str, Any]
) -> None:
    MerchandisingRuleFactory.create(category=catalog["comedy"])
    MerchandisingRuleFactory.create(action=RuleAction.PIN, item=catalog["book"], position=1)
    candidates = [catalog[key].pk for key in ("film", "romcom", "acme")]

    with django_assert_max_num_queries(2):
        first = apply_ids(*candidates)
    with django_assert_num_queries(1):  # the rules are cached now
        second = apply_ids(*candidates)

    assert first == second == [catalog["book"].pk, catalog["film"].pk, catalog["acme"].pk]


def test_saving_or_deleting_a_rule_clears_the_cache(item: Any) -> None:
    assert apply_ids(item.pk) == [item.pk]

    rule = MerchandisingRuleFactory.create(item=item)
    assert apply_ids(item.pk) == []

    rule.delete()
    assert apply_ids(item.pk) == [item.pk]


def test_moving_a_category_clears_the_cache(catalog: dict[str, Any]) -> None:
    MerchandisingRuleFactory.create(category=catalog["films"])
    assert apply_ids(catalog["book"].pk) == [catalog["book"].pk]

    catalog["books"].parent = catalog["films"]
    catalog["books"].save()
    assert apply_ids(catalog["book"].pk) == []


def price_relations(item_ids: Collection[int]) -> dict[int, str]:
    """Stands in for the scraper's competitor prices: even pks are cheaper."""
    return {pk: "cheaper" if pk % 2 == 0 else "pricier" for pk in item_ids}


def test_price_rules_use_the_configured_price_relations(settings: Any) -> None:
    odd, even = sorted(ItemFactory.create_batch(2), key=lambda i: i.pk % 2, reverse=True)
    MerchandisingRuleFactory.create(price_relation="pricier")

    assert apply_ids(odd.pk, even.pk) == [odd.pk, even.pk]  # no price facts: no match

    settings.RECOMMENDER_PRICE_RELATIONS = f"{__name__}.price_relations"
    assert apply_ids(odd.pk, even.pk) == [even.pk]


# --- the model ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "wrong_field"),
    [
        ({"action": "pin", "position": 1}, "item"),
        ({"action": "pin", "with_item": True}, "position"),
        ({"action": "pin", "with_item": True, "position": 1, "attribute_key": "a",
          "attribute_value": "b"}, "attribute_key"),
        ({"action": "pin", "with_item": True, "position": 1, "price_relation": "cheaper"},
         "price_relation"),
        ({"action": "exclude"}, "item"),
        ({"action": "exclude", "with_item": True, "position": 2}, "position"),
        ({"action": "boost", "with_item": True}, "item"),
        ({"action": "bury"}, "category"),
        ({"action": "exclude", "attribute_key": "brand"}, "attribute_value"),
        ({"action": "exclude", "attribute_value": "Acme", "price_relation": "cheaper"},
         "attribute_key"),
        ({"action": "exclude", "with_item": True, "starts_at": NOW, "ends_at": NOW},
         "ends_at"),
    ],
)  # fmt: skip
def test_bad_rules_fail_clean_on_the_wrong_field_and_the_database_refuses_them(
    item: Any, fields: dict[str, Any], wrong_field: str
) -> None:
    fields = dict(fields)
    rule = MerchandisingRule(name="bad", item=item if fields.pop("with_item", False) else None)
    for name, value in fields.items():
        setattr(rule, name, value)

    with pytest.raises(ValidationError) as error:
        rule.full_clean()
    assert list(error.value.message_dict) == [wrong_field]

    with pytest.raises(IntegrityError), transaction.atomic():
        rule.save()


@pytest.mark.parametrize(("field", "value"), [("position", 0), ("strength", 0)])
def test_numbers_start_at_one(item: Any, field: str, value: int) -> None:
    rule = MerchandisingRule(name="pin", action="pin", item=item, position=1)
    setattr(rule, field, value)

    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        rule.full_clean()


def test_summary_says_what_the_rule_does(catalog: dict[str, Any]) -> None:
    film = ItemFactory.create(title="Toy Story")
    ends = datetime(2026, 12, 24, tzinfo=UTC)
    pin_rule = MerchandisingRule(action="pin", item=film, position=1, placement=HOME, ends_at=ends)
    boost = MerchandisingRule(
        action="boost", category=catalog["comedy"], attribute_key="brand", attribute_value="Acme"
    )

    assert pin_rule.summary() == "Pin 'Toy Story' at #1 on home_top_picks, until 2026-12-24"
    assert boost.summary() == "Boost items in 'Comedy' with brand=Acme by 3 places on every section"


# --- the admin ------------------------------------------------------------------------


def test_admin_changelist_and_add_form_render(admin_client: Any, item: Any) -> None:
    MerchandisingRuleFactory.create(name="Hide it", item=item)
    changelist = reverse("admin:recommender_merchandisingrule_changelist")

    listing = admin_client.get(changelist, {"live": "yes"})
    add_form = admin_client.get(reverse("admin:recommender_merchandisingrule_add"))

    assert listing.status_code == 200
    assert f"Exclude &#x27;{item.title}&#x27; on every section" in listing.text
    assert add_form.status_code == 200
    assert "admin-autocomplete" in add_form.text
    assert "moves matching items up" in add_form.text


def test_admin_shows_the_error_of_an_invalid_rule(admin_client: Any) -> None:
    response = admin_client.post(
        reverse("admin:recommender_merchandisingrule_add"),
        {"name": "Pin nothing", "action": "pin", "placement": HOME, "position": "1",
         "strength": "3", "priority": "0", "is_active": "on"},
    )  # fmt: skip

    assert response.status_code == 200
    assert "A pin needs the item to pin." in response.text
    assert not MerchandisingRule.objects.exists()


def test_admin_deactivate_action_takes_effect_at_once(admin_client: Any, item: Any) -> None:
    rule = MerchandisingRuleFactory.create(item=item)
    assert apply_ids(item.pk) == []

    admin_client.post(
        reverse("admin:recommender_merchandisingrule_changelist"),
        {"action": "deactivate", "_selected_action": [rule.pk]},
    )

    assert apply_ids(item.pk) == [item.pk]


def test_serving_failures_admin_is_read_only(admin_client: Any) -> None:
    ServingFailure.objects.create(
        day=NOW.date(), placement=HOME, reason="timeout", count=3, last_at=NOW, last_error="slow"
    )

    listing = admin_client.get(reverse("admin:recommender_servingfailure_changelist"))
    add = admin_client.get(reverse("admin:recommender_servingfailure_add"))

    assert listing.status_code == 200
    assert "timeout" in listing.text
    assert add.status_code == 403
