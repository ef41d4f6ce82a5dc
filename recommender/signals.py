"""Signal receivers: forget this process's cached merchandising rules when they (or the
category tree) change; refresh a visitor's cached answer after their new events."""

import logging
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from recommender.answers import precompute_reaches_serving
from recommender.merchandising import merchandising_rules_cache_clear
from recommender.models import MerchandisingRule
from webapp.models import Category
from webapp.services.interactions import events_recorded

logger = logging.getLogger(__name__)


@receiver([post_save, post_delete], sender=MerchandisingRule)
@receiver([post_save, post_delete], sender=Category)
def merchandising_rules_changed(sender: type, **kwargs: Any) -> None:
    merchandising_rules_cache_clear()


@receiver(events_recorded)
def visitor_answers_refresh_queue(sender: type, visitor_pks: frozenset[int], **kwargs: Any) -> None:
    """Queue the refresh of these visitors' home answers, so that their next request after
    an event finds it rendered (RECOMMENDER_REFRESH_AFTER_EVENTS; only with a cache the
    worker shares with the web processes). A broker that cannot take the task costs the
    refresh, never the event: the next request computes the answer itself."""
    if not settings.RECOMMENDER_REFRESH_AFTER_EVENTS or not precompute_reaches_serving():
        return
    from recommender.tasks import refresh_answers

    try:
        refresh_answers.apply_async((sorted(visitor_pks),), retry=False)
    except Exception:  # the broker is down or refuses: log, the event stays stored
        logger.warning("could not queue the refresh of %d answers", len(visitor_pks), exc_info=True)
