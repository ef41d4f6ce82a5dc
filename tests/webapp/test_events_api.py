"""POST /api/events/: validation, idempotency, who may write, bots and rate limits."""

import json
import threading
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import InteractionFactory, ItemFactory, UserFactory, VisitorFactory
from webapp.experiments.selectors import experiments_running_cached
from webapp.middleware import visitor_signed_token
from webapp.models import EventType, Interaction, Visitor
from webapp.services.interactions import IngestStatus, ValidatedEvent, interactions_ingest

pytestmark = pytest.mark.django_db

URL = reverse("events")
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
SAME_ORIGIN: dict[str, Any] = {"HTTP_ORIGIN": "http://testserver", "HTTP_USER_AGENT": BROWSER_UA}


def event(**fields: Any) -> dict[str, Any]:
    """A valid API-key event; `fields` override (None removes a field)."""
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "visitor": str(uuid.uuid4()),
        "type": "view",
        "item": "sku-known",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def post(client: APIClient, body: Any, **extra: Any) -> Any:
    return client.post(URL, body, format="json", **extra)


def beacon_post(
    client: APIClient, visitor: Visitor, events: list[dict[str, Any]], **extra: Any
) -> Any:
    headers = {**SAME_ORIGIN, **extra}
    body = {"token": visitor_signed_token(visitor), "events": events}
    return client.post(URL, body, format="json", **headers)


@pytest.fixture
def known_item() -> Any:
    return ItemFactory.create(external_id="sku-known")


@pytest.fixture
def fresh_window() -> None:
    """Rate-limit tests count within one minute: don't start just before it rolls over."""
    left = 60 - time.time() % 60
    if left < 5:
        time.sleep(left + 0.1)


# --- API-key clients -------------------------------------------------------------------


def test_valid_batch_is_stored_with_all_fields(keyed_client: APIClient, known_item: Any) -> None:
    existing = VisitorFactory.create()
    new_key = uuid.uuid4()
    full = event(
        visitor=str(existing.key),
        type="purchase",
        value=19.99,
        session_id="s-1",
        timestamp="2025-05-01T12:00:00+02:00",
        placement="checkout",
        context={"page": "/checkout/", "n": 2},
    )
    search = event(visitor=str(new_key), type="search", item=None, query="star wars")

    response = post(keyed_client, [full, search])

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "accepted": 2,
        "rejected": 0,
        "duplicates": 0,
        "results": [
            {"index": 0, "status": "accepted", "event_id": full["event_id"], "errors": {}},
            {"index": 1, "status": "accepted", "event_id": search["event_id"], "errors": {}},
        ],
    }
    purchase = Interaction.objects.get(event_id=full["event_id"])
    assert purchase.visitor == existing
    assert purchase.item == known_item
    assert purchase.event_type == EventType.PURCHASE
    assert purchase.value == Decimal("19.99")
    assert purchase.session_id == "s-1"
    assert purchase.timestamp.isoformat() == "2025-05-01T10:00:00+00:00"
    assert purchase.placement == "checkout"
    assert purchase.context == {"page": "/checkout/", "n": 2}
    assert purchase.is_bot is False
    searched = Interaction.objects.get(event_id=search["event_id"])
    assert searched.visitor.key == new_key  # unknown visitor keys are created
    assert searched.item is None
    assert searched.query == "star wars"
    assert abs(searched.timestamp - timezone.now()) < timedelta(seconds=30)


def test_events_of_a_merged_visitor_go_to_the_visitor_it_was_merged_into(
    keyed_client: APIClient, known_item: Any
) -> None:
    target = VisitorFactory.create()
    merged = VisitorFactory.create(merged_into=target)

    response = post(keyed_client, [event(visitor=str(merged.key))])

    assert response.status_code == 200
    assert Interaction.objects.get().visitor == target


def test_object_form_is_accepted_from_api_key_clients_too(
    keyed_client: APIClient, known_item: Any
) -> None:
    response = post(keyed_client, {"events": [event()]})

    assert response.status_code == 200
    assert Interaction.objects.count() == 1


