"""A new segment-definitions version whenever a segment or a condition changes."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from webapp.segments.models import Segment, SegmentCondition
from webapp.segments.services import segment_definitions_changed


@receiver([post_save, post_delete], sender=Segment)
@receiver([post_save, post_delete], sender=SegmentCondition)
def segments_changed(sender: type, **kwargs: Any) -> None:
    segment_definitions_changed()
