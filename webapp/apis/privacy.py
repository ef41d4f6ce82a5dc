"""Privacy API for the shop's back office (API key): export or erase one visitor's data.

A visitor is named by the key of its cookie; a key that was merged into another visitor
(login on a new device) names the visitor it was merged into, and export/erase cover it
together with every visitor merged into it.
"""

import uuid

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.apis.auth import ApiKeyRequired
from webapp.models import Visitor
from webapp.services.visitors import visitor_erase, visitor_export, visitor_resolve

VISITOR_KEY_PARAMETER = OpenApiParameter(
    "visitor_key",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The visitor's key (the UUID in its cookie).",
)
RESPONSES_ERRORS = {
    400: OpenApiResponse(description="The visitor key is not a UUID."),
    403: OpenApiResponse(description="No valid API key."),
    404: OpenApiResponse(description="No such visitor."),
}


class ExportVisitorSerializer(serializers.Serializer):
    key = serializers.UUIDField()
    user = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    consent_given_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "VisitorExportVisitor"


class ExportEventSerializer(serializers.Serializer):
    event_id = serializers.UUIDField(allow_null=True)
    type = serializers.CharField()
    item = serializers.CharField(allow_null=True, help_text="The item's external id.")
    value = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    query = serializers.CharField()
    session_id = serializers.CharField()
    timestamp = serializers.DateTimeField()
    placement = serializers.CharField()
    context = serializers.DictField()  # type: ignore[assignment]

    class Meta:
        ref_name = "VisitorExportEvent"


def _visitor_or_error(visitor_key: str) -> Visitor:
    try:
        key = uuid.UUID(visitor_key)
    except ValueError:
        raise ValidationError({"visitor_key": ["Must be a UUID."]}) from None
    visitor = visitor_resolve(key=key)
    if visitor is None:
        raise NotFound("No visitor with this key.")
    return visitor


class VisitorExportApi(APIView):
    """Everything stored about a visitor (and visitors merged into it), as JSON."""

    permission_classes = [ApiKeyRequired]

    class OutputSerializer(serializers.Serializer):
        visitor = ExportVisitorSerializer()
        events = ExportEventSerializer(many=True)
        profiles = serializers.ListField(
            child=serializers.DictField(),
            help_text="Visit facts and context posted by client apps (segments).",
        )

        class Meta:
            ref_name = "VisitorExport"

    @extend_schema(
        tags=["privacy"],
        operation_id="visitors_export",
        summary="Export a visitor's data (API key)",
        parameters=[VISITOR_KEY_PARAMETER],
        responses={200: OutputSerializer, **RESPONSES_ERRORS},
    )
    def get(self, request: Request, visitor_key: str) -> Response:
        visitor = _visitor_or_error(visitor_key)
        return Response(visitor_export(visitor=visitor))


class VisitorEraseApi(APIView):
    """Delete a visitor, visitors merged into it, their events and cached data."""

    permission_classes = [ApiKeyRequired]

    class OutputSerializer(serializers.Serializer):
        visitors = serializers.IntegerField(help_text="Visitors deleted.")
        events = serializers.IntegerField(help_text="Events deleted.")
        exposures = serializers.IntegerField(help_text="Experiment exposures deleted.")

        class Meta:
            ref_name = "VisitorErase"

    @extend_schema(
        tags=["privacy"],
        operation_id="visitors_erase",
        summary="Erase a visitor's data (API key)",
        parameters=[VISITOR_KEY_PARAMETER],
        responses={200: OutputSerializer, **RESPONSES_ERRORS},
    )
    def delete(self, request: Request, visitor_key: str) -> Response:
        visitor = _visitor_or_error(visitor_key)
        counts = visitor_erase(visitor=visitor)
        return Response(self.OutputSerializer(counts).data)


urlpatterns = [
    path(
        "visitors/<str:visitor_key>/export/",
        VisitorExportApi.as_view(),
        name="api-visitor-export",
    ),
    path("visitors/<str:visitor_key>/", VisitorEraseApi.as_view(), name="api-visitor-erase"),
]
