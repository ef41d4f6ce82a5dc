"""The database dataset carries the catalog's item content, cold and inactive items included."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ml.data.dataset import ItemRecord
from ml.selectors import interaction_data_from_database
from tests.factories import CategoryFactory, InteractionFactory, ItemFactory

pytestmark = pytest.mark.django_db


def test_item_content_comes_from_the_catalog(django_assert_num_queries):
    films = CategoryFactory.create(name="Films")
    comedy = CategoryFactory.create(name="Comedy", parent=films)
    watched = ItemFactory.create(
        external_id="watched",
        title="Funny Film",
        description="Laughs.",
        category=comedy,
        attributes={"year": 1999, "lang": "en", "tags": ["a", "b"], "gone": None},
    )
    ItemFactory.create(external_id="cold", title="New Film", category=films)
    InteractionFactory.create(item=watched)

    with django_assert_num_queries(3):
        data = interaction_data_from_database()

    assert data.item_ids == ("watched", "cold")
    assert data.item_content == (
        ItemRecord(
            title="Funny Film",
            categories=("Films", "Comedy"),
            description="Laughs.",
            attributes={"year": "1999", "lang": "en", "tags": '["a", "b"]'},
        ),
        ItemRecord(title="New Film", categories=("Films",), description="A fine thing."),
    )


def test_inactive_items_keep_content_only_when_interacted():
    old = ItemFactory.create(external_id="old", title="Old Film", is_active=False, category=None)
    ItemFactory.create(external_id="retired", is_active=False)
    InteractionFactory.create(item=old, timestamp=timezone.now() - timedelta(days=1))

    data = interaction_data_from_database()

    assert data.item_ids == ("old",)
    assert data.item_content == (ItemRecord(title="Old Film", description="A fine thing."),)
