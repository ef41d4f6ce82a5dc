"""Product fields from one HTML page, as a pure function (no Django, no database)."""

from scraper.extraction.extractor import (
    ProductExtraction,
    extract_product,
    extract_product_with_sources,
)
from scraper.extraction.fields import FIELDS, SOURCE_ORDER, EvidenceSource
from scraper.extraction.identifiers import gtin_check_digit_is_valid
from scraper.extraction.prices import price_parse
from scraper.extraction.source_selectors import SelectorConfigError, selectors_validate

__all__ = [
    "FIELDS",
    "SOURCE_ORDER",
    "EvidenceSource",
    "ProductExtraction",
    "SelectorConfigError",
    "extract_product",
    "extract_product_with_sources",
    "gtin_check_digit_is_valid",
    "price_parse",
    "selectors_validate",
]
