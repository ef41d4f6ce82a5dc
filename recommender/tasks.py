"""Celery tasks of the recommender: keep the shared lists fresh off the request path."""

from celery import shared_task

from recommender.answers import answers_precompute, answers_refresh, precompute_reaches_serving
from recommender.trending import trending_refresh


@shared_task(name="recommender.tasks.refresh_trending", time_limit=5 * 60, soft_time_limit=4 * 60)
def refresh_trending() -> int:
    """Recompute the trending list in the shared cache; return how many items it holds."""
    return trending_refresh()


@shared_task(name="recommender.tasks.precompute_recommendations", time_limit=3 * 60 * 60)
def precompute_recommendations() -> int:
    """Fill the home answers of recently active visitors (queued after each training);
    return how many answers were cached."""
    if not precompute_reaches_serving():
        return 0  # per-process caches: the web processes compute on their first request
    return answers_precompute().answers


@shared_task(
    name="recommender.tasks.refresh_answers",
    time_limit=5 * 60,
    soft_time_limit=4 * 60,
    acks_late=False,
)
def refresh_answers(visitor_pks: list[int]) -> int:
    """Render the home answers of visitors who just logged events (queued on commit of
    their events); return how many were rendered (already cached ones are skipped)."""
    return answers_refresh(visitor_pks)
