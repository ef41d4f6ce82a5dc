"""Catalog API: public reads of items and categories, keyed writes for the shop's systems.

Writes replace the whole item (omitted optional fields get their defaults) and never
delete: items are deactivated instead, so past events keep their item.

`category` on writes is either an existing category slug ("movies-comedy") or a path of
names, root first, separated by ">" ("Movies > Comedy"); missing nodes of a path are
created, each slugged as its parent's slug plus its own name ("movies", "movies-comedy").

Prices must be exact to the cent: "9.99" and "9.990" are accepted, "9.999" is rejected
(never silently rounded). Currency is an ISO 4217 code; lower case is upper-cased.

Known limitation: `<external_id>` may contain "/", so an item whose id ends in
"/deactivate", or whose id is "bulk" or "deactivate", cannot be read or written through
`/api/items/<external_id>/` (those paths belong to the deactivate and bulk endpoints).
"""

import json
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.core.validators import RegexValidator, URLValidator
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.apis.auth import ApiKeyRequired
from webapp.models import Category, Item
from webapp.selectors.catalog_api import (
    ItemFilter,
    categories_for_api,
    category_get_by_slug,
    item_get_by_external_id,
    items_existing_external_ids,
    items_for_api,
)
from webapp.services.catalog import (
    ItemData,
    category_path_names,
    items_deactivate,
    items_upsert,
)

BULK_MAX_ITEMS = 1000
CATEGORY_NAME_MAX_LENGTH = Category._meta.get_field("name").max_length or 200
DEFAULT_CURRENCY = str(Item._meta.get_field("currency").default)
CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
http_url_validator = URLValidator(schemes=["http", "https"], message="Enter a valid http(s) URL.")
no_whitespace_validator = RegexValidator(r"^\S+$", "Must not contain whitespace.")

ItemErrors = dict[str, list[str]]


class PriceField(serializers.DecimalField):
    """A price exact to the cent: trailing zeros are fine, extra digits are rejected."""

    def validate_precision(self, value: Decimal) -> Decimal:
        return super().validate_precision(value.normalize())  # type: ignore[no-any-return]


class ItemInputSerializer(serializers.Serializer):
    """One item as the shop sends it; shared by the API and `import_catalog`."""

    external_id = serializers.CharField(
        min_length=1, max_length=128, trim_whitespace=False, validators=[no_whitespace_validator]
    )
    title = serializers.CharField(max_length=500)
    description = serializers.CharField(allow_blank=True, default="")
    category = serializers.CharField(
        allow_blank=True,
        allow_null=True,
        default=None,
        max_length=1000,
        help_text='An existing category slug, or a path of names like "Movies > Comedy" '
        "(missing categories are created).",
    )
    attributes = serializers.DictField(default=dict, help_text="Free-form JSON object.")
    list_price = PriceField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), allow_null=True, default=None
    )
    currency = serializers.CharField(
        default=DEFAULT_CURRENCY, help_text="ISO 4217 code; lower case is accepted."
    )
    image_url = serializers.CharField(
        max_length=1000, allow_blank=True, default="", validators=[http_url_validator]
    )
    url = serializers.CharField(
        max_length=1000, allow_blank=True, default="", validators=[http_url_validator]
    )
    is_active = serializers.BooleanField(default=True)

    class Meta:
        ref_name = "ItemInput"

    def validate_currency(self, value: str) -> str:
        code = value.strip().upper()
        if not CURRENCY_CODE.match(code):
            raise ValidationError("Must be an ISO 4217 currency code, e.g. USD.")
        return code

    def validate_attributes(self, value: dict[str, Any]) -> dict[str, Any]:
        # Postgres jsonb cannot store NUL characters; refuse them here rather than fail later.
        if "\\u0000" in json.dumps(value):
            raise ValidationError("Null characters are not allowed.")
        return value

    def validate_category(self, value: str | None) -> str | None:
        names = category_path_names(value or "")
        if not names:
            return None
        if any(len(name) > CATEGORY_NAME_MAX_LENGTH for name in names):
            raise ValidationError(
                f"Each category name must be at most {CATEGORY_NAME_MAX_LENGTH} characters."
            )
        return " > ".join(names)


def item_inputs_validate(rows: Iterable[Any]) -> Iterator[tuple[ItemData | None, ItemErrors]]:
    """Each row's item data, or its errors as {field: [reason]} (the shape bulk results use).

    One serializer validates every row: building its fields is most of the cost of a row.
    """
    serializer = ItemInputSerializer()
    for row in rows:
        try:
            yield ItemData(**serializer.run_validation(row)), {}
        except ValidationError as error:
            yield None, _errors_by_field(error.detail)


def item_input_validate(row: Any) -> tuple[ItemData | None, ItemErrors]:
    return next(item_inputs_validate([row]))


def _errors_by_field(detail: Any) -> ItemErrors:
    if not isinstance(detail, dict):
        return {"non_field_errors": [str(reason) for reason in detail]}
    return {
        name: [str(reason) for reason in (reasons if isinstance(reasons, list) else [reasons])]
        for name, reasons in detail.items()
    }


class CategoryRefSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()

    class Meta:
        ref_name = "CategoryRef"


class ItemOutputSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    category = CategoryRefSerializer(allow_null=True)
    attributes = serializers.DictField()
    list_price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    image_url = serializers.CharField()
    url = serializers.CharField()
    is_active = serializers.BooleanField()
    semantic_id = serializers.CharField(
        read_only=True, help_text="Semantic-ID codes from the model version below; may be empty."
    )
    semantic_id_version = serializers.IntegerField(
        source="semantic_id_version_id", read_only=True, allow_null=True
    )
    anomaly_score = serializers.FloatField(
        read_only=True,
        allow_null=True,
        help_text=(
            "How unlike the rest of the catalog the item's content is (reconstruction error "
            "through the semantic-IDs model above, 1 = typical); high values often mean a "
            "broken scrape. Null until scored."
        ),
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Item"


class CategoryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.SlugField()
    # `parent` and `errors` shadow Serializer attributes in the stubs only (DRF pops fields).
    parent = serializers.CharField(source="parent.slug", allow_null=True)  # type: ignore[assignment]

    class Meta:
        ref_name = "Category"


class ItemUpsertResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["created", "updated", "rejected"])
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField())
    )

    class Meta:
        ref_name = "ItemUpsertResult"


NO_API_KEY = OpenApiResponse(description="No valid API key in the X-API-Key header.")


def _item_or_404(external_id: str) -> Item:
    item = item_get_by_external_id(external_id=external_id)
    if item is None:
        raise NotFound(f"No item with external_id {external_id!r}.")
    return item


class ItemListApi(ListAPIView):
    """Public list of items with filters; only active items unless `is_active=false`."""

    serializer_class = ItemOutputSerializer
    filterset_class = ItemFilter

    def get_queryset(self) -> Any:
        return items_for_api()

    @extend_schema(tags=["catalog"], operation_id="items_list", summary="List items")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ItemDetailApi(APIView):
    """Read one item (public) or create/replace it (API key)."""

    parser_classes = [JSONParser]

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [AllowAny()]
        return [ApiKeyRequired()]

    @extend_schema(
        tags=["catalog"],
        operation_id="items_retrieve",
        summary="Get an item (active or not)",
        responses={200: ItemOutputSerializer, 404: OpenApiResponse(description="Unknown id.")},
    )
    def get(self, request: Request, external_id: str) -> Response:
        return Response(ItemOutputSerializer(_item_or_404(external_id)).data)

    @extend_schema(
        tags=["catalog"],
        operation_id="items_upsert",
        summary="Create or replace an item (API key)",
        description="The body's `external_id` may be omitted; if given it must match the URL.",
        request=ItemInputSerializer,
        responses={
            200: ItemOutputSerializer,
            201: ItemOutputSerializer,
            400: OpenApiResponse(description="Invalid fields: {field: [reason]}."),
            403: NO_API_KEY,
        },
    )
    def put(self, request: Request, external_id: str) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        if request.data.get("external_id", external_id) != external_id:
            raise ValidationError({"external_id": ["Does not match the URL."]})
        data, errors = item_input_validate({**request.data, "external_id": external_id})
        if data is None:
            raise ValidationError(errors)
        result = items_upsert(items=[data])
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(ItemOutputSerializer(_item_or_404(external_id)).data, status=code)


