"""POST /api/visitor-context/: custom context a client app stores for a visitor.

A companion app or a wearable sends e.g. {"context": {"activity_level": "high"}}; the
values feed "custom context" segment conditions. Two ways to say whose context it is:
the site's own pages (the visitor cookie, same origin, consent given), or a
server-to-server client with an API key naming `visitor`.
"""

import math
import uuid
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.apis.auth import request_has_api_key, request_is_same_origin, request_sends_api_key
from webapp.models import Visitor
from webapp.segments.attributes import CONTEXT_KEY
from webapp.segments.services import visitor_context_update
from webapp.services.visitors import visitor_resolve

MAX_KEYS_PER_REQUEST = 20
MAX_TEXT_LENGTH = 200


def _context_errors(context: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for key, value in context.items():
        if not CONTEXT_KEY.match(key):
            errors[key] = "Keys are 1-40 lowercase letters, digits or _, starting with a letter."
        elif isinstance(value, str):
            if len(value) > MAX_TEXT_LENGTH or "\x00" in value:
                errors[key] = f"Text values are at most {MAX_TEXT_LENGTH} characters, no NUL."
        elif isinstance(value, float) and not math.isfinite(value):
            errors[key] = "Numbers must be finite."
        elif value is not None and not isinstance(value, bool | int | float):
            errors[key] = "Values are text, numbers, true/false, or null (deletes the key)."
    return errors


class VisitorContextApi(APIView):
    """Store custom context keys for a visitor (merged into what is stored)."""

    # No session authentication (hence no CSRF token): cookie callers must be same-origin.
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    class InputSerializer(serializers.Serializer):
        visitor = serializers.UUIDField(
            required=False, help_text="Visitor key; with an API key only (required then)."
        )
        context = serializers.DictField(  # type: ignore[assignment]  # DRF pops declared fields
            help_text=f"1..{MAX_KEYS_PER_REQUEST} keys -> text (<= {MAX_TEXT_LENGTH} chars), "
            "number, true/false, or null to delete the key."
        )

        class Meta:
            ref_name = "VisitorContextInput"

        def validate_context(self, value: dict[str, Any]) -> dict[str, Any]:
            if not 1 <= len(value) <= MAX_KEYS_PER_REQUEST:
                raise serializers.ValidationError(
                    f"Send 1 to {MAX_KEYS_PER_REQUEST} keys ({len(value)} sent)."
                )
            errors = _context_errors(value)
            if errors:
                raise serializers.ValidationError(errors)
            return value

    class OutputSerializer(serializers.Serializer):
        visitor = serializers.UUIDField()
        context = serializers.DictField(  # type: ignore[assignment]  # DRF pops declared fields
            help_text="Everything now stored for the visitor."
        )

        class Meta:
            ref_name = "VisitorContext"

    @extend_schema(
        tags=["segments"],
        operation_id="visitor_context_update",
        summary="Store custom context for a visitor (segments)",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(description="Bad keys or values; each named."),
            403: OpenApiResponse(description="No visitor cookie from this site, or bad API key."),
            404: OpenApiResponse(description="API key: no visitor with this key."),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        visitor = self._visitor(request, data.validated_data.get("visitor"))
        try:
            stored = visitor_context_update(visitor=visitor, values=data.validated_data["context"])
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        return Response(self.OutputSerializer({"visitor": visitor.key, "context": stored}).data)

    @staticmethod
    def _visitor(request: Request, key: uuid.UUID | None) -> Visitor:
        if request_sends_api_key(request):
            if not request_has_api_key(request):
                raise PermissionDenied("The API key is not valid.")
            if key is None:
                raise ValidationError({"visitor": ["Required with an API key."]})
            visitor = visitor_resolve(key=key)
            if visitor is None:
                raise NotFound("No visitor with this key.")
            return visitor
        if key is not None:
            raise PermissionDenied("Naming a visitor needs an API key.")
        visitor = getattr(request._request, "visitor", None)
        if visitor is None or not request_is_same_origin(request):
            raise PermissionDenied(
                "Send the visitor cookie from this site (with consent), or use an API key."
            )
        return visitor


urlpatterns = [
    path("visitor-context/", VisitorContextApi.as_view(), name="api-visitor-context"),
]
