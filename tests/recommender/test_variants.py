"""Experiments while serving: a variant's strategy, its cache key, exposures, event context."""

from typing import Any

import pytest
from django.test import Client

from recommender.candidates import Section
from tests.factories import ExposureFactory, experiment_with_variants
from tests.recommender.conftest import ServingWorld, view
from tests.recommender.test_api import cookie_client
from webapp.experiments.models import Experiment, Exposure, Variant, variant_config_errors
from webapp.experiments.selectors import experiment_decide
from webapp.models import Interaction, Visitor

pytestmark = pytest.mark.django_db

URL = "/api/recommendations/"


def top_picks_experiment(treatment: dict[str, Any]) -> Experiment:
    experiment = experiment_with_variants(key="picks", placement=Section.TOP_PICKS)
    Variant.objects.filter(experiment=experiment, key="v1").update(config=treatment)
    return experiment


def visitors_in(experiment: Experiment, world: ServingWorld) -> dict[str, Visitor]:
    """One visitor with a history (cluster 1) in each variant, by the real hash."""
    found: dict[str, Visitor] = {}
    while len(found) < 2:
        visitor = Visitor.objects.create()
        decision = experiment_decide(experiment=experiment, visitor=visitor)
        assert decision is not None
        if decision.variant_key not in found:
            for item in world.clusters[1][:3]:
                view(visitor, item)
            found[decision.variant_key] = visitor
    return found


def section_of(html: str, section: str) -> str:
    start = html.index(f'data-section="{section}"')
    return html[start : html.index("</section>", start)]


def test_each_variant_serves_its_strategy_on_the_page_and_is_exposed_once(
    world: ServingWorld,
) -> None:
    experiment = top_picks_experiment({"strategy": "trending"})
    visitors = visitors_in(experiment, world)

    pages = {key: cookie_client(v).get("/").content.decode() for key, v in visitors.items()}
    cookie_client(visitors["v1"]).get("/")  # a second page view exposes nobody again

    control = section_of(pages["control"], Section.TOP_PICKS)
    treatment = section_of(pages["v1"], Section.TOP_PICKS)
    assert 'data-variant="picks=control"' in control and "Top picks for you" in control
    assert 'data-variant="picks=v1"' in treatment and "Trending now" in treatment
    assert 'data-pp-model="trending"' in treatment and 'data-pp-model="ease"' in control
    exposures = Exposure.objects.filter(experiment=experiment)
    assert sorted(exposures.values_list("variant__key", flat=True)) == ["control", "v1"]
    assert {e.visitor_id for e in exposures} == {v.pk for v in visitors.values()}


def test_the_api_serves_the_variant_and_caches_each_variant_apart(world: ServingWorld) -> None:
    experiment = top_picks_experiment({"strategy": "popular"})
    visitors = visitors_in(experiment, world)

    answers = {
        key: cookie_client(v).get(URL, {"placement": "home", "k": "4"}).json()
        for key, v in visitors.items()
    }
    again = cookie_client(visitors["v1"]).get(URL, {"placement": "home", "k": "4"})

    assert answers["control"]["variant"] == "picks=control"
    assert {i["source"]["model"] for i in answers["control"]["items"]} == {"ease"}
    assert answers["v1"]["variant"] == "picks=v1"
    assert {i["source"]["model"] for i in answers["v1"]["items"]} == {"popular"}
    assert again.headers["X-Recommendations-Cache"] == "hit" and again.json() == answers["v1"]
    assert Exposure.objects.filter(experiment=experiment).count() == 2


def test_a_pinned_model_version_serves_that_version(world: ServingWorld) -> None:
    answer = Client().get(URL, {"placement": "home", "k": "1"})  # loads the active model
    assert answer.status_code == 200
    from ml.models import ModelVersion

    version = ModelVersion.objects.get(role="home", status="active")
    experiment = top_picks_experiment({"strategy": "model", "model_version": version.pk})
    visitors = visitors_in(experiment, world)

    body = cookie_client(visitors["v1"]).get(URL, {"placement": "home", "k": "3"}).json()

    assert body["variant"] == "picks=v1"
    assert {item["source"]["version"] for item in body["items"]} == {version.pk}


def test_events_carry_the_visitor_s_variants_filled_in_by_the_server(
    world: ServingWorld,
) -> None:
    experiment = top_picks_experiment({"strategy": "trending"})
    visitor = visitors_in(experiment, world)["v1"]
    client = cookie_client(visitor)
    client.get("/")  # exposed now

    client.get(f"/i/{world.clusters[2][0].external_id}/")

    last_view = Interaction.objects.filter(visitor=visitor).latest("pk")
    assert last_view.context["variants"] == {"picks": "v1"}


def test_erasing_a_visitor_erases_their_exposures(world: ServingWorld, keyed_client: Any) -> None:
    visitor = Visitor.objects.create()
    ExposureFactory.create(visitor=visitor)

    response = keyed_client.delete(f"/api/visitors/{visitor.key}/")

    assert response.status_code == 200 and response.json()["exposures"] == 1
    assert not Exposure.objects.exists()


def test_a_layout_experiment_renders_each_variant_s_template_and_exposes_it(
    world: ServingWorld,
) -> None:
    experiment = experiment_with_variants(key="layout", placement="home_layout")
    Variant.objects.filter(experiment=experiment, key="v1").update(
        config={"template": "shop/home_compact.html"}
    )
    visitors = visitors_in(experiment, world)

    pages = {key: cookie_client(v).get("/").content.decode() for key, v in visitors.items()}

    assert 'data-layout="standard"' in pages["control"]
    assert 'data-layout="compact"' in pages["v1"] and 'data-layout="standard"' not in pages["v1"]
    assert 'data-section="home_top_picks"' in pages["v1"]  # the sections are all there
    assert Exposure.objects.filter(experiment=experiment).count() == 2


def test_a_category_order_experiment_ranks_the_treatment_s_category_pages_for_them(
    world: ServingWorld,
) -> None:
    experiment = experiment_with_variants(key="catorder", placement="category_order")
    Variant.objects.filter(experiment=experiment, key="v1").update(
        config={"category_order": "personalized"}
    )
    visitors = visitors_in(experiment, world)
    url = f"/c/{world.categories[1].slug}/"

    pages = {key: cookie_client(v).get(url) for key, v in visitors.items()}
    chosen = cookie_client(visitors["v1"]).get(url, {"sort": "title"})

    assert '<option value="for_you" selected>' in pages["v1"].content.decode()
    assert '<option value="for_you" selected>' not in pages["control"].content.decode()
    assert '<option value="title" selected>' in chosen.content.decode()  # the visitor's pick
    for response in pages.values():
        assert "private" in response.headers["Cache-Control"]
    assert Exposure.objects.filter(experiment=experiment).count() == 2
    assert "Unknown category order" in variant_config_errors({"category_order": "random"})[0]


@pytest.mark.parametrize("template", ["shop/nope.html", "../../etc/passwd", 7])
def test_a_variant_naming_an_unknown_template_is_refused(template: object) -> None:
    errors = variant_config_errors({"strategy": "model", "template": template})

    assert errors and "Unknown template" in errors[0]