class ItemBulkUpsertApi(APIView):
    """Create or replace up to BULK_MAX_ITEMS items; valid ones are stored, invalid reported."""

    permission_classes = [ApiKeyRequired]
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        items = serializers.ListField(
            child=serializers.JSONField(), min_length=1, max_length=BULK_MAX_ITEMS
        )

        class Meta:
            ref_name = "ItemBulkUpsertInput"

    class OutputSerializer(serializers.Serializer):
        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        rejected = serializers.IntegerField()
        results = ItemUpsertResultSerializer(many=True)

        class Meta:
            ref_name = "ItemBulkUpsertOutput"

    @extend_schema(
        tags=["catalog"],
        operation_id="items_bulk_upsert",
        summary="Create or replace many items (API key)",
        description=f"Up to {BULK_MAX_ITEMS} items. Answers 200 when all were stored, 207 "
        "when some were rejected (the others are stored); `results` follows the input order.",
        request=inline_serializer(
            "ItemBulkUpsertRequest",
            fields={"items": ItemInputSerializer(many=True)},
        ),
        responses={
            200: OutputSerializer,
            207: OutputSerializer,
            400: OpenApiResponse(description="Not a list of 1..1000 items."),
            403: NO_API_KEY,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = self._validated(serializer.validated_data["items"])
        valid = [r.pop("data") for r in results if r["status"] != "rejected"]
        outcome = items_upsert(items=valid)
        created = set(outcome.created)
        for result in results:
            if result["status"] != "rejected":
                result["status"] = "created" if result["external_id"] in created else "updated"
        counts = {s: sum(r["status"] == s for r in results) for s in ("created", "updated")}
        rejected = len(results) - counts["created"] - counts["updated"]
        body = {**counts, "rejected": rejected, "results": results}
        code = status.HTTP_207_MULTI_STATUS if rejected else status.HTTP_200_OK
        return Response(self.OutputSerializer(body).data, status=code)

    def _validated(self, raw_items: list[Any]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        first_index: dict[str, int] = {}
        checked = zip(raw_items, item_inputs_validate(raw_items), strict=True)
        for index, (raw, (data, errors)) in enumerate(checked):
            external_id = data.external_id if data else _raw_external_id(raw)
            if data is not None and data.external_id in first_index:
                duplicate_of = first_index[data.external_id]
                errors = {"external_id": [f"Duplicate of index {duplicate_of}."]}
            elif data is not None:
                first_index[data.external_id] = index
            result: dict[str, Any] = {
                "index": index,
                "external_id": external_id,
                "status": "rejected" if errors else "valid",
                "errors": errors,
            }
            if not errors:
                result["data"] = data
            results.append(result)
        return results


def _raw_external_id(raw: Any) -> str | None:
    value = raw.get("external_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


class ItemDeactivateApi(APIView):
    """Deactivate one item (idempotent); it disappears from lists and recommendations."""

    permission_classes = [ApiKeyRequired]

    @extend_schema(
        tags=["catalog"],
        operation_id="items_deactivate",
        summary="Deactivate an item (API key)",
        request=None,
        responses={
            200: ItemOutputSerializer,
            403: NO_API_KEY,
            404: OpenApiResponse(description="Unknown id."),
        },
    )
    def post(self, request: Request, external_id: str) -> Response:
        _item_or_404(external_id)
        items_deactivate(external_ids=[external_id])
        return Response(ItemOutputSerializer(_item_or_404(external_id)).data)


class ItemBulkDeactivateApi(APIView):
    """Deactivate many items by external id; unknown ids are listed, not an error."""

    permission_classes = [ApiKeyRequired]
    parser_classes = [JSONParser]

    class InputSerializer(serializers.Serializer):
        external_ids = serializers.ListField(
            child=serializers.CharField(max_length=128, trim_whitespace=False),
            min_length=1,
            max_length=BULK_MAX_ITEMS,
        )

        class Meta:
            ref_name = "ItemBulkDeactivateInput"

    class OutputSerializer(serializers.Serializer):
        deactivated = serializers.IntegerField(help_text="Items that were active until now.")
        not_found = serializers.ListField(child=serializers.CharField())

        class Meta:
            ref_name = "ItemBulkDeactivateOutput"

    @extend_schema(
        tags=["catalog"],
        operation_id="items_bulk_deactivate",
        summary="Deactivate many items (API key)",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(description="Invalid body."),
            403: NO_API_KEY,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        external_ids: list[str] = serializer.validated_data["external_ids"]
        known = items_existing_external_ids(external_ids=external_ids)
        deactivated = items_deactivate(external_ids=known)
        not_found = sorted(set(external_ids) - known)
        body = {"deactivated": deactivated, "not_found": not_found}
        return Response(self.OutputSerializer(body).data)


class CategoryListApi(ListAPIView):
    """The whole category tree as a flat list (categories are few), each with its parent."""

    serializer_class = CategoryOutputSerializer
    pagination_class = None
    filter_backends = ()

    def get_queryset(self) -> Any:
        return categories_for_api()

    @extend_schema(tags=["catalog"], operation_id="categories_list", summary="List all categories")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class CategoryDetailApi(APIView):
    """One category with its direct children's slugs."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        slug = serializers.SlugField()
        parent = serializers.CharField(allow_null=True)  # type: ignore[assignment]
        children = serializers.ListField(child=serializers.CharField(), help_text="Their slugs.")

        class Meta:
            ref_name = "CategoryDetail"

    @extend_schema(
        tags=["catalog"],
        operation_id="categories_retrieve",
        summary="Get a category",
        responses={200: OutputSerializer, 404: OpenApiResponse(description="Unknown slug.")},
    )
    def get(self, request: Request, slug: str) -> Response:
        category = category_get_by_slug(slug=slug)
        if category is None:
            raise NotFound(f"No category with slug {slug!r}.")
        body = {
            **CategoryOutputSerializer(category).data,
            "children": [child.slug for child in category.children.all()],
        }
        return Response(self.OutputSerializer(body).data)


urlpatterns = [
    path("items/", ItemListApi.as_view(), name="api-item-list"),
    path("items/bulk/", ItemBulkUpsertApi.as_view(), name="api-item-bulk-upsert"),
    path("items/deactivate/", ItemBulkDeactivateApi.as_view(), name="api-item-bulk-deactivate"),
    path(
        "items/<path:external_id>/deactivate/",
        ItemDeactivateApi.as_view(),
        name="api-item-deactivate",
    ),
    path("items/<path:external_id>/", ItemDetailApi.as_view(), name="api-item-detail"),
    path("categories/", CategoryListApi.as_view(), name="api-category-list"),
    path("categories/<slug:slug>/", CategoryDetailApi.as_view(), name="api-category-detail"),
]
