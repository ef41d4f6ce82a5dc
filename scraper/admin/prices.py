"""Admin of competitor products (with their price history chart), the match review queue,
exchange rates, alert rules and alerts."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.validators import validate_email
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from ml.charts import LineChart, PointInput, SeriesInput, line_chart
from scraper.models import (
    CompetitorProduct,
    ExchangeRate,
    PriceAlert,
    PriceAlertRule,
    PriceObservation,
    ProductMatch,
)
from scraper.models.prices import AlertKind
from scraper.price_analytics import analyse_prices, regular_series
from scraper.services.matching import product_match_approve, product_match_reject


def price_history_chart(observations: list[PriceObservation]) -> LineChart | None:
    """The product's prices over time, one line per currency seen."""
    by_currency: dict[str, list[PointInput]] = {}
    for obs in sorted(observations, key=lambda o: o.observed_at):
        title = f"{obs.price} {obs.currency} at {obs.observed_at:%Y-%m-%d %H:%M}"
        if obs.availability:
            title += f" ({obs.availability})"
        by_currency.setdefault(obs.currency, []).append(
            PointInput(obs.observed_at, float(obs.price), title, obs.availability == "OutOfStock")
        )
    series = [
        SeriesInput(f"Price ({currency})", points) for currency, points in by_currency.items()
    ]
    currencies = "/".join(by_currency) or "price"
    return line_chart(series, x_label="Observed at (UTC)", y_label=f"Price ({currencies})")


class PriceObservationInline(admin.TabularInline):
    model = PriceObservation
    extra = 0
    can_delete = False
    fields = ("observed_at", "price", "currency", "availability")
    readonly_fields = fields
    ordering = ("-observed_at",)
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CompetitorProduct)
class CompetitorProductAdmin(admin.ModelAdmin):
    list_display = ("title", "source", "brand", "gtin", "mpn", "last_seen_at")
    list_filter = ("source",)
    search_fields = ("title", "brand", "gtin", "mpn", "sku", "url")
    readonly_fields = ("first_seen_at",)
    inlines = [PriceObservationInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    change_form_template = "admin/scraper/competitorproduct/change_form.html"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        observations = list(
            PriceObservation.objects.filter(
                product_id=int(object_id) if object_id.isdigit() else 0
            ).order_by("observed_at")
        )
        context = {
            **(extra_context or {}),
            "price_chart": price_history_chart(observations),
            "price_shifts": _shifts(observations),
        }
        return super().change_view(request, object_id, form_url, extra_context=context)


def _shifts(observations: list[PriceObservation]) -> list[dict[str, Any]]:
    """Level shifts of the daily series (single currency only), for the admin table."""
    if len({o.currency for o in observations}) != 1:
        return []
    days = regular_series([(o.observed_at, float(o.price)) for o in observations])
    start = observations[0].observed_at
    return [
        {
            "day": start + timedelta(days=s.index),
            "before": round(s.before, 2),
            "after": round(s.after, 2),
            "kind": s.kind.replace("_", " "),
        }
        for s in analyse_prices(days)
    ]


@admin.register(ProductMatch)
class ProductMatchAdmin(admin.ModelAdmin):
    list_display = (
        "product",
        "source",
        "item",
        "method",
        "probability",
        "status",
        "reviewed_by",
        "reviewed_at",
    )
    list_filter = ("status", "method", "product__source")
    search_fields = ("product__title", "item__title", "item__external_id")
    list_select_related = ("product__source", "item", "reviewed_by")
    raw_id_fields = ("product", "item")
    readonly_fields = (
        "method",
        "probability",
        "reviewed_by",
        "reviewed_at",
        "created_at",
        "updated_at",
    )
    actions = ["approve", "reject"]
    ordering = ("status", "-probability")

    @admin.display(ordering="product__source__name")
    def source(self, obj: ProductMatch) -> str:
        return obj.product.source.name

    @admin.action(description="Approve the selected matches (gold positives)")
    def approve(self, request: HttpRequest, queryset: QuerySet[ProductMatch]) -> None:
        for match in queryset:
            product_match_approve(match=match, user=request.user)  # type: ignore[arg-type]
        self.message_user(request, f"Approved {queryset.count()} matches.", messages.SUCCESS)

    @admin.action(description="Reject the selected matches (gold negatives)")
    def reject(self, request: HttpRequest, queryset: QuerySet[ProductMatch]) -> None:
        count = 0
        for match in queryset:
            product_match_reject(match=match, user=request.user)  # type: ignore[arg-type]
            count += 1
        self.message_user(request, f"Rejected {count} matches.", messages.SUCCESS)


class ExchangeRateForm(forms.ModelForm):
    class Meta:
        model = ExchangeRate
        fields = ("from_currency", "to_currency", "rate", "valid_from")

    def clean_from_currency(self) -> str:
        return str(self.cleaned_data["from_currency"]).strip().upper()

    def clean_to_currency(self) -> str:
        return str(self.cleaned_data["to_currency"]).strip().upper()

    def clean_rate(self) -> Decimal:
        rate = self.cleaned_data["rate"]
        if rate is None or rate <= 0:
            raise forms.ValidationError("The rate must be greater than 0.")
        return Decimal(rate)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("from_currency") and data.get("from_currency") == data.get("to_currency"):
            self.add_error("to_currency", "Choose a currency other than the one converted from.")
        return data


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    form = ExchangeRateForm
    list_display = ("from_currency", "to_currency", "rate", "valid_from")
    list_filter = ("from_currency", "to_currency")


class PriceAlertRuleForm(forms.ModelForm):
    class Meta:
        model = PriceAlertRule
        fields = ("name", "source", "kind", "threshold_percent", "recipients", "is_active")

    def clean_threshold_percent(self) -> Decimal | None:
        value = self.cleaned_data.get("threshold_percent")
        if value is not None and not Decimal(0) <= value <= Decimal(100):
            raise forms.ValidationError("The threshold is a percentage between 0 and 100.")
        return value

    def clean_recipients(self) -> str:
        text = str(self.cleaned_data.get("recipients") or "")
        addresses = [a.strip() for a in text.replace("\n", ",").split(",") if a.strip()]
        bad = []
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                bad.append(address)
        if bad:
            raise forms.ValidationError(f"Not valid e-mail addresses: {', '.join(bad)}")
        return ", ".join(addresses)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == AlertKind.UNDERCUT and data.get("threshold_percent") is None:
            self.add_error("threshold_percent", "An undercut rule needs a threshold (0-100%).")
        return data


@admin.register(PriceAlertRule)
class PriceAlertRuleAdmin(admin.ModelAdmin):
    form = PriceAlertRuleForm
    list_display = ("name", "source", "kind", "threshold_percent", "recipients", "is_active")
    list_filter = ("kind", "is_active", "source")


@admin.register(PriceAlert)
class PriceAlertAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "rule",
        "item",
        "product",
        "observed_price",
        "observed_currency",
        "our_price",
        "emailed_at",
    )
    list_filter = ("rule", "product__source")
    list_select_related = ("rule", "item", "product")
    search_fields = ("message", "item__title", "product__title")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
