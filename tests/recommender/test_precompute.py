"""Answers cached without the origin, and precomputed after training so a first call hits."""

import json
from typing import Any

import pytest
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection

from recommender.answers import answer_body, answer_render, answers_precompute
from recommender.budget import statement_timeout, statement_timeout_lifted
from recommender.merchandising import merchandising_rules_cache_clear
from recommender.models import MerchandisingRule
from recommender.shelves import ItemCard, Shelf, ShelfItem
from tests.recommender.conftest import ServingWorld, view
from tests.recommender.test_api import cookie_client
from webapp.models import Visitor

pytestmark = pytest.mark.django_db

URL = "/api/recommendations/"
HOME = {"placement": "home", "k": "3"}


def shelf_of(title: str) -> Shelf:
    card = ItemCard(1, "ext-1", title, "", None, "EUR", None, None)
    shown = ShelfItem(card=card, score=1.0, rank=1, reason="r", source="ease", model_version=1)
    return Shelf(section="top_picks", title="Top", items=(shown,), fallback="")


def test_a_rendered_answer_takes_any_origin_and_survives_tricky_titles() -> None:
    tricky = 'origin-" \\u0000 </script> "url": "x'
    parts = answer_render(placement="home", shelf=shelf_of(tricky))

    body = json.loads(answer_body(parts, "https://shop.example"))
    other = json.loads(answer_body(parts, "http://127.0.0.1:8000"))

    assert len(parts) == 2
    assert body["items"][0]["title"] == tricky
    assert body["items"][0]["url"] == "https://shop.example/i/ext-1/"
    assert other["items"][0]["url"] == "http://127.0.0.1:8000/i/ext-1/"


def test_the_first_call_after_precompute_is_a_hit_with_the_answer_a_miss_gives(
    world: ServingWorld,
) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[1][0])
    view(visitor, world.clusters[1][1])
    computed = cookie_client(visitor).get(URL, HOME)
    caches["recommendations"].clear()

    report = answers_precompute(k=3)
    first = cookie_client(visitor).get(URL, HOME)

    assert computed.headers["X-Recommendations-Cache"] == "miss"
    assert report.visitors == Visitor.objects.filter(generation__gt=0).count() > 0
    assert first.headers["X-Recommendations-Cache"] == "hit"
    assert first.json() == computed.json()
    assert first.headers["Cache-Control"] == computed.headers["Cache-Control"]


def test_a_new_event_or_a_rule_change_makes_the_precomputed_answer_unreachable(
    world: ServingWorld,
) -> None:
    visitor = Visitor.objects.create()
    view(visitor, world.clusters[2][0])
    answers_precompute(k=3)
    assert cookie_client(visitor).get(URL, HOME).headers["X-Recommendations-Cache"] == "hit"

    view(visitor, world.clusters[2][1])
    visitor.refresh_from_db()
    after_event = cookie_client(visitor).get(URL, HOME)
    answers_precompute(k=3)
    MerchandisingRule.objects.create(
        name="pin", action="pin", item=world.clusters[0][0], position=1
    )
    merchandising_rules_cache_clear()
    after_rule = cookie_client(visitor).get(URL, HOME)

    assert after_event.headers["X-Recommendations-Cache"] == "miss"
    assert after_rule.headers["X-Recommendations-Cache"] == "miss"
    assert after_rule.json()["items"][0]["id"] == world.clusters[0][0].external_id


def test_the_command_fills_a_shared_cache_and_refuses_a_per_process_one(
    world: ServingWorld, settings: Any, capsys: Any
) -> None:
    with pytest.raises(CommandError, match="per process"):
        call_command("precompute_recommendations", verbosity=0)
    shared = {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "platform_cache",
    }
    settings.CACHES = {**settings.CACHES, "recommendations": shared}

    for bad, message in ((["--k", "0"], "between 1 and 50"), (["--limit", "-1"], "0 or more")):
        with pytest.raises(CommandError, match=message):
            call_command("precompute_recommendations", *bad, verbosity=0)
    call_command("precompute_recommendations", "--limit", "5", "--k", "3", verbosity=0)

    out = capsys.readouterr().out
    assert "Precomputed 6 answers (5 visitors and the anonymous one" in out
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM platform_cache WHERE cache_key LIKE %s", ["%recs:api%"]
        )
        assert cursor.fetchone()[0] == 6


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_timeout_is_one_session_setting_for_nested_scopes() -> None:
    def current() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            value: str = cursor.fetchone()[0]
        return value

    before = current()
    with statement_timeout(150):
        with statement_timeout(5000):  # nested: the outer one applies
            inner = current()
        with statement_timeout_lifted():
            lifted = current()
        with pytest.raises(DatabaseError, match="statement timeout"), connection.cursor() as c:
            c.execute("SELECT pg_sleep(1)")
        still = current()

    assert (inner, lifted, still) == ("150ms", before, "150ms")
    assert current() == before
    assert not connection.in_atomic_block


def test_inside_a_transaction_scopes_are_savepoints_and_the_lift_is_local() -> None:
    def current() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            value: str = cursor.fetchone()[0]
        return value

    before = current()
    with statement_timeout(150):
        with statement_timeout_lifted():
            lifted = current()
        inside = current()
        with pytest.raises(DatabaseError), statement_timeout(20), connection.cursor() as c:
            c.execute("SELECT pg_sleep(1)")
        after_timeout = current()  # only the inner savepoint was rolled back

    assert (lifted, inside, after_timeout) == (before, "150ms", "150ms")
    assert current() == before and connection.in_atomic_block
