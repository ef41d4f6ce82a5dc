"""Segments: per-request evaluation budget, caching, visits and request facts."""

from webapp.settings.env import env

# Past this many milliseconds a request's segment evaluation gives up: no segment matches.
SEGMENTS_BUDGET_MS: float = env.float("SEGMENTS_BUDGET_MS", default=40.0)
# How long a visitor's evaluated conditions are reused (editing a segment drops them).
SEGMENTS_CACHE_SECONDS: int = env.int("SEGMENTS_CACHE_SECONDS", default=60)
# Request header holding the visitor's ISO country code (set by the CDN or a GeoIP proxy).
SEGMENTS_COUNTRY_HEADER: str = env.str("SEGMENTS_COUNTRY_HEADER", default="CF-IPCountry")
# Time zone of the time-of-day and day-of-week conditions (default: TIME_ZONE).
SEGMENTS_TIME_ZONE: str = env.str("SEGMENTS_TIME_ZONE", default="UTC")
# A request this long after the visitor's previous one starts a new visit.
SEGMENTS_VISIT_GAP_SECONDS: int = env.int("SEGMENTS_VISIT_GAP_SECONDS", default=30 * 60)
# Custom context keys a client app may store per visitor.
SEGMENTS_CONTEXT_MAX_KEYS: int = env.int("SEGMENTS_CONTEXT_MAX_KEYS", default=50)
