"""Serving recommendations: latency budget, history, filters, diversity, caching, ANN."""

from webapp.settings.env import env

# Past this many milliseconds a request's remaining sections fall back to trending.
RECOMMENDER_LATENCY_BUDGET_MS: float = env.float("RECOMMENDER_LATENCY_BUDGET_MS", default=50.0)
# Postgres statement_timeout of the serving path's queries.
RECOMMENDER_STATEMENT_TIMEOUT_MS: int = env.int("RECOMMENDER_STATEMENT_TIMEOUT_MS", default=40)
# How often a process re-reads which model versions are active.
RECOMMENDER_MODEL_REFRESH_SECONDS: float = env.float(
    "RECOMMENDER_MODEL_REFRESH_SECONDS", default=5.0
)
# Latest item events of a visitor that serving reads.
RECOMMENDER_HISTORY_LENGTH: int = env.int("RECOMMENDER_HISTORY_LENGTH", default=500)
# Events after which an item is not recommended again to that visitor (among their
# latest RECOMMENDER_HISTORY_LENGTH events); drop "view" to re-show what was looked at.
RECOMMENDER_EXCLUDE_EVENTS: list[str] = env.list(
    "RECOMMENDER_EXCLUDE_EVENTS", default=["purchase", "rating", "view"]
)
# At most this share of a section's items from one category (1.0 switches it off).
RECOMMENDER_MAX_CATEGORY_SHARE: float = env.float("RECOMMENDER_MAX_CATEGORY_SHARE", default=0.5)
# Served recommendations are cached this long (new events change the key at once).
RECOMMENDER_CACHE_SECONDS: int = env.int("RECOMMENDER_CACHE_SECONDS", default=300)
RECOMMENDER_TRENDING_SECONDS: int = env.int("RECOMMENDER_TRENDING_SECONDS", default=300)
# Catalogs larger than this retrieve candidates from an ANN index (models with vectors).
RECOMMENDER_ANN_THRESHOLD: int = env.int("RECOMMENDER_ANN_THRESHOLD", default=50_000)
# Origins allowed to call the recommendation API from the browser (the widget).
RECOMMENDER_CORS_ORIGINS: list[str] = env.list("RECOMMENDER_CORS_ORIGINS", default=[])
# Dotted path to a callable (item pks) -> {pk: "cheaper"|"pricier"|"same"}; empty: no prices.
# The scraper's competitor prices by default (the recommender itself never imports it).
RECOMMENDER_PRICE_RELATIONS: str | None = (
    env.str("RECOMMENDER_PRICE_RELATIONS", default="scraper.price_selectors.item_price_relations")
    or None
)
# After each training the home answers of this many recently active visitors are
# rendered into the cache ("precomputed top-N"), living this long (new events, a
# promotion or a merchandising change make them unreachable at once).
RECOMMENDER_PRECOMPUTE_VISITORS: int = env.int("RECOMMENDER_PRECOMPUTE_VISITORS", default=100_000)
RECOMMENDER_PRECOMPUTE_SECONDS: int = env.int("RECOMMENDER_PRECOMPUTE_SECONDS", default=26 * 3600)
# After a visitor's new events the worker renders their home answer at once, so their
# next request is a cache hit (needs the shared Redis cache; see recommender/signals.py).
RECOMMENDER_REFRESH_AFTER_EVENTS: bool = env.bool("RECOMMENDER_REFRESH_AFTER_EVENTS", default=True)