BAD_EVENTS = [
    pytest.param({"type": "bogus"}, "type", "is not a valid choice", id="unknown-type"),
    pytest.param({"type": None}, "type", "required", id="no-type"),
    pytest.param({"visitor": None}, "visitor", "required", id="no-visitor"),
    pytest.param({"visitor": "not-a-uuid"}, "visitor", "valid UUID", id="bad-visitor"),
    pytest.param({"event_id": "nope"}, "event_id", "valid UUID", id="bad-event-id"),
    pytest.param({"item": None}, "item", "Required for view", id="view-without-item"),
    pytest.param({"item": "sku-missing"}, "item", "Unknown item", id="unknown-item"),
    pytest.param({"item": "x" * 129}, "item", "128", id="item-too-long"),
    pytest.param({"type": "rating"}, "value", "Required for rating", id="rating-no-value"),
    pytest.param({"type": "rating", "value": 11}, "value", "between 0 and 10", id="rating-11"),
    pytest.param({"type": "rating", "value": -1}, "value", "between 0 and 10", id="rating-neg"),
    pytest.param({"type": "purchase", "value": -5}, "value", "negative", id="negative-price"),
    pytest.param({"value": "abc"}, "value", "valid number", id="value-not-number"),
    pytest.param({"value": 1.234}, "value", "decimal places", id="value-3-decimals"),
    pytest.param({"type": "search", "item": None}, "query", "Required for search", id="no-query"),
    pytest.param({"query": "q" * 501}, "query", "500", id="query-too-long"),
    pytest.param({"session_id": "s" * 65}, "session_id", "64", id="session-too-long"),
    pytest.param({"placement": "p" * 65}, "placement", "64", id="placement-too-long"),
    pytest.param({"timestamp": "2025-05-01T12:00:00"}, "timestamp", "timezone", id="naive"),
    pytest.param({"timestamp": "yesterday"}, "timestamp", "format", id="not-a-date"),
    pytest.param({"timestamp": "1994-12-31T23:59:59Z"}, "timestamp", "1995", id="too-old"),
    pytest.param({"context": ["a"]}, "context", "JSON object", id="context-list"),
    pytest.param({"context": {"x": "y" * 4100}}, "context", "4096", id="context-too-big"),
    pytest.param({"context": {"x": ["a\x00"]}}, "context", "NUL", id="context-nul"),
    pytest.param({"query": "a\x00b"}, "query", "Null characters", id="query-nul"),
]


@pytest.mark.parametrize(("override", "field", "reason"), BAD_EVENTS)
def test_invalid_event_is_rejected_and_the_valid_ones_stored(
    keyed_client: APIClient, known_item: Any, override: dict[str, Any], field: str, reason: str
) -> None:
    good, bad = event(), {**event(), **override}
    bad = {k: v for k, v in bad.items() if v is not None}

    response = post(keyed_client, [good, bad])

    assert response.status_code == 207, response.json()
    body = response.json()
    assert (body["accepted"], body["rejected"], body["duplicates"]) == (1, 1, 0)
    assert body["results"][0]["status"] == "accepted"
    rejected = body["results"][1]
    assert rejected["index"] == 1
    assert rejected["status"] == "rejected"
    assert reason in " ".join(rejected["errors"][field]), rejected["errors"]
    assert list(Interaction.objects.values_list("event_id", flat=True)) == [
        uuid.UUID(good["event_id"])
    ]


def test_timestamp_in_the_future_is_rejected(keyed_client: APIClient, known_item: Any) -> None:
    later = (timezone.now() + timedelta(minutes=10)).isoformat()

    response = post(keyed_client, [event(timestamp=later)])

    assert response.status_code == 207
    assert "5 minutes" in response.json()["results"][0]["errors"]["timestamp"][0]
    assert not Interaction.objects.exists()


def test_an_element_that_is_not_an_object_is_rejected(
    keyed_client: APIClient, known_item: Any
) -> None:
    response = post(keyed_client, [5, event()])

    assert response.status_code == 207
    assert response.json()["results"][0]["errors"]["non_field_errors"]
    assert Interaction.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param('[{"type": "view",', "JSON parse error", id="malformed-json"),
        pytest.param('{"type": "view"}', "JSON list of events", id="object-not-list"),
        pytest.param('"view"', "JSON list of events", id="string"),
        pytest.param('{"events": {"type": "view"}}', "JSON list of events", id="events-not-list"),
        pytest.param("[]", "empty", id="empty"),
        pytest.param('{"events": []}', "empty", id="empty-object-form"),
        pytest.param(json.dumps([{"type": "view"}] * 501), "at most 500", id="too-many"),
        pytest.param("[" * 100_000, "nested too deeply", id="nested-too-deep"),
    ],
)
def test_bad_body_is_400_and_stores_nothing(
    keyed_client: APIClient, known_item: Any, body: str, message: str
) -> None:
    response = keyed_client.post(URL, body, content_type="application/json")

    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not Interaction.objects.exists()


