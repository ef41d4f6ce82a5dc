"""extract_product: per-source selectors, then markup, then heuristics, field by field."""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from parsel import Selector

from scraper.extraction.document import document_parse, html_decode, url_absolute
from scraper.extraction.fields import FIELDS, EvidenceSource
from scraper.extraction.findings import Findings
from scraper.extraction.heuristics import heuristic_findings
from scraper.extraction.markup import jsonld_findings, microdata_findings, opengraph_findings
from scraper.extraction.source_selectors import selector_findings, selectors_validate

logger = logging.getLogger(__name__)

_MARKUP_LAYERS: Final[tuple[tuple[EvidenceSource, Callable[[Selector, str], Findings]], ...]] = (
    ("jsonld", jsonld_findings),
    ("microdata", microdata_findings),
    ("opengraph", opengraph_findings),
    ("heuristic", heuristic_findings),
)


@dataclass(frozen=True)
class ProductExtraction:
    """The extracted fields and, for each field, the evidence source that gave it."""

    fields: dict[str, str | None]
    sources: dict[str, EvidenceSource | None]


def extract_product(
    html: str | bytes,
    url: str,
    selectors: Mapping[str, str] | None = None,
    *,
    fallback: bool = True,
) -> dict[str, str | None]:
    """Product fields of one page (title, price, currency, availability, sku, gtin, mpn,
    brand, image, description, canonical_url); a field nothing supports is None.

    Evidence order per field: `selectors`, JSON-LD, microdata, OpenGraph/meta tags,
    heuristics, and the page URL for canonical_url. `fallback=False` uses the selectors
    alone (a source configured through selectors only; about five times faster).
    Never raises on page content; raises SelectorConfigError for unusable `selectors`.
    """
    return extract_product_with_sources(html, url, selectors, fallback=fallback).fields


def extract_product_with_sources(
    html: str | bytes,
    url: str,
    selectors: Mapping[str, str] | None = None,
    *,
    fallback: bool = True,
) -> ProductExtraction:
    """Like extract_product, plus which evidence source gave each field (for debugging)."""
    selectors_validate(selectors)
    layers = _layers(html_decode(html), url, selectors, fallback=fallback)
    fields: dict[str, str | None] = dict.fromkeys(FIELDS)
    sources: dict[str, EvidenceSource | None] = dict.fromkeys(FIELDS)
    for name in FIELDS:
        if name == "currency":
            continue
        for source, found in layers:
            if name in found.values:
                fields[name], sources[name] = found.values[name], source
                break
    if fields["price"] is not None:
        fields["currency"], sources["currency"] = _currency(layers, sources["price"])
    return ProductExtraction(fields=fields, sources=sources)


def _layers(
    text: str, url: str, selectors: Mapping[str, str] | None, *, fallback: bool
) -> list[tuple[EvidenceSource, Findings]]:
    layers: list[tuple[EvidenceSource, Findings]] = []
    if text.strip():
        document = document_parse(text)
        if selectors:
            layers.append(("selector", selector_findings(document, url, selectors)))
        for source, find in _MARKUP_LAYERS if fallback else ():
            try:
                layers.append((source, find(document, url)))
            except Exception:  # a page that breaks one source still gets the others
                logger.warning("extraction source %s failed on %s", source, url, exc_info=True)
    page_url = Findings(url)
    absolute = url_absolute(url, url)
    if absolute is not None:
        page_url.values["canonical_url"] = absolute
    layers.append(("page_url", page_url))
    return layers


def _currency(
    layers: list[tuple[EvidenceSource, Findings]], price_source: EvidenceSource | None
) -> tuple[str | None, EvidenceSource | None]:
    """The price's own currency when explicit; else the first explicit one on the page;
    else a guess from a shared symbol such as "$" (USD)."""
    by_source = dict(layers)
    own = by_source.get(price_source) if price_source else None
    if own is not None and own.currency_explicit and "currency" in own.values:
        return own.values["currency"], price_source
    for source, found in layers:
        if found.currency_explicit and "currency" in found.values:
            return found.values["currency"], source
    if own is not None and "currency" in own.values:
        return own.values["currency"], price_source
    for source, found in layers:
        if "currency" in found.values:
            return found.values["currency"], source
    return None, None
