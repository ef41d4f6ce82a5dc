"""Experiments that target a segment: non-members get no variant and no exposure."""

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.factories import VisitorFactory, experiment_with_variants
from tests.webapp.segments.factories import VisitorProfileFactory, segment_with
from webapp.experiments.models import Exposure
from webapp.experiments.selectors import experiment_decide, experiments_decide
from webapp.experiments.services import exposures_record
from webapp.models import Visitor

pytestmark = pytest.mark.django_db


def mobile_visitor(device: str) -> Visitor:
    visitor = VisitorFactory.create()
    VisitorProfileFactory.create(visitor=visitor, device_type=device)
    return visitor


def test_only_segment_members_get_a_variant_and_an_exposure() -> None:
    mobile = segment_with({"attribute": "device_type", "operator": "eq", "value": "mobile"})
    targeted = experiment_with_variants(segment=mobile)
    open_to_all = experiment_with_variants()
    members = [mobile_visitor("mobile") for _ in range(5)]
    others = [mobile_visitor("desktop") for _ in range(5)]
    for visitor in members + others:
        decisions = experiments_decide(placement="home_top_picks", visitor=visitor)
        exposures_record(decisions=decisions, visitor=visitor)
        expected = {open_to_all.key, targeted.key} if visitor in members else {open_to_all.key}
        assert {d.experiment_key for d in decisions} == expected
        single = experiment_decide(experiment=targeted, visitor=visitor)
        assert (single is not None) == (visitor in members)
    exposed = set(Exposure.objects.filter(experiment=targeted).values_list("visitor", flat=True))
    assert exposed == {v.pk for v in members}
    assert Exposure.objects.filter(experiment=open_to_all).count() == 10


def test_an_exposed_person_keeps_the_variant_after_leaving_the_segment() -> None:
    mobile = segment_with({"attribute": "device_type", "operator": "eq", "value": "mobile"})
    experiment = experiment_with_variants(segment=mobile)
    visitor = mobile_visitor("mobile")
    [decision] = experiments_decide(placement="home_top_picks", visitor=visitor)
    exposures_record(decisions=[decision], visitor=visitor)
    visitor.profile.device_type = "desktop"
    visitor.profile.save()
    mobile.conditions.get().save()  # drops cached memberships (a new definitions version)
    [again] = experiments_decide(placement="home_top_picks", visitor=visitor)
    assert (again.variant_key, again.already_exposed) == (decision.variant_key, True)
    assert experiment.key == again.experiment_key


def test_the_experiment_admin_offers_the_segment(db: Any) -> None:
    segment = segment_with({"attribute": "logged_in", "operator": "eq", "value": "yes"})
    experiment = experiment_with_variants()
    User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client = Client()
    client.login(username="boss", password="pw-boss-123")
    page = client.get(reverse("admin:experiments_experiment_change", args=[experiment.pk]))
    assert 'name="segment"' in page.content.decode()
    assert f'<option value="{segment.pk}">{segment.name}</option>' in page.content.decode()
