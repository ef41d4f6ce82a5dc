"""What the product spider yields: one product page's extracted fields, as text."""

from dataclasses import dataclass


@dataclass
class ProductItem:
    """A product page as extracted (`scraper.extraction.extract_product`), not yet
    validated: every value is the extractor's text or None. The pipelines validate it."""

    url: str
    canonical_url: str | None = None
    title: str | None = None
    price: str | None = None
    currency: str | None = None
    availability: str | None = None
    sku: str | None = None
    gtin: str | None = None
    mpn: str | None = None
    brand: str | None = None
    image: str | None = None
    description: str | None = None