def test_body_over_the_size_limit_is_413(keyed_client: APIClient, known_item: Any) -> None:
    big = [event(context={"pad": "x" * 3000}) for _ in range(200)]  # about 650 KB

    response = post(keyed_client, big)

    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]
    assert not Interaction.objects.exists()


def test_a_retried_batch_is_all_duplicates(keyed_client: APIClient, known_item: Any) -> None:
    batch = [event(), event(type="click"), event(event_id=None)]
    assert post(keyed_client, batch).json()["accepted"] == 3

    response = post(keyed_client, batch[:2])

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"], body["duplicates"]) == (0, 0, 2)
    assert {r["status"] for r in body["results"]} == {"duplicate"}
    assert Interaction.objects.count() == 3


def test_a_repeated_event_id_within_a_batch_counts_once(
    keyed_client: APIClient, known_item: Any
) -> None:
    once = event()

    response = post(keyed_client, [once, {**once, "type": "click"}, event()])

    body = response.json()
    assert response.status_code == 200
    assert [r["status"] for r in body["results"]] == ["accepted", "duplicate", "accepted"]
    assert Interaction.objects.get(event_id=once["event_id"]).event_type == "view"
    assert Interaction.objects.count() == 2


def test_batch_of_100_takes_a_bounded_number_of_queries(
    keyed_client: APIClient, django_assert_max_num_queries: Any
) -> None:
    items = ItemFactory.create_batch(20)
    known = VisitorFactory.create_batch(5)
    keys = [str(v.key) for v in known] + [str(uuid.uuid4()) for _ in range(20)]
    batch = [
        event(visitor=keys[i % len(keys)], item=items[i % len(items)].external_id)
        for i in range(100)
    ]

    experiments_running_cached()  # a per-process snapshot, loaded once a minute at most
    with django_assert_max_num_queries(10):
        response = post(keyed_client, batch)

    assert response.json()["accepted"] == 100
    assert Interaction.objects.count() == 100


