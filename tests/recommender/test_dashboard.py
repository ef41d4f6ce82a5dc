"""The recommendation dashboard: its aggregates against real Postgres, and the staff page."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ml.models import ModelVersion
from recommender.dashboard.charts import ctr_bar_chart
from recommender.dashboard.selectors import (
    DateWindow,
    Metrics,
    dashboard_window_default,
    metrics_by_day,
    metrics_by_model_version,
    metrics_by_placement,
    metrics_by_variant,
    recommendation_dashboard_data,
    recommendation_event_latest_at,
)
from tests.factories import InteractionFactory, ItemFactory, UserFactory, VisitorFactory
from webapp.models import EventType, Interaction, Item, Visitor

pytestmark = pytest.mark.django_db

HOME, SIMILAR = "home_top_picks", "item_similar"
URL = "/admin/recommender/dashboard/"


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def versions() -> tuple[ModelVersion, ModelVersion]:
    trained_at = timezone.now() - timedelta(days=40)
    ease = ModelVersion.objects.create(
        kind="ease", role="home", artifact_path="home-ease", trained_at=trained_at
    )
    knn = ModelVersion.objects.create(
        kind="itemknn", role="similar", artifact_path="similar-knn", trained_at=trained_at
    )
    return ease, knn


class Events:
    """Writes recommendation events for one visitor and item, `days_ago` before now."""

    def __init__(self) -> None:
        self.visitor: Visitor = VisitorFactory.create()
        self.item: Item = ItemFactory.create()

    def add(
        self,
        event_type: str,
        count: int = 1,
        *,
        placement: str = HOME,
        context: dict[str, Any] | None = None,
        value: str | None = None,
        at: datetime | None = None,
        is_bot: bool = False,
    ) -> None:
        InteractionFactory.create_batch(
            count,
            visitor=self.visitor,
            item=self.item,
            event_type=event_type,
            placement=placement,
            context=context or {},
            value=None if value is None else Decimal(value),
            timestamp=at or timezone.now() - timedelta(days=1),
            is_bot=is_bot,
        )


@pytest.fixture
def seeded(versions: tuple[ModelVersion, ModelVersion]) -> Events:
    """Two placements, two model versions, two variants of one experiment, plus noise.

    home_top_picks: 8 ease impressions (ranker=control) and 2 trending ones, 3 clicks,
    2 add-to-carts, 1 purchase of 20.00. item_similar: 4 itemknn impressions
    (ranker=treatment, layout=grid), 2 clicks, 1 add-to-cart, purchases of 5.50 and 4.25.
    """
    ease, knn = versions
    home = {"model": "ease", "model_version": ease.pk, "variants": {"ranker": "control"}}
    similar = {
        "model": "itemknn",
        "model_version": knn.pk,
        "variants": {"ranker": "treatment", "layout": "grid"},
    }
    events = Events()
    events.add(EventType.IMPRESSION, 8, context={**home, "rank": 1})
    events.add(EventType.IMPRESSION, 2, context={"model": "trending", "model_version": None})
    events.add(EventType.CLICK, 3, context=home)
    events.add(EventType.ADD_TO_CART, 2, context=home)
    events.add(EventType.PURCHASE, context=home, value="20.00")
    events.add(EventType.IMPRESSION, 4, placement=SIMILAR, context=similar)
    events.add(EventType.CLICK, 2, placement=SIMILAR, context=similar)
    events.add(EventType.ADD_TO_CART, placement=SIMILAR, context=similar)
    events.add(EventType.PURCHASE, placement=SIMILAR, context=similar, value="5.50")
    events.add(EventType.PURCHASE, placement=SIMILAR, context=similar, value="4.25")
    # Not recommendation traffic: a bot, events without placement, a plain view.
    events.add(EventType.CLICK, 5, context=home, is_bot=True)
    events.add(EventType.CLICK, placement="", context=home)
    events.add(EventType.PURCHASE, placement="", context=home, value="100.00")
    events.add(EventType.VIEW, placement="")
    return events


def last_30_days() -> DateWindow:
    today = timezone.localdate()
    return DateWindow(start=today - timedelta(days=29), end=today)


def test_per_placement_numbers_exclude_bots_and_events_without_placement(seeded: Events) -> None:
    rows = {row.placement: row.metrics for row in metrics_by_placement(window=last_30_days())}

    assert rows == {
        HOME: Metrics(10, 3, 2, 1, Decimal("20.00")),
        SIMILAR: Metrics(4, 2, 1, 2, Decimal("9.75")),
    }
    assert rows[HOME].ctr_text == "30.0%" and rows[SIMILAR].ctr_text == "50.0%"


def test_totals_add_up_the_placements(seeded: Events) -> None:
    data = recommendation_dashboard_data(window=last_30_days())

    assert data.totals == Metrics(14, 5, 3, 3, Decimal("29.75"))
    assert data.totals.ctr_text == "35.7%"


def test_per_model_version_joins_the_registry(
    seeded: Events, versions: tuple[ModelVersion, ModelVersion]
) -> None:
    ease, knn = versions

    rows = {
        (row.source, row.version_id): row for row in metrics_by_model_version(window=last_30_days())
    }

    assert set(rows) == {("ease", ease.pk), ("itemknn", knn.pk), ("trending", None)}
    assert rows["ease", ease.pk].metrics == Metrics(8, 3, 2, 1, Decimal("20.00"))
    assert rows["ease", ease.pk].metrics.ctr_text == "37.5%"
    assert (rows["ease", ease.pk].kind, rows["ease", ease.pk].role) == (
        "ease",
        "Home page top picks",
    )
    assert rows["itemknn", knn.pk].metrics == Metrics(4, 2, 1, 2, Decimal("9.75"))
    assert rows["itemknn", knn.pk].role == "Similar items"
    assert rows["trending", None].metrics == Metrics(impressions=2)
    assert rows["trending", None].metrics.ctr_text == "0.0%"
    assert not rows["trending", None].version_found


def test_per_variant_counts_each_experiment_an_event_is_in(seeded: Events) -> None:
    rows = {
        (row.experiment, row.variant): row.metrics
        for row in metrics_by_variant(window=last_30_days())
    }

    assert rows == {
        ("layout", "grid"): Metrics(4, 2, 1, 2, Decimal("9.75")),
        ("ranker", "control"): Metrics(8, 3, 2, 1, Decimal("20.00")),
        ("ranker", "treatment"): Metrics(4, 2, 1, 2, Decimal("9.75")),
    }
    assert rows["ranker", "control"].ctr_text == "37.5%"


def test_variants_that_are_not_an_object_are_skipped() -> None:
    events = Events()
    events.add(EventType.IMPRESSION, context={"variants": "broken"})
    events.add(EventType.IMPRESSION, context={"variants": {"ranker": "control"}})

    rows = metrics_by_variant(window=DateWindow())

    assert [(row.experiment, row.variant, row.metrics.impressions) for row in rows] == [
        ("ranker", "control", 1)
    ]


def test_daily_rows_split_days_and_placements(seeded: Events) -> None:
    seeded.add(EventType.IMPRESSION, 3, at=timezone.now() - timedelta(days=3))

    rows = metrics_by_day(window=last_30_days())

    assert [(row.placement, row.metrics.impressions) for row in rows] == [
        (HOME, 3),
        (HOME, 10),
        (SIMILAR, 4),
    ]
    assert rows[0].day.date() == timezone.localdate() - timedelta(days=3)


def test_date_window_filters_by_inclusive_days() -> None:
    events = Events()
    for day in (date(1998, 3, 1), date(1998, 3, 2), date(1998, 3, 3)):
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.get_current_timezone())
        events.add(EventType.IMPRESSION, day.day, at=noon)

    def impressions(window: DateWindow) -> int:
        return recommendation_dashboard_data(window=window).totals.impressions

    assert impressions(DateWindow(start=date(1998, 3, 2), end=date(1998, 3, 2))) == 2
    assert impressions(DateWindow(start=date(1998, 3, 1), end=date(1998, 3, 2))) == 3
    assert impressions(DateWindow(start=date(1998, 3, 3))) == 3
    assert impressions(DateWindow()) == 6
    assert impressions(last_30_days()) == 0


def test_default_window_is_the_last_30_days_or_up_to_the_newest_event() -> None:
    today = date(2025, 6, 30)
    recent = datetime(2025, 6, 10, tzinfo=timezone.get_current_timezone())
    old = datetime(1998, 4, 22, 23, tzinfo=timezone.get_current_timezone())

    assert dashboard_window_default(today=today, latest_event_at=None) == DateWindow(
        start=date(2025, 6, 1), end=today
    )
    assert dashboard_window_default(today=today, latest_event_at=recent) == DateWindow(
        start=date(2025, 6, 1), end=today
    )
    assert dashboard_window_default(today=today, latest_event_at=old) == DateWindow(
        start=date(1998, 3, 24), end=date(1998, 4, 22)
    )


def test_latest_event_ignores_bots_and_events_without_placement() -> None:
    events = Events()
    newest = timezone.now() - timedelta(hours=1)
    events.add(EventType.IMPRESSION, at=newest - timedelta(days=2))
    events.add(EventType.IMPRESSION, at=newest - timedelta(days=1))
    events.add(EventType.IMPRESSION, at=newest, is_bot=True)
    events.add(EventType.VIEW, placement="", at=newest)

    assert recommendation_event_latest_at() == newest - timedelta(days=1)


def test_bar_widths_are_relative_to_the_best_ctr() -> None:
    chart = ctr_bar_chart(
        [
            ("a", Metrics(impressions=10, clicks=5)),
            ("b", Metrics(impressions=10, clicks=1)),
            ("c", Metrics(clicks=3)),
        ]
    )

    assert chart is not None
    assert [(bar.label, bar.value_text, bar.width_percent) for bar in chart.bars] == [
        ("a", "50.0%", 100.0),
        ("b", "10.0%", 20.0),
    ]
    assert ctr_bar_chart([("c", Metrics(clicks=3))]) is None


# The page


@pytest.mark.parametrize("is_staff", [False, None])
def test_page_redirects_anonymous_and_non_staff_to_login(client: Client, is_staff: Any) -> None:
    if is_staff is not None:
        client.force_login(UserFactory.create(is_staff=is_staff))

    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_url_is_named() -> None:
    assert reverse("recommendation-dashboard") == URL


def test_staff_page_shows_numbers_and_charts(staff_client: Client, seeded: Events) -> None:
    response = staff_client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Recommendation performance" in html
    assert html.count('<figure class="chart rec-chart">\n<svg') == 3 and "<polyline" in html
    assert html.count('<ul class="rec-bars"') == 2
    for text in ("30.0%", "50.0%", "35.7%", "37.5%", "29.75", "20.00", "9.75", "grid"):
        assert text in html
    assert HOME in html and SIMILAR in html and "itemknn" in html
    assert "No recommendation events" not in html
    assert response.context["window"] == last_30_days()


def test_page_with_old_data_shows_the_30_days_up_to_the_newest_event(
    staff_client: Client,
) -> None:
    events = Events()
    old = datetime(1998, 4, 22, 12, tzinfo=timezone.get_current_timezone())
    events.add(EventType.IMPRESSION, 4, at=old)
    events.add(EventType.CLICK, at=old)
    events.add(EventType.IMPRESSION, 4, at=old - timedelta(days=60))

    response = staff_client.get(URL)

    html = response.content.decode()
    assert response.context["window"] == DateWindow(start=date(1998, 3, 24), end=date(1998, 4, 22))
    assert "Nothing in the last 30 days" in html and "1998-04-22" in html
    assert response.context["data"].totals == Metrics(impressions=4, clicks=1)
    assert "25.0%" in html


def test_all_time_and_explicit_dates(staff_client: Client) -> None:
    events = Events()
    old = datetime(1998, 4, 22, 12, tzinfo=timezone.get_current_timezone())
    events.add(EventType.IMPRESSION, 4, at=old)
    events.add(EventType.IMPRESSION, 2, at=old - timedelta(days=60))

    all_time = staff_client.get(URL, {"period": "all"})
    picked = staff_client.get(URL, {"start": "1998-02-01", "end": "1998-02-28"})

    assert all_time.context["window"].is_all_time
    assert all_time.context["data"].totals.impressions == 6
    assert picked.context["window"] == DateWindow(start=date(1998, 2, 1), end=date(1998, 2, 28))
    assert picked.context["data"].totals.impressions == 2
    assert "Nothing in the last 30 days" not in picked.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"start": "not-a-date"},
        {"end": "2024-13-45"},
        {"start": "2024-05-02", "end": "2024-05-01"},
        {"start": "9999-01-01"},
        {"end": "0001-01-01"},
        {"period": "forever"},
    ],
)
def test_bad_date_params_fall_back_to_the_default_with_a_message(
    staff_client: Client, params: dict[str, str]
) -> None:
    response = staff_client.get(URL, params)

    assert response.status_code == 200
    assert response.context["window"] == last_30_days()
    assert "Showing the default range instead." in response.content.decode()


def test_empty_state(staff_client: Client) -> None:
    Events().add(EventType.VIEW, placement="")

    response = staff_client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "No recommendation events yet" in html and "<polyline" not in html


def test_admin_index_links_to_the_dashboard(staff_client: Client) -> None:
    response = staff_client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert f'href="{URL}"' in response.content.decode()


def test_page_query_count_does_not_grow_with_events(
    staff_client: Client, seeded: Events, versions: tuple[ModelVersion, ModelVersion]
) -> None:
    staff_client.get(URL)  # warm up: session, visitor cookie
    with CaptureQueriesContext(connection) as few:
        staff_client.get(URL)

    for days_ago, placement in enumerate(
        ("home_trending", "home_new", "email", "item_also_viewed")
    ):
        context = {"model": "ease", "model_version": versions[0].pk, "variants": {"x": placement}}
        at = timezone.now() - timedelta(days=days_ago + 2)
        seeded.add(EventType.IMPRESSION, 3, placement=placement, context=context, at=at)
        seeded.add(EventType.CLICK, placement=placement, context=context, at=at)
    assert Interaction.objects.values("placement").distinct().count() == 7
    with CaptureQueriesContext(connection) as many:
        response = staff_client.get(URL)

    assert response.status_code == 200 and len(response.context["data"].placements) == 6
    # session, user, newest event, placements, model versions + registry, variants, days
    assert len(many) == len(few) == 8
