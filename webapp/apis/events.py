"""Event ingestion: batches from server-to-server clients (API key) and the site's beacon."""

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ParseError, PermissionDenied, Throttled
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.apis.auth import request_api_key, request_is_same_origin, request_sends_api_key
from webapp.middleware import visitor_key_from_token
from webapp.models import EventType, Visitor
from webapp.services.interactions import IngestStatus, ValidatedEvent, interactions_ingest
from webapp.services.ratelimit import RateLimitResult, ratelimit_hit
from webapp.services.visitors import user_agent_is_bot, visitor_resolve

MAX_BODY_BYTES = 512 * 1024
CONTEXT_MAX_BYTES = 4 * 1024
EARLIEST_TIMESTAMP = datetime(1995, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(minutes=5)
ITEM_EVENT_TYPES = frozenset(
    {
        EventType.IMPRESSION,
        EventType.VIEW,
        EventType.CLICK,
        EventType.ADD_TO_CART,
        EventType.PURCHASE,
        EventType.RATING,
    }
)
BEACON_EVENT_TYPES = (EventType.IMPRESSION, EventType.CLICK, EventType.ADD_TO_CART)
RATING_MIN, RATING_MAX = Decimal(0), Decimal(10)


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"Request body is larger than {MAX_BODY_BYTES} bytes; send smaller batches."
    default_code = "payload_too_large"


class EventsJSONParser(JSONParser):
    """JSON, where absurdly deep nesting is a 400 rather than a RecursionError."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc


class PlainTextJSONParser(EventsJSONParser):
    """JSON sent as text/plain, as some browsers' sendBeacon fallbacks do."""

    media_type = "text/plain"


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 datetime that must name its timezone (no guessing for naive ones)."""

    default_error_messages = {
        "naive": "Give the timezone, e.g. 2025-05-01T12:00:00Z or 2025-05-01T14:00:00+02:00."
    }

    def enforce_timezone(self, value: datetime) -> datetime:
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class EventInputSerializer(serializers.Serializer):
    """One event; each element of a batch is validated on its own."""

    event_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="Client-made UUID; makes retries idempotent."
    )
    visitor = serializers.UUIDField(
        required=False, help_text="Visitor key. Required with an API key; beacon: the token's."
    )
    type = serializers.ChoiceField(choices=EventType.choices)
    item = serializers.CharField(
        required=False, allow_null=True, max_length=128, help_text="The item's external_id."
    )
    value = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        required=False,
        allow_null=True,
        coerce_to_string=False,
        help_text="Rating 0..10 (required for rating); price paid >= 0 for purchase.",
    )
    query = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    session_id = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    timestamp = AwareDateTimeField(
        required=False, help_text="ISO 8601 with timezone; default: when received."
    )
    placement = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    context = serializers.JSONField(  # type: ignore[assignment]  # DRF pops declared fields
        required=False, default=dict, help_text="A JSON object, at most 4 KiB serialized."
    )

    class Meta:
        ref_name = "EventInput"

    def validate_timestamp(self, value: datetime) -> datetime:
        if value < EARLIEST_TIMESTAMP:
            raise serializers.ValidationError("Must not be before 1995-01-01.")
        if value > timezone.now() + MAX_CLOCK_SKEW:
            raise serializers.ValidationError("Must not be more than 5 minutes in the future.")
        return value

    def validate_context(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        if len(json.dumps(value, separators=(",", ":")).encode()) > CONTEXT_MAX_BYTES:
            raise serializers.ValidationError("Must be at most 4096 bytes as JSON.")
        if _has_nul(value):
            # Postgres jsonb cannot store U+0000.
            raise serializers.ValidationError("Must not contain NUL (U+0000) characters.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, str] = {}
        event_type, value = attrs["type"], attrs.get("value")
        if event_type in ITEM_EVENT_TYPES and not attrs.get("item"):
            errors["item"] = f"Required for {event_type} events."
        if event_type == EventType.SEARCH and not attrs.get("query"):
            errors["query"] = "Required for search events."
        if event_type == EventType.RATING:
            if value is None:
                errors["value"] = "Required for rating events."
            elif not RATING_MIN <= value <= RATING_MAX:
                errors["value"] = "A rating must be between 0 and 10."
        if event_type == EventType.PURCHASE and value is not None and value < 0:
            errors["value"] = "The price paid must not be negative."
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class KeyedEventInputSerializer(EventInputSerializer):
    """An event from a server-to-server client, which must say whose it is."""

    visitor = serializers.UUIDField(help_text="Visitor key; unknown keys create the visitor.")

    class Meta:
        ref_name = "KeyedEventInput"


class BeaconBatchSerializer(serializers.Serializer):
    """Schema only: the beacon's body (sendBeacon cannot send headers, so the token is here)."""

    token = serializers.CharField(help_text="The page's pp-beacon-token (signed visitor key).")
    events = EventInputSerializer(many=True)

    class Meta:
        ref_name = "BeaconEventBatch"


class EventResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the batch.")
    status = serializers.ChoiceField(choices=[s.value for s in IngestStatus])
    event_id = serializers.UUIDField(allow_null=True)
    errors = serializers.DictField(  # type: ignore[assignment]  # DRF pops declared fields
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field name to reasons; empty unless rejected.",
    )

    class Meta:
        ref_name = "EventResult"


class EventsIngestOutputSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    results = EventResultSerializer(many=True)

    class Meta:
        ref_name = "EventIngestResult"


def _http_error(description: str) -> OpenApiResponse:
    return OpenApiResponse(description=description)


EXAMPLE_EVENT = {
    "event_id": "5f0c6a3e-2b1d-4c53-9f0e-8a7e2f1b9c11",
    "visitor": "0b7e1c2a-6d4f-4e8b-9a51-3c2d1e0f9a87",
    "type": "purchase",
    "item": "sku-1042",
    "value": 19.99,
    "session_id": "s-81f2",
    "timestamp": "2025-05-01T12:00:00Z",
    "placement": "checkout",
    "context": {"page": "/checkout/"},
}


class EventsIngestApi(APIView):
    """POST a batch of events; each is accepted, a duplicate, or rejected on its own."""

    # No SessionAuthentication, hence no CSRF check: sendBeacon cannot send the CSRF header.
    # Beacon requests prove themselves by same-origin headers plus the signed visitor token.
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    parser_classes = [EventsJSONParser, PlainTextJSONParser]

    @extend_schema(
        operation_id="events_ingest",
        summary="Ingest a batch of events",
        description=(
            "Server-to-server clients send `X-API-Key: <key>` and a JSON list of up to "
            f"{settings.EVENT_BATCH_MAX} events, any type, any visitor (unknown visitor keys "
            "are created). The site's beacon sends `{token, events}` from the same origin and "
            "may only send impression, click and add_to_cart events for the token's visitor. "
            "Each event is judged on its own: 200 when none is rejected, 207 when some are. "
            "An event_id already stored (or repeated in the batch) is a `duplicate` and is not "
            "stored again, so a batch can be retried safely. Events are flagged `is_bot` when "
            "the visitor is a bot, when a beacon request's User-Agent looks like one, or (API "
            "key) when `context.user_agent` looks like one. Timestamps must carry a timezone, "
            "be on or after 1995-01-01 and at most 5 minutes in the future."
        ),
        request=PolymorphicProxySerializer(
            component_name="EventBatch",
            serializers=[KeyedEventInputSerializer(many=True), BeaconBatchSerializer],
            resource_type_field_name=None,
            many=False,
        ),
        responses={
            200: EventsIngestOutputSerializer,
            207: EventsIngestOutputSerializer,
            400: _http_error("Body is not JSON, not a list of 1..500 events or {token, events}."),
            403: _http_error(
                "No valid API key, or a beacon request that is cross-origin or has a bad token."
            ),
            413: _http_error(f"Body larger than {MAX_BODY_BYTES} bytes."),
            429: _http_error("Rate limited; see the Retry-After header."),
        },
        examples=[
            OpenApiExample("API key client", value=[EXAMPLE_EVENT], request_only=True),
            OpenApiExample(
                "Beacon",
                value={
                    "token": "<pp-beacon-token>",
                    "events": [
                        {
                            "event_id": "9a1d3f5e-0c2b-4e6a-8f7d-1b2c3d4e5f60",
                            "type": "impression",
                            "item": "sku-1042",
                            "placement": "home_recommended",
                            "timestamp": "2025-05-01T12:00:00Z",
                            "context": {"page": "/"},
                        }
                    ],
                },
                request_only=True,
            ),
            OpenApiExample(
                "Some rejected (207)",
                value={
                    "accepted": 1,
                    "rejected": 1,
                    "duplicates": 0,
                    "results": [
                        {
                            "index": 0,
                            "status": "accepted",
                            "event_id": EXAMPLE_EVENT["event_id"],
                            "errors": {},
                        },
                        {
                            "index": 1,
                            "status": "rejected",
                            "event_id": None,
                            "errors": {"value": ["Required for rating events."]},
                        },
                    ],
                },
                response_only=True,
                status_codes=["207"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        if _content_length(request) > MAX_BODY_BYTES:
            raise PayloadTooLarge()
        beacon = None if request_sends_api_key(request) else _beacon_caller(request)
        if beacon is None:
            _keyed_caller(request)
        raw_events = _events_of(request.data)
        results, valid, positions = _validate_events(
            raw_events, beacon=beacon, user_agent=request.headers.get("User-Agent", "")
        )
        outcome = interactions_ingest(events=valid, create_visitors=beacon is None)
        for position, result in zip(positions, outcome.outcomes, strict=True):
            results[position].update(status=result.status.value, errors=result.errors)
        counts = {s: sum(1 for r in results if r["status"] == s) for s in IngestStatus}
        data = {
            "accepted": counts[IngestStatus.ACCEPTED],
            "rejected": counts[IngestStatus.REJECTED],
            "duplicates": counts[IngestStatus.DUPLICATE],
            "results": results,
        }
        code = status.HTTP_207_MULTI_STATUS if data["rejected"] else status.HTTP_200_OK
        return Response(EventsIngestOutputSerializer(data).data, status=code)


@dataclass(frozen=True)
class BeaconCaller:
    """The visitor a beacon token names; `keys` also holds the token's pre-merge key."""

    visitor: Visitor
    keys: frozenset[uuid.UUID]


def _content_length(request: Request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _keyed_caller(request: Request) -> None:
    api_key = request_api_key(request)
    if api_key is None:
        raise PermissionDenied("Invalid, revoked or expired API key.")
    limit = settings.RATE_LIMIT_API_KEY_PER_MINUTE
    _enforce([ratelimit_hit(key=f"api-key:{api_key.prefix}", limit=limit)])


def _beacon_caller(request: Request) -> BeaconCaller:
    if not request_is_same_origin(request):
        raise PermissionDenied("Beacon requests must come from this site (Origin or Referer).")
    body = request.data
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise PermissionDenied(
            "Authentication required: an X-API-Key header, or a beacon body "
            '{"token": "...", "events": [...]}.'
        )
    key = visitor_key_from_token(token)
    visitor = visitor_resolve(key=key) if key else None
    if key is None or visitor is None:
        raise PermissionDenied("Invalid or expired beacon token.")
    limit = settings.RATE_LIMIT_EVENTS_PER_MINUTE
    client_ip = request.META.get("REMOTE_ADDR", "")
    _enforce(
        [
            ratelimit_hit(key=f"events:beacon:visitor:{visitor.key}", limit=limit),
            ratelimit_hit(key=f"events:beacon:ip:{client_ip}", limit=limit),
        ]
    )
    return BeaconCaller(visitor=visitor, keys=frozenset({uuid.UUID(key), visitor.key}))


def _enforce(hits: list[RateLimitResult]) -> None:
    refused = [hit for hit in hits if not hit.allowed]
    if refused:
        wait = max(hit.retry_after for hit in refused)
        raise Throttled(
            wait=wait,
            detail=f"Too many requests: at most {refused[0].limit} a minute. "
            f"Try again in {wait} seconds.",
        )


def _events_of(body: Any) -> list[Any]:
    events = body.get("events") if isinstance(body, dict) else body
    if not isinstance(events, list):
        raise ParseError('The body must be a JSON list of events, or an object {"events": [...]}.')
    if not events:
        raise ParseError("The batch is empty: send at least one event.")
    if len(events) > settings.EVENT_BATCH_MAX:
        raise ParseError(
            f"Too many events: {len(events)}; at most {settings.EVENT_BATCH_MAX} per request."
        )
    return events


def _validate_events(
    raw_events: list[Any], *, beacon: BeaconCaller | None, user_agent: str
) -> tuple[list[dict[str, Any]], list[ValidatedEvent], list[int]]:
    """Per-event results (rejections filled in), the valid events and their positions."""
    now = timezone.now()
    request_is_bot = beacon is not None and user_agent_is_bot(user_agent)
    results: list[dict[str, Any]] = []
    valid: list[ValidatedEvent] = []
    positions: list[int] = []
    for index, raw in enumerate(raw_events):
        serializer_class = EventInputSerializer if beacon else KeyedEventInputSerializer
        serializer = serializer_class(data=raw)
        errors = serializer.errors if not serializer.is_valid() else {}
        if not errors and beacon is not None:
            errors = _beacon_errors(serializer.validated_data, beacon)
        results.append(
            {
                "index": index,
                "status": IngestStatus.REJECTED.value,
                "event_id": _raw_event_id(raw),
                "errors": errors,
            }
        )
        if errors:
            continue
        event = _validated_event(serializer.validated_data, beacon=beacon, now=now)
        if request_is_bot and not event.is_bot:
            event = replace(event, is_bot=True)
        results[-1]["event_id"] = event.event_id
        valid.append(event)
        positions.append(index)
    return results, valid, positions


def _raw_event_id(raw: Any) -> uuid.UUID | None:
    """The event_id as sent, so a client can match even a rejected event."""
    try:
        return uuid.UUID(str(raw.get("event_id"))) if isinstance(raw, dict) else None
    except ValueError:
        return None


def _beacon_errors(data: dict[str, Any], beacon: BeaconCaller) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if data["type"] not in BEACON_EVENT_TYPES:
        allowed = ", ".join(BEACON_EVENT_TYPES)
        errors["type"] = [f"The beacon may only send {allowed} events."]
    if data.get("visitor") is not None and data["visitor"] not in beacon.keys:
        errors["visitor"] = ["The beacon may only send events for its token's visitor."]
    return errors


def _validated_event(
    data: dict[str, Any], *, beacon: BeaconCaller | None, now: datetime
) -> ValidatedEvent:
    context = data["context"]
    user_agent = context.get("user_agent")
    return ValidatedEvent(
        event_type=data["type"],
        visitor_key=beacon.visitor.key if beacon is not None else data["visitor"],
        timestamp=data.get("timestamp") or now,
        event_id=data.get("event_id"),
        item_external_id=data.get("item") or None,
        value=data.get("value"),
        query=data["query"],
        session_id=data["session_id"],
        placement=data["placement"],
        context=context,
        # A server-to-server client's own User-Agent says nothing about the end user.
        is_bot=beacon is None and isinstance(user_agent, str) and user_agent_is_bot(user_agent),
    )


urlpatterns = [path("events/", EventsIngestApi.as_view(), name="events")]
