"""Visitor.generation: database triggers bump it on every write path of the event log."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import InteractionFactory, ItemFactory, UserFactory, VisitorFactory
from webapp.models import Interaction, Visitor
from webapp.services.interactions import interaction_record_view
from webapp.services.visitors import visitor_attach_to_user, visitor_erase

pytestmark = pytest.mark.django_db


def generation(visitor: Visitor) -> int:
    return Visitor.objects.values_list("generation", flat=True).get(pk=visitor.pk)


def test_each_inserted_event_bumps_only_its_own_visitor() -> None:
    visitor, other = VisitorFactory.create(), VisitorFactory.create()

    InteractionFactory.create(visitor=visitor)
    InteractionFactory.create_batch(2, visitor=visitor)

    assert generation(visitor) == 3 and generation(other) == 0


def test_a_bulk_insert_counts_every_row_per_visitor() -> None:
    first, second = VisitorFactory.create(), VisitorFactory.create()
    now = timezone.now()
    rows = [
        Interaction(visitor=v, event_type="view", timestamp=now - timedelta(minutes=n))
        for n, v in enumerate([first, second, first, first])
    ]

    Interaction.objects.bulk_create(rows)

    assert (generation(first), generation(second)) == (3, 1)


def test_deleting_events_changes_the_generation() -> None:
    visitor = VisitorFactory.create()
    InteractionFactory.create_batch(3, visitor=visitor)

    Interaction.objects.filter(visitor=visitor)[:1].get().delete()

    assert generation(visitor) == 4


def test_moving_history_on_login_bumps_both_visitors_but_other_updates_do_not() -> None:
    user = UserFactory.create()
    account = VisitorFactory.create(user=user)
    device = VisitorFactory.create()
    InteractionFactory.create_batch(2, visitor=device)
    Interaction.objects.filter(visitor=device).update(placement="home_trending")
    assert generation(device) == 2  # a change of another column shows nothing new

    canonical = visitor_attach_to_user(visitor=device, user=user)

    assert canonical.pk == account.pk
    assert canonical.generation == generation(account) == 2  # the instance is current too
    assert generation(device) == 4


def test_a_recorded_item_view_updates_the_request_s_visitor_in_memory() -> None:
    visitor, item = VisitorFactory.create(), ItemFactory.create()

    interaction_record_view(visitor=visitor, item=item)

    assert visitor.generation == generation(visitor) == 1


def test_erasing_a_visitor_with_events_works_with_the_triggers() -> None:
    visitor = VisitorFactory.create()
    InteractionFactory.create_batch(2, visitor=visitor)

    visitor_erase(visitor=visitor)

    assert not Interaction.objects.filter(visitor_id=visitor.pk).exists()
