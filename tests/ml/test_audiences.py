"""Learned audiences: visitors clustered by their embeddings, codes on their profiles."""

from collections import Counter
from typing import Any

import pytest
from django.test import Client

from ml.models import Audience, ModelVersion, ModelVersionStatus
from tests.factories import CategoryFactory
from tests.ml.test_registry import EASE_PLAN, create_clustered_interactions, run_plan
from webapp.models import Interaction, Item, Visitor
from webapp.segments.models import VisitorProfile

pytestmark = pytest.mark.django_db


def test_a_promoted_home_model_learns_one_audience_per_taste_cluster(
    settings: Any, tmp_path: Any
) -> None:
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    create_clustered_interactions()  # 4 clusters of 12 visitors, 8 items each
    root = CategoryFactory.create(name="Everything")  # every item's: describes nobody
    for cluster in range(4):
        genre = CategoryFactory.create(name=f"Genre {cluster}", parent=root)
        Item.objects.filter(external_id__startswith=f"sku-{cluster}-").update(category=genre)

    run = run_plan(EASE_PLAN)

    version = ModelVersion.objects.get(role="home", status=ModelVersionStatus.ACTIVE)
    assert run.status == "succeeded"
    profiles = VisitorProfile.objects.exclude(audience="")
    assert profiles.count() == Visitor.objects.count() == 48
    assert {p.audience_model_version_id for p in profiles} == {version.pk}
    # Every visitor of one taste cluster got the same code (clusters = their first item's)
    code_of_cluster: dict[int, Counter[str]] = {}
    for profile in profiles:
        first = Interaction.objects.filter(visitor_id=profile.visitor_id).order_by("pk").first()
        assert first is not None and first.item is not None
        cluster = int(first.item.external_id.split("-")[1])
        code_of_cluster.setdefault(cluster, Counter())[profile.audience] += 1
    assert all(len(codes) == 1 for codes in code_of_cluster.values())
    assert len({next(iter(c)) for c in code_of_cluster.values()}) == 4
    audiences = Audience.objects.filter(version=version)
    assert sum(a.size for a in audiences) == 48
    assert all(a.top_categories[0][1] == 1.0 for a in audiences if a.size)
    assert {a.top_categories[0][0] for a in audiences if a.size} == {f"Genre {c}" for c in range(4)}
    assert not any(name == "Everything" for a in audiences for name, _ in a.top_categories)


def test_the_admin_lists_audiences_with_their_description(
    settings: Any, tmp_path: Any, admin_client: Client
) -> None:
    settings.ML_ARTIFACT_DIR = tmp_path / "models"
    create_clustered_interactions()
    run_plan(EASE_PLAN)

    page = admin_client.get("/admin/ml/audience/").content.decode()

    audience = Audience.objects.order_by("-size").first()
    assert audience is not None
    assert audience.code in page and f"{audience.size} visitors" in page
