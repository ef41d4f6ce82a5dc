"""gunicorn settings used by bin/run and the benchmarks: warm serving before traffic."""

from typing import Any

# Loading large models (a million items) takes longer than gunicorn's default 30 s.
timeout = 120


def post_worker_init(worker: Any) -> None:
    """Load the active models and the trending list before the first request arrives."""
    from django.urls import get_resolver

    from recommender.active_models import serving_warm_up
    from recommender.trending import NEW_ARRIVALS, TRENDING

    get_resolver().url_patterns  # noqa: B018 - import every view now, not on a request
    loaded = serving_warm_up()
    TRENDING.get()
    NEW_ARRIVALS.get()
    worker.log.info("serving warm: %s", ", ".join(loaded) or "no active model yet")
