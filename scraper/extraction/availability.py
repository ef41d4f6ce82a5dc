"""Availability: schema.org values, OpenGraph values and phrases on the page."""

import re
from typing import Final

from scraper.extraction.fields import IN_STOCK, OUT_OF_STOCK

# schema.org ItemAvailability names (and OpenGraph's product:availability words), lowercased
# without separators.
_VALUES: Final[dict[str, str]] = {
    "instock": IN_STOCK,
    "limitedavailability": IN_STOCK,
    "onlineonly": IN_STOCK,
    "instoreonly": IN_STOCK,
    "availablefororder": IN_STOCK,
    "available": IN_STOCK,
    "outofstock": OUT_OF_STOCK,
    "soldout": OUT_OF_STOCK,
    "discontinued": OUT_OF_STOCK,
    "unavailable": OUT_OF_STOCK,
    "notavailable": OUT_OF_STOCK,
}

# Negative phrases are checked first: "not available" contains "available".
_OUT_PHRASES: Final = re.compile(
    r"\b(out[\s-]+of[\s-]+stock|sold[\s-]*out|currently\s+unavailable|unavailable|"
    r"not\s+(?:currently\s+)?(?:available|in\s+stock)|no\s+longer\s+available|discontinued)\b",
    re.IGNORECASE,
)
_IN_PHRASES: Final = re.compile(
    r"\b(in[\s-]+stock|available(?:\s+now)?|ships\s+(?:today|in)|only\s+\d+\s+left)\b",
    re.IGNORECASE,
)


def availability_normalise(value: object) -> str | None:
    """InStock / OutOfStock for a schema.org URL, a schema.org name or an OpenGraph word."""
    if not isinstance(value, str):
        return None
    name = value.strip().rsplit("/", 1)[-1]
    key = re.sub(r"[\s_\-]", "", name).lower()
    if key in _VALUES:
        return _VALUES[key]
    return availability_from_phrase(value) if len(value) < 200 else None


def availability_from_phrase(text: str) -> str | None:
    """InStock / OutOfStock when `text` holds a stock phrase ("sold out", "in stock"...)."""
    if _OUT_PHRASES.search(text):
        return OUT_OF_STOCK
    if _IN_PHRASES.search(text):
        return IN_STOCK
    return None
