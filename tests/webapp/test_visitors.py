"""Visitor services: login merge without loss or duplication, export, erasure."""

import pytest
from django.core.cache import cache

from tests.factories import InteractionFactory, UserFactory, VisitorFactory
from webapp.models import Interaction, Visitor
from webapp.services.visitors import (
    user_agent_is_bot,
    visitor_attach_to_user,
    visitor_cache_key,
    visitor_erase,
    visitor_export,
    visitor_resolve,
)

pytestmark = pytest.mark.django_db


def test_first_login_adopts_the_anonymous_visitor() -> None:
    anonymous = VisitorFactory.create()
    InteractionFactory.create_batch(2, visitor=anonymous)
    user = UserFactory.create()

    canonical = visitor_attach_to_user(visitor=anonymous, user=user)

    assert canonical.pk == anonymous.pk
    assert canonical.user == user
    assert Interaction.objects.filter(visitor=canonical).count() == 2


def test_login_on_new_device_moves_history_once() -> None:
    user = UserFactory.create()
    account_visitor = VisitorFactory.create(user=user)
    InteractionFactory.create(visitor=account_visitor)
    device = VisitorFactory.create()
    InteractionFactory.create_batch(3, visitor=device)

    canonical = visitor_attach_to_user(visitor=device, user=user)
    again = visitor_attach_to_user(visitor=device, user=user)

    assert canonical.pk == again.pk == account_visitor.pk
    assert Interaction.objects.filter(visitor=canonical).count() == 4
    assert Interaction.objects.count() == 4
    device.refresh_from_db()
    assert device.merged_into_id == account_visitor.pk
    assert visitor_resolve(key=device.key) == account_visitor


def test_another_accounts_visitor_is_never_merged() -> None:
    other = VisitorFactory.create(user=UserFactory.create())
    InteractionFactory.create(visitor=other)
    user = UserFactory.create()

    canonical = visitor_attach_to_user(visitor=other, user=user)

    assert canonical.pk != other.pk
    assert Interaction.objects.filter(visitor=other).count() == 1


def test_export_includes_merged_history() -> None:
    user = UserFactory.create()
    canonical = VisitorFactory.create(user=user)
    InteractionFactory.create(visitor=canonical)
    device = VisitorFactory.create()
    InteractionFactory.create(visitor=device)
    visitor_attach_to_user(visitor=device, user=user)

    data = visitor_export(visitor=canonical)

    assert data["visitor"]["user"] == user.username
    assert len(data["events"]) == 2


def test_erase_deletes_events_visitors_and_caches() -> None:
    visitor = VisitorFactory.create()
    InteractionFactory.create_batch(3, visitor=visitor)
    keep = InteractionFactory.create()
    cache.set(visitor_cache_key(visitor.key, "recommendations"), ["x"])

    counts = visitor_erase(visitor=visitor)

    assert counts == {"visitors": 1, "events": 3, "exposures": 0}
    assert not Visitor.objects.filter(pk=visitor.pk).exists()
    assert cache.get(visitor_cache_key(visitor.key, "recommendations")) is None
    assert Interaction.objects.filter(pk=keep.pk).exists()


@pytest.mark.parametrize(
    ("user_agent", "is_bot"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("python-requests/2.32", True),
        ("", True),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", False),
    ],
)
def test_bot_user_agents(user_agent: str, is_bot: bool) -> None:
    assert user_agent_is_bot(user_agent) is is_bot


def test_export_includes_the_segment_profile_with_app_context() -> None:
    from webapp.segments.models import VisitorProfile

    visitor = VisitorFactory.create()
    VisitorProfile.objects.create(visitor=visitor, context={"activity": "high"}, visit_count=3)

    data = visitor_export(visitor=visitor)

    assert data["profiles"][0]["context"] == {"activity": "high"}
    assert data["profiles"][0]["visit_count"] == 3
