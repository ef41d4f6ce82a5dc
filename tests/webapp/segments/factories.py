"""Factories for segments (the shared ones live in tests/factories.py)."""

from typing import Any

import factory

from webapp.segments.models import Segment, SegmentCondition, SegmentMatch, VisitorProfile


class SegmentFactory(factory.django.DjangoModelFactory[Segment]):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    match = SegmentMatch.ALL


class SegmentConditionFactory(factory.django.DjangoModelFactory[SegmentCondition]):
    class Meta:
        model = SegmentCondition

    segment = factory.SubFactory(SegmentFactory)
    attribute = "visit_count"
    operator = "gte"
    value = "1"


class VisitorProfileFactory(factory.django.DjangoModelFactory[VisitorProfile]):
    class Meta:
        model = VisitorProfile

    visit_count = 1


def segment_with(*conditions: dict[str, Any], match: str = SegmentMatch.ALL) -> Segment:
    """A segment with these conditions (dicts of SegmentCondition fields; group 1 by default)."""
    segment = SegmentFactory.create(match=match)
    for position, fields in enumerate(conditions):
        SegmentConditionFactory.create(segment=segment, position=position, **fields)
    return segment
