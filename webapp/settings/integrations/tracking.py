"""Visitor cookie, consent and retention of raw events."""

from webapp.settings.env import env

VISITOR_COOKIE_NAME = "pp_visitor"
VISITOR_COOKIE_MAX_AGE = 60 * 60 * 24 * 365
CONSENT_COOKIE_NAME = "pp_consent"
# When True, no visitor cookie and no behavioural events until the visitor consents.
CONSENT_REQUIRED: bool = env.bool("CONSENT_REQUIRED", default=True)
# 0 keeps raw events forever (the MovieLens demo ratings are from 1997-98).
EVENT_RETENTION_DAYS: int = env.int("EVENT_RETENTION_DAYS", default=0)
SITE_NAME: str = env.str("SITE_NAME", default="Reelshop")
