"""Structured markup: schema.org JSON-LD and microdata (via extruct), OpenGraph/meta tags."""

import logging
from collections import deque
from collections.abc import Iterator
from typing import Any, Final

from extruct.jsonld import JsonLdExtractor
from extruct.w3cmicrodata import MicrodataExtractor
from parsel import Selector

from scraper.extraction.findings import Findings

logger = logging.getLogger(__name__)

_PRODUCT_TYPES: Final = frozenset(
    {"product", "individualproduct", "productmodel", "productgroup", "someproducts", "book"}
)
_GTIN_KEYS: Final = ("gtin", "gtin13", "gtin12", "gtin14", "gtin8", "isbn")
_META_FIELDS: Final[dict[str, str]] = {
    "og:title": "title",
    "og:description": "description",
    "og:image": "image",
    "og:image:url": "image",
    "og:image:secure_url": "image",
    "og:url": "canonical_url",
    "product:price:amount": "price",
    "og:price:amount": "price",
    "product:price:currency": "currency",
    "og:price:currency": "currency",
    "product:availability": "availability",
    "og:availability": "availability",
    "product:brand": "brand",
    "og:brand": "brand",
    "product:retailer_item_id": "sku",
    "product:sku": "sku",
    "product:mfr_part_no": "mpn",
    "product:ean": "gtin",
    "product:upc": "gtin",
    "product:gtin": "gtin",
    "product:isbn": "gtin",
}


def jsonld_findings(document: Selector, base_url: str) -> Findings:
    """Fields of the page's main schema.org Product in JSON-LD (@graph and nesting included)."""
    items: list[Any] = []
    extractor = JsonLdExtractor()
    for script in document.xpath('//script[@type="application/ld+json"]'):
        try:
            # One script at a time, so one broken block does not hide the others.
            items.extend(extractor.extract_items(script.root))
        except (ValueError, TypeError, RecursionError) as error:
            logger.debug("skipping unreadable JSON-LD on %s: %s", base_url, error)
    return _product_findings(items, base_url)


def microdata_findings(document: Selector, base_url: str) -> Findings:
    """Fields of the page's main schema.org Product in microdata."""
    try:
        items = MicrodataExtractor().extract_items(document.root, base_url)
    except (ValueError, TypeError, RecursionError, AttributeError) as error:
        logger.debug("skipping unreadable microdata on %s: %s", base_url, error)
        items = []
    return _product_findings([_microdata_as_jsonld(item) for item in items], base_url)


def opengraph_findings(document: Selector, base_url: str) -> Findings:
    """Fields from OpenGraph / product meta tags and <link rel="canonical">."""
    found = Findings(base_url)
    for meta in document.xpath("//meta[@content]"):
        key = (meta.attrib.get("property") or meta.attrib.get("name") or "").strip().lower()
        if key in _META_FIELDS and _META_FIELDS[key] == "price":
            found.put_price(meta.attrib["content"], machine_format=True)
        elif key in _META_FIELDS:
            found.put(_META_FIELDS[key], meta.attrib["content"])
    for href in document.xpath(
        '//link[contains(concat(" ", normalize-space(translate(@rel, "CANONICAL", "canonical")),'
        ' " "), " canonical ")]/@href'
    ).getall():
        found.put("canonical_url", href)
    return found


def _microdata_as_jsonld(value: Any) -> Any:
    """extruct's {"type", "properties"} microdata items in JSON-LD's {"@type", ...} shape."""
    if isinstance(value, list):
        return [_microdata_as_jsonld(v) for v in value]
    if isinstance(value, dict) and "properties" in value:
        node = {k: _microdata_as_jsonld(v) for k, v in value["properties"].items()}
        node["@type"] = value.get("type")
        return node
    return value


def _product_findings(items: list[Any], base_url: str) -> Findings:
    found = Findings(base_url)
    product = next(_product_nodes(items), None)
    if product is None:
        return found
    found.put("title", _text_of(product.get("name")))
    found.put("description", _text_of(product.get("description")))
    found.put("sku", _text_of(product.get("sku")))
    found.put("mpn", _text_of(product.get("mpn")))
    for key in _GTIN_KEYS:
        found.put("gtin", _text_of(product.get(key)))
    found.put("brand", _name_of(product.get("brand")) or _name_of(product.get("manufacturer")))
    found.put("image", _image_of(product.get("image")))
    found.put("canonical_url", _text_of(product.get("url")))
    _put_offer(found, product)
    return found


def _product_nodes(items: list[Any]) -> Iterator[dict[str, Any]]:
    """Product nodes breadth first, so the page's main product comes before nested ones."""
    queue: deque[Any] = deque(items)
    seen = 0
    while queue and seen < 10_000:
        seen += 1
        node = queue.popleft()
        if isinstance(node, list):
            queue.extend(node)
        elif isinstance(node, dict):
            if _is_product(node):
                yield node
            queue.extend(v for v in node.values() if isinstance(v, dict | list))


def _is_product(node: dict[str, Any]) -> bool:
    types = node.get("@type")
    names = types if isinstance(types, list) else [types]
    return any(
        isinstance(name, str) and name.rsplit("/", 1)[-1].lower() in _PRODUCT_TYPES
        for name in names
    )


def _put_offer(found: Findings, product: dict[str, Any]) -> None:
    variants = product.get("hasVariant")
    candidates = [product.get("offers")]
    if isinstance(variants, list | dict):
        candidates.append(variants)
    for offer in _offers(candidates):
        price = offer.get("price", offer.get("lowPrice"))
        spec = offer.get("priceSpecification")
        if price is None and isinstance(spec, dict | list):
            spec = spec[0] if isinstance(spec, list) and spec else spec
            if isinstance(spec, dict):
                price = spec.get("price")
                offer = {**spec, **offer}
        if found.put_price(_text_of(price), machine_format=True):
            found.put("currency", _text_of(offer.get("priceCurrency")))
            found.put("availability", _text_of(offer.get("availability")))
            break
    # An AggregateOffer may keep the availability on the offers it holds.
    for offer in _offers(candidates):
        found.put("availability", _text_of(offer.get("availability")))


def _offers(value: Any) -> Iterator[dict[str, Any]]:
    """Offers in document order, AggregateOffer first and then the offers it holds."""
    if isinstance(value, list):
        for v in value:
            yield from _offers(v)
    elif isinstance(value, dict):
        yield value
        yield from _offers(value.get("offers"))


def _text_of(value: Any) -> Any:
    """The first scalar of a value that may be a list, or a {"@value": ...} object."""
    if isinstance(value, list):
        return _text_of(value[0]) if value else None
    if isinstance(value, dict):
        return value.get("@value", value.get("@id"))
    return value


def _name_of(value: Any) -> Any:
    if isinstance(value, list):
        return _name_of(value[0]) if value else None
    if isinstance(value, dict):
        return value.get("name")
    return value


def _image_of(value: Any) -> Any:
    if isinstance(value, list):
        return _image_of(value[0]) if value else None
    if isinstance(value, dict):
        return value.get("url") or value.get("contentUrl") or value.get("@id")
    return value
