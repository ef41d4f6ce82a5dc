"""Admin of competitor products (price chart), the match review queue, rates and rules."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scraper.models import ExchangeRate, PriceAlertRule, ProductMatch
from scraper.models.prices import MatchMethod, MatchStatus
from tests.factories import UserFactory
from tests.scraper.price_factories import (
    CompetitorProductFactory,
    CompetitorSourceFactory,
    PriceAlertRuleFactory,
    PriceObservationFactory,
    ProductMatchFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user() -> User:
    return UserFactory.create(is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_competitor_product_page_draws_its_price_history_and_shifts(staff_client: Client) -> None:
    product = CompetitorProductFactory.create(title="<script>alert(1)</script> Kettle")
    start = timezone.now() - timedelta(days=90)
    for day, price in [(0, "100"), (40, "80"), (52, "100"), (70, "110")]:
        PriceObservationFactory.create(
            product=product, price=Decimal(price), observed_at=start + timedelta(days=day)
        )

    response = staff_client.get(
        reverse("admin:scraper_competitorproduct_change", args=[product.pk])
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html and "<polyline" in html
    assert html.count("<circle") == 4
    assert "promotion start" in html and "promotion end" in html and "permanent" in html
    assert "<script>alert(1)</script>" not in html


def test_product_without_prices_says_so(staff_client: Client) -> None:
    product = CompetitorProductFactory.create()

    response = staff_client.get(
        reverse("admin:scraper_competitorproduct_change", args=[product.pk])
    )

    assert "No price has been observed" in response.content.decode()


def test_review_queue_filters_by_status_and_approves_and_rejects(
    staff_client: Client, admin_user: User
) -> None:
    pending = ProductMatchFactory.create_batch(
        2, status=MatchStatus.PENDING, method=MatchMethod.MODEL, probability=0.6
    )
    ProductMatchFactory.create(status=MatchStatus.AUTO_ACCEPTED)
    url = reverse("admin:scraper_productmatch_changelist")

    listing = staff_client.get(url, {"status__exact": "pending"})
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 2

    staff_client.post(url, {"action": "approve", "_selected_action": [pending[0].pk]})
    staff_client.post(url, {"action": "reject", "_selected_action": [pending[1].pk]})

    statuses = dict(ProductMatch.objects.values_list("pk", "status"))
    assert statuses[pending[0].pk] == MatchStatus.APPROVED
    assert statuses[pending[1].pk] == MatchStatus.REJECTED
    assert ProductMatch.objects.get(pk=pending[0].pk).reviewed_by == admin_user


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"from_currency": "EUR", "to_currency": "USD", "rate": "0"}, "rate"),
        ({"from_currency": "EUR", "to_currency": "USD", "rate": "-1"}, "rate"),
        ({"from_currency": "EURO", "to_currency": "USD", "rate": "1.1"}, "from_currency"),
        ({"from_currency": "EUR", "to_currency": "us", "rate": "1.1"}, "to_currency"),
        ({"from_currency": "EUR", "to_currency": "EUR", "rate": "1.1"}, "to_currency"),
    ],
)
def test_exchange_rate_form_refuses_bad_input(
    staff_client: Client, data: dict[str, str], field: str
) -> None:
    payload = {**data, "valid_from_0": "2026-01-01", "valid_from_1": "00:00:00"}

    response = staff_client.post(reverse("admin:scraper_exchangerate_add"), payload)

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not ExchangeRate.objects.exists()


def test_exchange_rate_form_accepts_lower_case_iso_codes(staff_client: Client) -> None:
    payload = {
        "from_currency": "eur",
        "to_currency": "usd",
        "rate": "1.1",
        "valid_from_0": "2026-01-01",
        "valid_from_1": "00:00:00",
    }

    response = staff_client.post(reverse("admin:scraper_exchangerate_add"), payload)

    assert response.status_code == 302
    assert ExchangeRate.objects.get().from_currency == "EUR"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "undercut_by_percent", "threshold_percent": "101"}, "threshold_percent"),
        ({"kind": "undercut_by_percent", "threshold_percent": "-1"}, "threshold_percent"),
        ({"kind": "undercut_by_percent", "threshold_percent": ""}, "threshold_percent"),
        (
            {"kind": "undercut_by_percent", "threshold_percent": "5", "recipients": "no-at-sign"},
            "recipients",
        ),
    ],
)
def test_alert_rule_form_refuses_bad_input(
    staff_client: Client, data: dict[str, str], field: str
) -> None:
    payload = {"name": "Rule", "recipients": "p@example.com", "is_active": "on", **data}

    response = staff_client.post(reverse("admin:scraper_pricealertrule_add"), payload)

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not PriceAlertRule.objects.exists()


def test_alert_rule_form_saves_a_good_rule(staff_client: Client) -> None:
    source = CompetitorSourceFactory.create()
    payload = {
        "name": "Undercut",
        "source": source.pk,
        "kind": "undercut_by_percent",
        "threshold_percent": "7.5",
        "recipients": "a@example.com\nb@example.com",
        "is_active": "on",
    }

    response = staff_client.post(reverse("admin:scraper_pricealertrule_add"), payload)

    assert response.status_code == 302
    rule = PriceAlertRule.objects.get()
    assert rule.recipient_list == ["a@example.com", "b@example.com"]
    assert rule.threshold_percent == Decimal("7.5")


def test_alert_list_is_read_only(staff_client: Client) -> None:
    PriceAlertRuleFactory.create()
    url = reverse("admin:scraper_pricealert_changelist")

    assert staff_client.get(url).status_code == 200
    assert staff_client.get(reverse("admin:scraper_pricealert_add")).status_code == 403


def test_other_admin_pages_load(staff_client: Client) -> None:
    for name in ("exchangerate", "pricealertrule", "competitorproduct"):
        response: Any = staff_client.get(reverse(f"admin:scraper_{name}_changelist"))
        assert response.status_code == 200