def test_bot_visitor_and_bot_user_agent_in_context_are_flagged(
    keyed_client: APIClient, known_item: Any
) -> None:
    bot = VisitorFactory.create(is_bot=True)
    batch = [
        event(visitor=str(bot.key)),
        event(context={"user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}),
        event(context={"user_agent": BROWSER_UA}),
    ]

    # The client's own (server) User-Agent does not make its users bots.
    post(keyed_client, batch, HTTP_USER_AGENT="python-requests/2.32")

    flags = dict(Interaction.objects.values_list("event_id", "is_bot"))
    assert [flags[uuid.UUID(e["event_id"])] for e in batch] == [True, True, False]


# --- Who may write ----------------------------------------------------------------------


def test_without_api_key_or_token_is_403(api_client: APIClient, known_item: Any) -> None:
    response = post(api_client, [event()], **SAME_ORIGIN)

    assert response.status_code == 403
    assert "X-API-Key" in response.json()["detail"]
    assert not Interaction.objects.exists()


@pytest.mark.parametrize("key", ["nope", "abcdefgh.wrongsecret", ""])
def test_invalid_api_key_is_403(api_client: APIClient, api_key: str, key: str) -> None:
    prefix = api_key.partition(".")[0]
    header = key.replace("abcdefgh", prefix)
    api_client.credentials(HTTP_X_API_KEY=header)

    response = post(api_client, [event()])

    assert response.status_code == 403
    assert not Interaction.objects.exists()


def test_revoked_api_key_is_403(api_client: APIClient, known_item: Any) -> None:
    from rest_framework_api_key.models import APIKey

    record, key = APIKey.objects.create_key(name="old client")
    record.revoked = True
    record.save()
    api_client.credentials(HTTP_X_API_KEY=key)

    assert post(api_client, [event()]).status_code == 403


def test_beacon_with_valid_token_stores_impressions_and_clicks(
    api_client: APIClient, known_item: Any
) -> None:
    visitor = VisitorFactory.create()
    events = [
        event(visitor=None, type="impression", placement="home", context={"page": "/"}),
        event(visitor=str(visitor.key), type="click", placement="home"),
        event(visitor=None, type="add_to_cart", placement="item_page"),
    ]

    response = beacon_post(api_client, visitor, events)

    assert response.status_code == 200, response.json()
    rows = Interaction.objects.order_by("event_type")
    assert [(r.event_type, r.visitor_id, r.is_bot) for r in rows] == [
        ("add_to_cart", visitor.pk, False),
        ("click", visitor.pk, False),
        ("impression", visitor.pk, False),
    ]


def test_beacon_needs_no_csrf_token(known_item: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory.create())
    visitor = VisitorFactory.create()

    response = beacon_post(client, visitor, [event(visitor=None, type="impression")])

    assert response.status_code == 200


def test_beacon_may_send_text_plain(api_client: APIClient, known_item: Any) -> None:
    visitor = VisitorFactory.create()
    body = {"token": visitor_signed_token(visitor), "events": [event(visitor=None, type="click")]}

    response = api_client.post(URL, json.dumps(body), content_type="text/plain", **SAME_ORIGIN)

    assert response.status_code == 200
    assert Interaction.objects.get().visitor == visitor


def test_beacon_cannot_write_for_another_visitor(api_client: APIClient, known_item: Any) -> None:
    visitor, other = VisitorFactory.create(), VisitorFactory.create()
    events = [event(visitor=str(other.key), type="click"), event(visitor=None, type="click")]

    response = beacon_post(api_client, visitor, events)

    assert response.status_code == 207
    errors = response.json()["results"][0]["errors"]
    assert errors == {"visitor": ["The beacon may only send events for its token's visitor."]}
    assert list(Interaction.objects.values_list("visitor", flat=True)) == [visitor.pk]


@pytest.mark.parametrize("event_type", ["purchase", "view", "rating", "search"])
def test_beacon_cannot_send_other_event_types(
    api_client: APIClient, known_item: Any, event_type: str
) -> None:
    visitor = VisitorFactory.create()
    bad = event(visitor=None, type=event_type, value=5, query="q")

    response = beacon_post(api_client, visitor, [bad])

    assert response.status_code == 207
    assert (
        "only send impression, click, add_to_cart"
        in (response.json()["results"][0]["errors"]["type"][0])
    )
    assert not Interaction.objects.exists()


def test_beacon_of_a_merged_visitor_writes_to_the_visitor_it_was_merged_into(
    api_client: APIClient, known_item: Any
) -> None:
    target = VisitorFactory.create()
    merged = VisitorFactory.create(merged_into=target)

    response = beacon_post(api_client, merged, [event(visitor=str(merged.key), type="click")])

    assert response.status_code == 200
    assert Interaction.objects.get().visitor == target


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"HTTP_ORIGIN": "https://evil.example"}, id="cross-origin"),
        pytest.param({"HTTP_ORIGIN": "https://testserver"}, id="other-scheme"),
        pytest.param({"HTTP_ORIGIN": "null"}, id="null-origin"),
        pytest.param({"HTTP_ORIGIN": "", "HTTP_REFERER": "https://evil.example/x"}, id="referer"),
        pytest.param({"HTTP_ORIGIN": ""}, id="neither"),
    ],
)
def test_beacon_from_another_origin_is_403(
    api_client: APIClient, known_item: Any, headers: dict[str, str]
) -> None:
    visitor = VisitorFactory.create()

    response = beacon_post(api_client, visitor, [event(visitor=None, type="click")], **headers)

    assert response.status_code == 403
    assert "from this site" in response.json()["detail"]
    assert not Interaction.objects.exists()


def test_beacon_with_same_origin_referer_and_no_origin_works(
    api_client: APIClient, known_item: Any
) -> None:
    visitor = VisitorFactory.create()
    headers = {"HTTP_ORIGIN": "", "HTTP_REFERER": "http://testserver/items/sku-known/"}

    response = beacon_post(api_client, visitor, [event(visitor=None, type="click")], **headers)

    assert response.status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "",
        # Signed, but with another salt: a session value is no beacon token.
        pytest.param("SIGNED_OTHER_SALT", id="other-salt"),
        pytest.param("ERASED_VISITOR", id="erased-visitor"),
    ],
)
def test_beacon_with_bad_token_is_403(api_client: APIClient, known_item: Any, token: str) -> None:
    from django.core import signing

    if token == "SIGNED_OTHER_SALT":
        token = signing.dumps(str(uuid.uuid4()), salt="other")
    elif token == "ERASED_VISITOR":
        gone = VisitorFactory.create()
        token = visitor_signed_token(gone)
        gone.delete()
    body = {"token": token, "events": [event(visitor=None, type="click")]}

    response = api_client.post(URL, body, format="json", **SAME_ORIGIN)

    assert response.status_code == 403
    assert not Interaction.objects.exists()


