"""The fields every extraction returns, and the names of the evidence sources."""

from typing import Final, Literal

FIELDS: Final[tuple[str, ...]] = (
    "title",
    "price",
    "currency",
    "availability",
    "sku",
    "gtin",
    "mpn",
    "brand",
    "image",
    "description",
    "canonical_url",
)

# Evidence sources in the order they are trusted.
EvidenceSource = Literal["selector", "jsonld", "microdata", "opengraph", "heuristic", "page_url"]
SOURCE_ORDER: Final[tuple[EvidenceSource, ...]] = (
    "selector",
    "jsonld",
    "microdata",
    "opengraph",
    "heuristic",
    "page_url",
)

IN_STOCK: Final = "InStock"
OUT_OF_STOCK: Final = "OutOfStock"

# Text fields are cut here so one bloated page cannot fill a database row.
MAX_TEXT_CHARS: Final = 10_000
