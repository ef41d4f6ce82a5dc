"""Reads on visitors and their interaction history."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from webapp.models import Interaction, Visitor


def visitor_of_user(*, user: AbstractBaseUser | AnonymousUser) -> Visitor | None:
    """The account's canonical visitor, if it has one."""
    if not user.is_authenticated:
        return None
    return Visitor.objects.filter(user_id=user.pk).first()


def visitor_for_account(
    *, request_visitor: Visitor | None, user: AbstractBaseUser | AnonymousUser
) -> Visitor | None:
    """The visitor whose data an account page shows: the request's, else the account's."""
    if request_visitor is not None and request_visitor.user_id == user.pk:
        return request_visitor
    return visitor_of_user(user=user)


def visitor_history(*, visitor: Visitor | None) -> QuerySet[Interaction]:
    """The visitor's events, newest first, with their items."""
    if visitor is None:
        return Interaction.objects.none()
    return (
        Interaction.objects.filter(visitor=visitor)
        .select_related("item")
        .order_by("-timestamp", "-pk")
    )