def test_beacon_from_a_bot_user_agent_is_stored_flagged(
    api_client: APIClient, known_item: Any
) -> None:
    visitor = VisitorFactory.create()
    events = [event(visitor=None, type="impression")]

    beacon_post(
        api_client, visitor, events, HTTP_USER_AGENT="Mozilla/5.0 (compatible; bingbot/2.0)"
    )

    assert Interaction.objects.get().is_bot is True


# --- Rate limits ------------------------------------------------------------------------


def test_beacon_over_the_limit_is_429_with_retry_after(
    api_client: APIClient, known_item: Any, settings: Any, fresh_window: None
) -> None:
    settings.RATE_LIMIT_EVENTS_PER_MINUTE = 2
    visitor = VisitorFactory.create()

    def two_clicks() -> list[dict[str, Any]]:
        return [event(visitor=None, type="click"), event(visitor=None, type="click")]

    codes = [beacon_post(api_client, visitor, two_clicks()).status_code for _ in range(2)]
    response = beacon_post(api_client, visitor, [event(visitor=None, type="click")])

    assert codes == [200, 200]  # requests are counted, not events
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "at most 2 a minute" in response.json()["detail"]
    assert Interaction.objects.count() == 4


def test_beacon_is_limited_per_client_ip_across_visitors(
    api_client: APIClient, known_item: Any, settings: Any, fresh_window: None
) -> None:
    settings.RATE_LIMIT_EVENTS_PER_MINUTE = 2
    visitors = VisitorFactory.create_batch(3)
    click = [event(visitor=None, type="click")]

    codes = [
        beacon_post(api_client, v, click, REMOTE_ADDR="10.0.0.9").status_code for v in visitors
    ]
    other_ip = beacon_post(api_client, visitors[2], click, REMOTE_ADDR="10.0.0.10")

    assert codes == [200, 200, 429]
    assert other_ip.status_code == 200


def test_api_key_over_the_limit_is_429(
    keyed_client: APIClient, known_item: Any, settings: Any, fresh_window: None
) -> None:
    settings.RATE_LIMIT_API_KEY_PER_MINUTE = 1

    first = post(keyed_client, [event()])
    second = post(keyed_client, [event()])

    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second["Retry-After"]) >= 1
    assert Interaction.objects.count() == 1


# --- The service under concurrent duplicates ----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_event_id_stored_concurrently_is_a_duplicate_not_an_error() -> None:
    """Another transaction inserts the same event_id after our look-up: the unique
    constraint decides, and the event comes back as a duplicate."""
    item = ItemFactory.create()
    visitor = VisitorFactory.create()
    event_id = uuid.uuid4()
    inserted, release = threading.Event(), threading.Event()

    def other_request() -> None:
        try:
            with transaction.atomic():
                InteractionFactory.create(event_id=event_id, visitor=visitor, item=item)
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    def ingest() -> Any:
        try:
            return interactions_ingest(
                events=[
                    ValidatedEvent(
                        event_type="click",
                        visitor_key=visitor.key,
                        timestamp=timezone.now(),
                        event_id=event_id,
                        item_external_id=item.external_id,
                    )
                ]
            )
        finally:
            connection.close()

    other = threading.Thread(target=other_request)
    other.start()
    assert inserted.wait(10)
    result: list[Any] = []
    ours = threading.Thread(target=lambda: result.append(ingest()))
    ours.start()
    _wait_for_a_lock_wait()  # our INSERT now waits on the other transaction's row
    release.set()
    other.join(10)
    ours.join(10)

    assert result[0].outcomes[0].status == IngestStatus.DUPLICATE
    assert Interaction.objects.filter(event_id=event_id).count() == 1


def _wait_for_a_lock_wait(timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second insert never waited on the first")
