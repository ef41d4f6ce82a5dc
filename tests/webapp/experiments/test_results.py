"""Experiment results from constructed logs, checked against scipy / statsmodels; the page."""

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.urls import reverse
from scipy import integrate
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from tests.factories import UserFactory, experiment_with_variants
from webapp.experiments.models import Experiment, Exposure
from webapp.experiments.results import ExperimentResults, experiment_results
from webapp.experiments.selectors import experiments_cache_clear
from webapp.models import EventType, Interaction, Visitor

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
NOW = T0 + timedelta(days=7)


@pytest.fixture(autouse=True)
def _clear_cache(db: Any) -> None:
    cache.clear()
    experiments_cache_clear()


def exposed(
    experiment: Experiment,
    variant: str,
    count: int,
    *,
    conflict: bool = False,
    bot: bool = False,
    at: datetime = T0,
) -> list[Visitor]:
    """`count` fresh visitors exposed to `variant` at `at`."""
    visitors = Visitor.objects.bulk_create([Visitor(is_bot=bot) for _ in range(count)])
    chosen = experiment.variants.get(key=variant)
    other = experiment.variants.exclude(key=variant).first() if conflict else None
    Exposure.objects.bulk_create(
        Exposure(
            experiment=experiment,
            variant=chosen,
            person=f"visitor:{v.pk}",
            visitor=v,
            first_exposed_at=at,
            bucket_version=experiment.bucket_version,
            conflict=conflict,
            conflict_variant=other,
        )
        for v in visitors
    )
    return visitors


def log(
    visitors: Sequence[Visitor],
    kind: str,
    *,
    values: Sequence[float] | None = None,
    hours: float = 1,
    placement: str = "home_top_picks",
) -> None:
    """One `kind` event per visitor, `hours` after T0 (purchases carry `values`)."""
    Interaction.objects.bulk_create(
        Interaction(
            visitor=v,
            event_type=kind,
            value=Decimal(f"{values[i]:.2f}") if values is not None else None,
            timestamp=T0 + timedelta(hours=hours),
            placement=placement,
        )
        for i, v in enumerate(visitors)
    )


def buyers(experiment: Experiment, variant: str, n: int, bought: int) -> list[Visitor]:
    visitors = exposed(experiment, variant, n)
    log(visitors[:bought], EventType.PURCHASE, values=[10.0] * bought)
    return visitors


