"""Celery tasks of the recommender: keep the shared lists fresh off the request path."""

from celery import shared_task

from recommender.trending import trending_refresh


@shared_task(name="recommender.tasks.refresh_trending", time_limit=5 * 60)
def refresh_trending() -> int:
    """Recompute the trending list in the shared cache; return how many items it holds."""
    return trending_refresh()
