"""The recommendation API: what to show a visitor in a placement, as JSON.

The visitor is the request's own cookie visitor; naming another one (`visitor=`) is for
servers (e-mails) and needs an API key, so nobody can read someone else's history.
"""

from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse
from django.urls import path
from django.utils.cache import patch_cache_control, patch_vary_headers
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from recommender.answers import answer_body, answer_key, answer_render
from recommender.candidates import Placement, Section
from recommender.context import history_from_context
from recommender.selectors import (
    Served,
    category_shelf,
    placement_shelf,
    served_cache_identity,
    served_cache_seconds,
)
from recommender.strategies import Strategies
from webapp.apis.auth import request_has_api_key, request_sends_api_key
from webapp.experiments.serving import page_exposures_record, page_variants
from webapp.models import Category, Item, Visitor
from webapp.services.visitors import visitor_resolve

MAX_K = 50
# The section an API placement serves: experiments on that section apply to the API too.
API_SECTIONS = {
    Placement.HOME: Section.TOP_PICKS,
    Placement.EMAIL: Section.EMAIL,
    Placement.ITEM: Section.SIMILAR,
    Placement.CATEGORY: Section.CATEGORY_RANKED,
}
MAX_CONTEXT_ITEMS = 50


class RecommendationQuerySerializer(serializers.Serializer):
    placement = serializers.ChoiceField(choices=[p.value for p in Placement])
    item = serializers.CharField(
        required=False, max_length=128, help_text="External id of the current item."
    )
    category = serializers.SlugField(required=False, max_length=200, help_text="Category slug.")
    k = serializers.IntegerField(required=False, default=10, min_value=1, max_value=MAX_K)
    visitor = serializers.UUIDField(
        required=False, help_text="Another visitor's key: needs an API key (X-API-Key)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["placement"] == Placement.ITEM and not attrs.get("item"):
            raise serializers.ValidationError({"item": "Required when placement is 'item'."})
        if attrs["placement"] == Placement.CATEGORY and not attrs.get("category"):
            raise serializers.ValidationError(
                {"category": "Required when placement is 'category'."}
            )
        return attrs


class RecommendationContextSerializer(serializers.Serializer):
    item = serializers.CharField(required=False, max_length=128, help_text="Item being viewed.")
    cart = serializers.ListField(
        child=serializers.CharField(max_length=128), required=False, max_length=MAX_CONTEXT_ITEMS
    )
    recent = serializers.ListField(
        child=serializers.CharField(max_length=128),
        required=False,
        max_length=MAX_CONTEXT_ITEMS,
        help_text="Recently viewed item ids, newest first.",
    )


class RecommendationRequestSerializer(RecommendationQuerySerializer):
    context = RecommendationContextSerializer(required=False)  # type: ignore[assignment]


class RecommendedItemSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The item's external id.")
    title = serializers.CharField()
    url = serializers.CharField()
    image_url = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    score = serializers.FloatField()
    rank = serializers.IntegerField()
    reason = serializers.CharField()
    source = serializers.DictField(  # type: ignore[assignment]  # a field named "source"
        help_text='{"model": kind, "version": ModelVersion id}'
    )


class RecommendationResponseSerializer(serializers.Serializer):
    placement = serializers.CharField()
    section = serializers.CharField()
    title = serializers.CharField()
    fallback = serializers.CharField(help_text="Why popular items were served instead, if so.")
    variant = serializers.CharField(
        help_text='"<experiment>=<variant>" when an experiment decided this list, else "".'
    )
    items = RecommendedItemSerializer(many=True)


QUERY_PARAMETERS = [
    OpenApiParameter("placement", str, enum=[p.value for p in Placement], required=True),
    OpenApiParameter("item", str, description="Current item (required for placement=item)."),
    OpenApiParameter("category", str, description="Category slug (placement=category)."),
    OpenApiParameter("k", int, description=f"How many items, 1..{MAX_K} (default 10)."),
    OpenApiParameter("visitor", str, description="Another visitor's key; needs an API key."),
]


class RecommendationsApi(APIView):
    """Recommendations for the cookie's visitor (or, with an API key, a named one)."""

    authentication_classes: list[type] = []  # no session auth: nothing here writes
    renderer_classes = [JSONRenderer]

    @extend_schema(
        tags=["recommendations"],
        operation_id="recommendations_get",
        summary="Recommendations for a placement",
        parameters=QUERY_PARAMETERS,
        responses={
            200: RecommendationResponseSerializer,
            400: OpenApiResponse(description="Bad parameters; the message says which."),
            403: OpenApiResponse(description="`visitor` without a valid API key."),
            404: OpenApiResponse(description="Unknown item or category."),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        query = RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return self._answer(request, query.validated_data, context=None)

    @extend_schema(
        tags=["recommendations"],
        operation_id="recommendations_post",
        summary="Recommendations for a placement, given a context",
        request=RecommendationRequestSerializer,
        responses={200: RecommendationResponseSerializer, 400: OpenApiResponse()},
    )
    def post(self, request: Request) -> HttpResponse:
        body = RecommendationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._answer(
            request, body.validated_data, context=body.validated_data.get("context", {})
        )

    def _answer(
        self, request: Request, params: dict[str, Any], context: dict[str, Any] | None
    ) -> HttpResponse:
        visitor = self._visitor(request, params.get("visitor"))
        variants = page_variants(placements=(API_SECTIONS[params["placement"]],), visitor=visitor)
        strategies = variants.strategies
        # The rendered answer is cached under the same identity as the shelves (plus what
        # the JSON itself depends on), so a repeat costs one cache read, not a rendering.
        key = None if context is not None else self._payload_key(params, visitor, strategies)
        parts = caches["recommendations"].get(key) if key else None
        hit = parts is not None
        if parts is None:
            served = self._served(params, visitor, context, strategies)
            shelf = served.shelves[0] if served.shelves else None
            parts = answer_render(placement=params["placement"], shelf=shelf)
            if key:
                caches["recommendations"].set(key, parts, served_cache_seconds(served))
        origin = f"{request.scheme}://{request.get_host()}"  # the items' absolute URLs
        response = HttpResponse(answer_body(parts, origin), content_type="application/json")
        response["X-Recommendations-Cache"] = "hit" if hit else "miss"
        page_exposures_record(variants=variants, visitor=visitor)  # the answer is what is shown
        return response

    def _payload_key(
        self,
        params: dict[str, Any],
        visitor: Visitor | None,
        strategies: Strategies,
    ) -> str:
        return answer_key(
            placement=params["placement"],
            item=params.get("item") or "",
            category=params.get("category") or "",
            identity=served_cache_identity(visitor, strategies),
            k=params["k"],
        )

    def _visitor(self, request: Request, key: Any) -> Visitor | None:
        if key is None:
            return getattr(request._request, "visitor", None)
        if not request_has_api_key(request):
            detail = "Invalid API key." if request_sends_api_key(request) else None
            raise PermissionDenied(detail or "Naming a visitor requires an API key (X-API-Key).")
        return visitor_resolve(key=key)  # unknown visitor: popular items, not an error

    def _served(
        self,
        params: dict[str, Any],
        visitor: Visitor | None,
        context: dict[str, Any] | None,
        strategies: Strategies,
    ) -> Served:
        k, placement = params["k"], params["placement"]
        item_pk = self._item_pk(params.get("item")) if placement == Placement.ITEM else None
        if placement == Placement.CATEGORY:
            category = Category.objects.filter(slug=params["category"]).first()
            if category is None:
                raise NotFound(f"No category with slug {params['category']!r}.")
            return category_shelf(visitor=visitor, category=category, k=k)
        history = history_from_context(visitor=visitor, context=context) if context else None
        return placement_shelf(
            visitor=visitor,
            placement=placement,
            k=k,
            item_pk=item_pk,
            history=history,
            strategies=strategies,
        )

    def _item_pk(self, external_id: str | None) -> int:
        pk = Item.objects.filter(external_id=external_id, is_active=True).values_list(
            "pk", flat=True
        )
        found = pk.first()
        if found is None:
            raise NotFound(f"No active item with id {external_id!r}.")
        return found

    def finalize_response(  # type: ignore[override]  # DRF takes any HttpResponse here
        self, request: Request, response: HttpResponse, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[arg-type]
        patch_cache_control(response, private=True, max_age=0)
        patch_vary_headers(response, ["Cookie", "X-API-Key", "Origin"])
        origin = request.headers.get("Origin", "")
        if origin and origin in settings.RECOMMENDER_CORS_ORIGINS:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Credentials"] = "true"
            response["Access-Control-Allow-Headers"] = "Content-Type, X-API-Key"
            response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        return response


urlpatterns = [
    path("recommendations/", RecommendationsApi.as_view(), name="recommendations"),
]