def analyze() -> None:
    """Planner statistics of the tables just filled, as autovacuum keeps them in a live
    database: tables analysed while empty make Postgres pick nested loops that take minutes."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE webapp_interaction, experiments_exposure, webapp_visitor")


def results(experiment: Experiment, **options: Any) -> ExperimentResults:
    experiment.refresh_from_db()
    analyze()
    return experiment_results(experiment, now=NOW, **options)


def test_conversion_per_variant_and_lift_match_statsmodels() -> None:
    experiment = experiment_with_variants(
        primary_metric="conversion", minimum_detectable_effect=0.9
    )
    buyers(experiment, "control", 400, 40)
    buyers(experiment, "v1", 400, 62)

    metric = results(experiment).metric("conversion")

    control, treatment = metric.variants
    assert (control.n, control.conversions, treatment.n, treatment.conversions) == (
        400,
        40,
        400,
        62,
    )
    assert treatment.mean == pytest.approx(62 / 400)
    low, high = proportion_confint(62, 400, alpha=0.05, method="wilson")
    assert (treatment.ci.lower, treatment.ci.upper) == pytest.approx((low, high))
    (lift,) = metric.lifts
    assert lift.absolute == pytest.approx(22 / 400)
    assert lift.relative == pytest.approx(0.55)
    _, p_value = proportions_ztest([62, 40], [400, 400])
    assert lift.p_value == pytest.approx(p_value, rel=1e-9)
    assert lift.test == "two-proportion z-test"
    beat, _ = integrate.quad(
        lambda x: scipy_stats.beta.pdf(x, 63, 339) * scipy_stats.beta.cdf(x, 41, 361), 0, 1
    )
    assert lift.probability_to_beat_control == pytest.approx(beat, abs=1e-6)
    assert lift.significant and lift.verdict == "significantly better"


def test_revenue_matches_scipy_welch() -> None:
    experiment = experiment_with_variants(primary_metric="revenue_per_visitor")
    rng = np.random.default_rng(5)
    amounts = {"control": rng.gamma(2.0, 10.0, 60), "v1": rng.gamma(2.0, 14.0, 50)}
    per_person = {}
    for key, spent in amounts.items():
        visitors = exposed(experiment, key, 90)
        log(visitors[: len(spent)], EventType.PURCHASE, values=list(spent))
        per_person[key] = np.concatenate([np.round(spent, 2), np.zeros(90 - len(spent))])

    metric = results(experiment).metric("revenue_per_visitor")

    (lift,) = metric.lifts
    reference = scipy_stats.ttest_ind(per_person["v1"], per_person["control"], equal_var=False)
    assert lift.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert lift.absolute == pytest.approx(per_person["v1"].mean() - per_person["control"].mean())
    low, high = scipy_stats.t.interval(
        0.95, 89, per_person["v1"].mean(), scipy_stats.sem(per_person["v1"])
    )
    assert (metric.variants[1].ci.lower, metric.variants[1].ci.upper) == pytest.approx((low, high))
    assert lift.test == "Welch t-test"


def test_click_through_is_a_delta_method_ratio_over_persons() -> None:
    experiment = experiment_with_variants()
    rng = np.random.default_rng(11)
    linearised, totals = {}, {}
    for key, rate in (("control", 0.15), ("v1", 0.25)):
        visitors = exposed(experiment, key, 80)
        shown = rng.integers(1, 8, size=80)
        clicked = rng.binomial(shown, rate)
        for visitor, impressions, clicks in zip(visitors, shown, clicked, strict=True):
            log([visitor] * int(impressions), EventType.IMPRESSION)
            log([visitor] * int(clicks), EventType.CLICK)
        ratio = clicked.sum() / shown.sum()
        totals[key] = (int(clicked.sum()), int(shown.sum()))
        linearised[key] = ratio + (clicked - ratio * shown) / shown.mean()

    metric = results(experiment).metric("ctr")

    assert metric.kind == "ratio"
    assert [(r.conversions, r.denominator) for r in metric.variants] == [
        totals["control"],
        totals["v1"],
    ]
    (lift,) = metric.lifts
    reference = scipy_stats.ttest_ind(linearised["v1"], linearised["control"], equal_var=False)
    assert lift.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert metric.variants[0].mean == pytest.approx(linearised["control"].mean())
    assert lift.test == "Welch t-test (delta method)"


@pytest.mark.parametrize(
    ("weights", "counts", "warning"),
    [
        ((50, 50), (150, 150), False),
        ((50, 50), (200, 100), True),
        ((50, 50), (45, 5), False),  # p < 0.001 but below the minimum sample
        ((70, 30), (210, 90), False),  # expected shares come from the weights
        ((70, 30), (150, 150), True),
    ],
)
def test_sample_ratio_mismatch_warns_only_when_it_should(
    weights: tuple[int, int], counts: tuple[int, int], warning: bool
) -> None:
    experiment = experiment_with_variants(weights=weights)
    exposed(experiment, "control", counts[0])
    exposed(experiment, "v1", counts[1])

    srm = results(experiment).srm

    assert srm is not None
    expected = [sum(counts) * w / 100 for w in weights]
    assert srm.p_value == pytest.approx(scipy_stats.chisquare(counts, expected).pvalue)
    assert srm.warning is warning


def test_conflicts_and_bots_are_counted_but_left_out() -> None:
    experiment = experiment_with_variants(primary_metric="conversion")
    buyers(experiment, "control", 10, 5)
    conflicted = exposed(experiment, "control", 3, conflict=True)
    log(conflicted, EventType.PURCHASE, values=[1.0] * 3)
    buyers(experiment, "v1", 10, 2)
    bots = exposed(experiment, "v1", 4, bot=True)
    log(bots, EventType.PURCHASE, values=[1.0] * 4)

    report = results(experiment)

    control, treatment = report.variants
    assert (control.exposures, control.conflicts, control.bots) == (10, 3, 0)
    assert (treatment.exposures, treatment.conflicts, treatment.bots) == (10, 0, 4)
    assert (report.conflicts, report.bots) == (3, 4)
    rows = report.metric("conversion").variants
    assert [(r.n, r.conversions) for r in rows] == [(10, 5), (10, 2)]


@pytest.mark.parametrize(("correction", "method"), [("holm", "holm"), ("bh", "fdr_bh")])
def test_correction_over_non_guardrail_comparisons(correction: str, method: str) -> None:
    experiment = experiment_with_variants(
        weights=(34, 33, 33),
        primary_metric="conversion",
        guardrail_metrics=["revenue_per_visitor"],
        minimum_detectable_effect=0.9,
    )
    buyers(experiment, "control", 300, 30)
    buyers(experiment, "v1", 300, 45)
    buyers(experiment, "v2", 300, 52)

    report = results(experiment, correction=correction)

    lifts = report.metric("conversion").lifts
    raw = [lift.p_value for lift in lifts]
    _, expected, _, _ = multipletests(raw, method=method)
    assert [lift.p_value_adjusted for lift in lifts] == pytest.approx(list(expected))
    assert report.correction == correction
    assert all(lift.p_value_adjusted is None for lift in report.metric("revenue_per_visitor").lifts)


def test_guardrail_alarm_when_revenue_drops() -> None:
    experiment = experiment_with_variants(
        primary_metric="conversion", guardrail_metrics=["revenue_per_visitor"]
    )
    rng = np.random.default_rng(3)
    for key, scale in (("control", 30.0), ("v1", 12.0)):
        visitors = exposed(experiment, key, 120)
        log(visitors, EventType.PURCHASE, values=list(rng.gamma(2.0, scale, 120)))

    report = results(experiment)

    guardrail = report.metric("revenue_per_visitor")
    assert guardrail.role == "guardrail" and guardrail.guardrail_alarm
    assert guardrail.lifts[0].verdict.startswith("ALARM")
    assert report.guardrail_alarms == (guardrail,)


def test_fixed_horizon_says_not_yet_and_sequential_is_more_careful() -> None:
    experiment = experiment_with_variants(
        primary_metric="conversion", minimum_detectable_effect=0.05
    )
    buyers(experiment, "control", 400, 40)
    buyers(experiment, "v1", 400, 62)

    fixed = results(experiment).metric("conversion")
    sequential = results(experiment, sequential=True).metric("conversion")

    assert fixed.plan is not None and not fixed.plan.ready
    assert fixed.lifts[0].p_value < 0.05
    assert not fixed.lifts[0].significant
    assert fixed.lifts[0].verdict.startswith(f"not yet (400 of {fixed.plan.per_variant}")
    assert sequential.lifts[0].sequential
    assert sequential.lifts[0].p_value > fixed.lifts[0].p_value
    width = sequential.lifts[0].absolute_ci.upper - sequential.lifts[0].absolute_ci.lower
    assert width > fixed.lifts[0].absolute_ci.upper - fixed.lifts[0].absolute_ci.lower


def test_cuped_only_with_pre_period_data() -> None:
    experiment = experiment_with_variants(primary_metric="revenue_per_visitor")
    rng = np.random.default_rng(9)
    for key in ("control", "v1"):
        visitors = exposed(experiment, key, 60)
        before = rng.gamma(2.0, 10.0, 60)
        log(visitors, EventType.PURCHASE, values=list(before), hours=-24)
        log(visitors, EventType.PURCHASE, values=list(before + rng.normal(0, 2, 60)))
    plain = experiment_with_variants(primary_metric="revenue_per_visitor")
    for key in ("control", "v1"):
        log(exposed(plain, key, 60), EventType.PURCHASE, values=list(rng.gamma(2.0, 10.0, 60)))

    (lift,) = results(experiment).metric("revenue_per_visitor").lifts
    (plain_lift,) = results(plain).metric("revenue_per_visitor").lifts

    assert lift.cuped is not None and lift.cuped.variance_reduction[0] > 0.5
    assert lift.test == "Welch t-test (CUPED)"
    assert plain_lift.cuped is None


def test_cumulative_timeline_per_day() -> None:
    experiment = experiment_with_variants(primary_metric="conversion")
    buyers(experiment, "control", 4, 2)
    late = exposed(experiment, "v1", 4, at=T0 + timedelta(days=2))
    log(late[:1], EventType.PURCHASE, values=[5.0], hours=49)

    report = results(experiment)

    days = sorted({p.at for p in report.timeline})
    assert len(days) == 8  # T0's day to NOW's day
    control = [p for p in report.timeline if p.variant == "control"]
    assert [p.value for p in control] == [0.5] * 8
    treated = [(p.at, p.value) for p in report.timeline if p.variant == "v1"]
    assert treated[0] == (datetime(2025, 3, 4, tzinfo=UTC), 0.25)


# --- The admin page ----------------------------------------------------------------------


@pytest.fixture
def with_mismatch() -> Experiment:
    experiment = experiment_with_variants(primary_metric="conversion", name="Home ranker")
    buyers(experiment, "control", 200, 20)
    buyers(experiment, "v1", 100, 20)
    analyze()
    return experiment


def results_url(experiment: Experiment, query: str = "") -> str:
    url = reverse("admin:experiments_experiment_results", args=[experiment.pk])
    return f"{url}?{query}" if query else url


def test_staff_sees_the_results_page_with_warnings(
    admin_client: Client, with_mismatch: Experiment
) -> None:
    response = admin_client.get(results_url(with_mismatch, "metric=conversion&mode=fixed"))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="srm-warning"' in page and "Sample ratio mismatch" in page
    assert 'id="exp-lift-chart-title"' in page and 'id="exp-timeline-chart-title"' in page
    assert "Export CSV" in page


def test_page_links_from_the_list_and_the_change_form(
    admin_client: Client, with_mismatch: Experiment
) -> None:
    url = results_url(with_mismatch)
    listing = admin_client.get(reverse("admin:experiments_experiment_changelist"))
    change = admin_client.get(
        reverse("admin:experiments_experiment_change", args=[with_mismatch.pk])
    )
    assert url in listing.content.decode()
    assert url in change.content.decode()


def test_csv_export_has_one_row_per_metric_and_variant(
    admin_client: Client, with_mismatch: Experiment
) -> None:
    response = admin_client.get(results_url(with_mismatch, "format=csv&correction=bh"))

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 4 * 2
    conversion = {r["variant"]: r for r in rows if r["metric"] == "conversion"}
    assert conversion["control"]["exposed"] == "200"
    assert conversion["v1"]["conversions"] == "20"
    assert float(conversion["v1"]["mean"]) == pytest.approx(0.2)
    assert conversion["control"]["p_value"] == ""
    assert float(conversion["v1"]["p_value"]) == pytest.approx(
        proportions_ztest([20, 20], [100, 200])[1]
    )


def test_anonymous_and_non_staff_are_sent_to_login(
    client: Client, with_mismatch: Experiment
) -> None:
    url = results_url(with_mismatch)
    assert client.get(url).status_code == 302
    client.force_login(UserFactory.create(is_staff=False))
    response = client.get(url)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_staff_without_view_permission_gets_403(client: Client, with_mismatch: Experiment) -> None:
    staff = UserFactory.create(is_staff=True)
    client.force_login(staff)
    assert client.get(results_url(with_mismatch)).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_experiment"))
    assert client.get(results_url(with_mismatch)).status_code == 200
