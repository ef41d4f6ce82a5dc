"""VisitorMiddleware: one query resolves a logged-in visitor and their account, safely."""

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import UserFactory
from webapp.middleware import visitor_signed_token
from webapp.models import Visitor

pytestmark = pytest.mark.django_db

# An extra parameter keeps the call on the full stack (recommender.fast_path passes it on).
URL = "/api/recommendations/?placement=home&k=2&utm_source=test"


def logged_in_client(user: Any) -> tuple[Client, Visitor]:
    client = Client()
    client.cookies[settings.CONSENT_COOKIE_NAME] = "yes"
    client.force_login(user)
    client.get("/")  # the first page attaches the account's visitor and sets its cookie
    visitor = Visitor.objects.get(user=user)
    assert client.cookies[settings.VISITOR_COOKIE_NAME].value == visitor_signed_token(visitor)
    return client, visitor


def test_the_account_comes_with_the_visitor_row_not_a_query_of_its_own(
    django_assert_num_queries: Any, settings: Any
) -> None:
    settings.RECOMMENDER_MODEL_REFRESH_SECONDS = 60.0
    client, _ = logged_in_client(UserFactory.create())
    client.get(URL)  # fills the cache

    with django_assert_num_queries(2) as captured:  # the session, the visitor with its user
        response = client.get(URL)

    assert response.status_code == 200
    sqls = [query["sql"] for query in captured.captured_queries]
    assert not any(sql.startswith('SELECT "auth_user"') for sql in sqls)
    assert any('JOIN "auth_user"' in sql for sql in sqls)


def test_the_adopted_account_is_the_request_user(client: Client) -> None:
    user = UserFactory.create()
    logged, _ = logged_in_client(user)

    response = logged.get("/")

    assert response.wsgi_request.user == user
    assert response.wsgi_request.visitor.user_id == user.pk  # type: ignore[attr-defined]


def test_a_password_change_elsewhere_logs_the_old_session_out() -> None:
    user = UserFactory.create()
    client, visitor = logged_in_client(user)
    user.set_password("a-new-password-123")
    user.save()

    response = client.get("/")

    assert not response.wsgi_request.user.is_authenticated
    assert response.wsgi_request.visitor.pk != visitor.pk  # type: ignore[attr-defined]
    assert response.wsgi_request.visitor.user_id is None  # type: ignore[attr-defined]


def test_a_deactivated_account_is_not_adopted() -> None:
    user = UserFactory.create()
    client, visitor = logged_in_client(user)
    user.is_active = False
    user.save()

    response = client.get("/")

    assert not response.wsgi_request.user.is_authenticated
    assert response.wsgi_request.visitor.pk != visitor.pk  # type: ignore[attr-defined]


def test_another_account_s_session_never_adopts_this_visitor() -> None:
    owner, other = UserFactory.create(), UserFactory.create()
    _, owners_visitor = logged_in_client(owner)
    client, _ = logged_in_client(other)
    client.cookies[settings.VISITOR_COOKIE_NAME] = visitor_signed_token(owners_visitor)

    response = client.get("/")

    assert response.wsgi_request.user == other
    assert response.wsgi_request.visitor.user_id == other.pk  # type: ignore[attr-defined]
