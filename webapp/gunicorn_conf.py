"""gunicorn settings used by bin/run and the benchmarks: warm serving before traffic."""

from typing import Any


def post_worker_init(worker: Any) -> None:
    """Load the active models and the trending list before the first request arrives."""
    from recommender.active_models import serving_warm_up
    from recommender.trending import NEW_ARRIVALS, TRENDING

    loaded = serving_warm_up()
    TRENDING.get()
    NEW_ARRIVALS.get()
    worker.log.info("serving warm: %s", ", ".join(loaded) or "no active model yet")
