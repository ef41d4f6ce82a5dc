"""What a request tells about the visit it starts: referrer, UTM, device and country.

The device classifier is deliberately small (a few regular expressions over the
User-Agent, the same split most analytics tools use): bots first (the site's own bot
list), then tablets (iPad, Android without "Mobile", Kindle/Silk, tablet keywords), then
phones ("Mobi", iPhone, Android phones, Windows Phone), else desktop.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest

from webapp.segments.attributes import COUNTRY
from webapp.services.visitors import user_agent_is_bot

TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|nexus (7|9|10)|sm-t\d", re.IGNORECASE)
ANDROID = re.compile(r"android", re.IGNORECASE)
MOBILE = re.compile(r"mobi|iphone|ipod|windows phone|blackberry|opera mini", re.IGNORECASE)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
UTM_MAX_LENGTH = 200
# Cloudflare's codes for "unknown" and "Tor": no country.
NO_COUNTRY = frozenset({"XX", "T1"})


def device_type_of(user_agent: str) -> str:
    """mobile, tablet, desktop or bot."""
    if user_agent_is_bot(user_agent):
        return "bot"
    if TABLET.search(user_agent) or (
        ANDROID.search(user_agent) and "mobile" not in user_agent.lower()
    ):
        return "tablet"
    if MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


def referrer_domain_of(referrer: str, *, own_host: str) -> str:
    """The referring site's host, lowercase without "www."; empty for none or this site."""
    host = (urlsplit(referrer).hostname or "").lower().removeprefix("www.")
    own = own_host.split(":")[0].lower().removeprefix("www.")
    return "" if host == own else host[:255]


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """The facts of a visit's landing request that segments remember."""

    referrer_domain: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    device_type: str = "desktop"
    country: str = ""


def visit_facts_of(request: HttpRequest) -> VisitFacts:
    """Facts from the landing request (UTM values lowercased and cut to 200 characters)."""
    country = request.headers.get(settings.SEGMENTS_COUNTRY_HEADER, "").strip().upper()
    utm = {f: request.GET.get(f, "").strip().lower()[:UTM_MAX_LENGTH] for f in UTM_FIELDS}
    return VisitFacts(
        referrer_domain=referrer_domain_of(
            request.headers.get("Referer", ""), own_host=request.get_host()
        ),
        device_type=device_type_of(request.headers.get("User-Agent", "")),
        country=country if COUNTRY.match(country) and country not in NO_COUNTRY else "",
        **utm,
    )
