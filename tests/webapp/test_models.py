"""Model invariants enforced by Postgres itself."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.factories import CategoryFactory, InteractionFactory, ItemFactory, VisitorFactory
from webapp.models import Category, Interaction, Item

pytestmark = pytest.mark.django_db


def test_item_external_id_is_unique() -> None:
    ItemFactory.create(external_id="A-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory.create(external_id="A-1")


@pytest.mark.parametrize(
    ("field", "value"),
    [("list_price", Decimal("-1.00")), ("currency", "usd"), ("currency", "US")],
)
def test_item_rejects_bad_money(field: str, value: object) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory.create(**{field: value})


def test_item_search_vector_is_generated_by_the_database() -> None:
    ItemFactory.create(title="Casablanca", description="Romance in wartime Morocco")
    assert Item.objects.filter(search_vector="morocco").count() == 1
    assert Item.objects.filter(search_vector="casablanca").count() == 1


def test_category_tree_ancestors() -> None:
    root = CategoryFactory.create(name="Movies")
    child = CategoryFactory.create(name="Comedy", parent=root)
    leaf = CategoryFactory.create(name="Romantic comedy", parent=child)
    assert leaf.ancestors() == [root, child]


def test_category_cannot_be_its_own_parent() -> None:
    category = CategoryFactory.create()
    with pytest.raises(IntegrityError), transaction.atomic():
        Category.objects.filter(pk=category.pk).update(parent=category.pk)


def test_interaction_event_id_is_unique_and_optional() -> None:
    first = InteractionFactory.create()
    InteractionFactory.create(event_id=None)
    InteractionFactory.create(event_id=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        InteractionFactory.create(event_id=first.event_id)


@pytest.mark.parametrize(("event_type", "value"), [("rating", None), ("teleport", None)])
def test_interaction_rejects_invalid_rows(event_type: str, value: Decimal | None) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Interaction.objects.create(
            visitor=VisitorFactory.create(),
            event_type=event_type,
            value=value,
            timestamp=timezone.now(),
        )


def test_item_event_survives_item_deletion_without_item() -> None:
    event = InteractionFactory.create()
    assert event.item is not None
    event.item.delete()
    event.refresh_from_db()
    assert event.item is None
