"""Heuristics for pages without markup: the visible text around the title and buy button."""

import re
from typing import Any, Final, NamedTuple

from lxml import etree
from parsel import Selector

from scraper.extraction.availability import availability_from_phrase
from scraper.extraction.document import text_clean
from scraper.extraction.findings import Findings
from scraper.extraction.identifiers import gtin_normalise
from scraper.extraction.prices import ISO_4217

# How far after the title (in text nodes) a price or stock phrase still belongs to it.
_WINDOW: Final = 80
_MAX_TEXT_NODES: Final = 20_000
_SYMBOL_PATTERN: Final = r"(?:[£€¥₹₽₩₺₴₪₫₱]|(?:US|C|CA|A|AU|NZ|HK|R|S)?\$|zł|Kč)"
_CODE_PATTERN: Final = r"\b(?:" + "|".join(sorted(ISO_4217)) + r")\b"
_NUMBER: Final = r"\d[\d.,'\u00a0\u202f ]*\d|\d"
_PRICE_RE: Final = re.compile(
    rf"(?:{_SYMBOL_PATTERN}|{_CODE_PATTERN})\s?(?:{_NUMBER})"
    rf"|(?:{_NUMBER})\s?(?:{_SYMBOL_PATTERN}|{_CODE_PATTERN})"
)
_BUY_RE: Final = re.compile(r"\b(add\s+to\s+(cart|basket|bag)|buy\s+now)\b", re.IGNORECASE)
# Headings that open a block of other products; prices past them are not this product's.
_OTHER_PRODUCTS_RE: Final = re.compile(
    r"related|recently viewed|you may also|also like|customers also|similar|recommended",
    re.IGNORECASE,
)
_SKIPPED_TAGS: Final = frozenset({"script", "style", "noscript", "template", "title", "head"})
_OLD_PRICE_TAGS: Final = frozenset({"del", "s", "strike"})
_OLD_PRICE_CLASS: Final = re.compile(r"old|was|strike|regular|list-?price|rrp", re.IGNORECASE)
_CHROME_TAGS: Final = frozenset({"header", "nav", "footer"})
_PRICE_MARK: Final = re.compile(r"price", re.IGNORECASE)
_HEADINGS: Final = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
# Cells where a bare label ("UPC") needs no colon: the value sits in the next cell.
_LABEL_CELLS: Final = frozenset({"th", "dt", "td"})
_LABELS: Final[dict[str, str]] = {
    "sku": "sku",
    "item number": "sku",
    "item no": "sku",
    "article number": "sku",
    "product code": "sku",
    "upc": "upc",
    "gtin": "gtin",
    "ean": "gtin",
    "ean-13": "gtin",
    "isbn": "gtin",
    "isbn-13": "gtin",
    "barcode": "gtin",
    "mpn": "mpn",
    "model": "mpn",
    "model number": "mpn",
    "manufacturer part number": "mpn",
    "part number": "mpn",
    "brand": "brand",
    "manufacturer": "brand",
}
_LABEL_ALTERNATIVES: Final = "|".join(re.escape(k) for k in sorted(_LABELS, key=len, reverse=True))
_INLINE_LABEL_RE: Final = re.compile(
    rf"^({_LABEL_ALTERNATIVES})\s*[:#]\s*(\S.{{0,99}})$", re.IGNORECASE
)
_BARE_LABEL_RE: Final = re.compile(rf"^({_LABEL_ALTERNATIVES})\s*([:#]?)$", re.IGNORECASE)
# Shorter text in a "description" block is a label ("Details:"), not a description.
_MIN_DESCRIPTION_CHARS: Final = 15
_DESCRIPTION_MARK: Final = re.compile(r"description", re.IGNORECASE)
_IMAGE_AREA: Final = re.compile(r"product|gallery", re.IGNORECASE)


class _Text(NamedTuple):
    """A visible text node and the element it belongs to."""

    text: str
    owner: Any


def heuristic_findings(document: Selector, base_url: str) -> Findings:
    """Fields guessed from visible text: h1/title, price and stock phrase near the title
    or buy button, labelled identifiers, a description block, the product image."""
    found = Findings(base_url)
    body = _body(document)
    if body is None:
        return found
    nodes = _text_nodes(body)
    page_title = _page_title(document)
    heading = _title_heading(body, page_title)
    anchor = _anchor_index(nodes, heading)
    title = text_clean(heading.text_content()) if heading is not None else None
    found.put("title", title or page_title)
    for node in _nearby(nodes, anchor or 0):
        if "price" not in found.values and not _is_old_price(node.owner):
            match = _PRICE_RE.search(node.text) or _PRICE_RE.search(_price_block_text(node.owner))
            if match:
                found.put_price(match.group(0))
        if "availability" not in found.values:
            found.put("availability", availability_from_phrase(node.text))
    _put_labelled_identifiers(found, nodes)
    found.put("description", _description(body) or _meta_description(document))
    found.put("image", _image(body, found.values.get("title")))
    return found


def _body(document: Selector) -> Any:
    root = document.root
    if root is None or not hasattr(root, "iter"):
        return None
    return next(root.iter("body"), None)


def _page_title(document: Selector) -> str | None:
    title = text_clean(document.xpath("//title/text()").get())
    if title is None:
        return None
    # "Product | Shop" or "Product - Shop": the shop's name is not the product's.
    return re.split(r"\s+[|\u2013\u2014-]\s+", title)[0] or None


def _text_nodes(body: Any) -> list[_Text]:
    """Visible text in document order (scripts, styles and comments left out)."""
    nodes: list[_Text] = []
    skipping: Any = None
    for event, element in etree.iterwalk(body, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if skipping is None and tag.lower() in _SKIPPED_TAGS:
                skipping = element
            if skipping is None and tag and element.text and element.text.strip():
                nodes.append(_Text(element.text, element))
        else:
            if skipping is element:
                skipping = None
            parent = element.getparent()
            if skipping is None and element.tail and element.tail.strip() and parent is not None:
                nodes.append(_Text(element.tail, parent))
        if len(nodes) >= _MAX_TEXT_NODES:
            break
    return nodes


def _title_heading(body: Any, page_title: str | None) -> Any:
    """The product's h1: one outside header/nav/footer (where shops put their logo),
    preferring one whose text is also in the page's <title>."""
    headings = list(body.iter("h1"))[:20]
    content = [h for h in headings if not any(a.tag in _CHROME_TAGS for a in h.iterancestors())]
    if page_title:
        for heading in content:
            text = text_clean(heading.text_content())
            if text and text.lower() in page_title.lower():
                return heading
    return (content or headings or [None])[0]


def _anchor_index(nodes: list[_Text], heading: Any) -> int | None:
    """Index of the first text in the title heading; else a little before the buy
    button; else None."""
    if heading is not None:
        for index, node in enumerate(nodes):
            if node.owner is heading or any(a is heading for a in node.owner.iterancestors()):
                return index
    for index, node in enumerate(nodes):
        if _BUY_RE.search(node.text):
            return max(0, index - _WINDOW // 2)
    return None


def _price_block_text(element: Any) -> str:
    """All text of the nearest "price" element around `element`, for prices split over
    several tags (<span>£</span><span>12</span><sup>.99</sup>)."""
    for depth, candidate in enumerate([element, *element.iterancestors()]):
        if depth >= 3:
            break
        marks = f"{candidate.get('class') or ''} {candidate.get('itemprop') or ''}"
        if _PRICE_MARK.search(marks):
            if any(old.tag in _OLD_PRICE_TAGS for old in candidate.iter()):
                return ""  # "was £15 now £12" in one block: joining would find the old one
            text: str = candidate.text_content()
            return "".join(text.split()) if len(text) < 80 else ""
    return ""


def _nearby(nodes: list[_Text], anchor: int) -> list[_Text]:
    window = []
    for node in nodes[anchor : anchor + _WINDOW]:
        if node.owner.tag in ("h2", "h3") and _OTHER_PRODUCTS_RE.search(node.text):
            break
        window.append(node)
    return window


def _is_old_price(element: Any) -> bool:
    for depth, candidate in enumerate([element, *element.iterancestors()]):
        if depth >= 4:
            break
        if candidate.tag in _OLD_PRICE_TAGS:
            return True
        if _OLD_PRICE_CLASS.search(candidate.get("class") or ""):
            return True
    return False


def _put_labelled_identifiers(found: Findings, nodes: list[_Text]) -> None:
    """ "SKU: 123" in one text, or a label text ("UPC", "Brand:") followed by its value."""
    for index, node in enumerate(nodes):
        text = " ".join(node.text.split())
        if len(text) > 120:
            continue
        inline = _INLINE_LABEL_RE.match(text)
        if inline:
            _put_label(found, inline.group(1), inline.group(2))
            continue
        bare = _BARE_LABEL_RE.match(text)
        if bare and index + 1 < len(nodes) and (bare.group(2) or node.owner.tag in _LABEL_CELLS):
            _put_label(found, bare.group(1), nodes[index + 1].text)


def _put_label(found: Findings, label: str, value: str) -> None:
    field = _LABELS[label.lower()]
    if field == "upc":
        # A UPC that passes the check digit is a GTIN; shops also call their own codes "UPC".
        field = "gtin" if gtin_normalise(value) else "sku"
    found.put(field, value)


def _description(body: Any) -> str | None:
    """Text of the first block whose id or class says "description" (its heading left
    out), or of the element right after it when the block is only a heading."""
    checked = 0
    for element in body.iter():
        if not isinstance(element.tag, str):
            continue
        if not _DESCRIPTION_MARK.search(
            (element.get("id") or "") + " " + (element.get("class") or "")
        ):
            continue
        text = _text_without_headings(element)
        if text and len(text) >= _MIN_DESCRIPTION_CHARS:
            return text
        following = element.getnext()
        while following is not None and not isinstance(following.tag, str):
            following = following.getnext()
        if following is not None:
            text = _text_without_headings(following)
            if text and len(text) >= _MIN_DESCRIPTION_CHARS:
                return text
        checked += 1
        if checked >= 5:
            break
    return None


def _text_without_headings(element: Any) -> str | None:
    if element.tag in _HEADINGS:
        return None
    parts = [n.text for n in _text_nodes(element) if not _heading_owned(n.owner, element)]
    return text_clean(" ".join(parts))


def _heading_owned(owner: Any, stop: Any) -> bool:
    for candidate in [owner, *owner.iterancestors()]:
        if candidate is stop:
            return False
        if candidate.tag in _HEADINGS:
            return True
    return False


def _meta_description(document: Selector) -> str | None:
    return text_clean(document.xpath('//meta[@name="description"]/@content').get())


def _image(body: Any, title: str | None) -> str | None:
    """The image whose alt text is the title, else the first one in a product/gallery block."""
    images = [image for image in body.iter("img")][:200]
    if title:
        for image in images:
            if (text_clean(image.get("alt")) or "").lower() == title.lower():
                return _image_source(image)
    for image in images:
        if any(
            _IMAGE_AREA.search((a.get("class") or "") + " " + (a.get("id") or ""))
            for a in image.iterancestors()
        ):
            return _image_source(image)
    return None


def _image_source(image: Any) -> str | None:
    src = image.get("src") or ""
    if not src or src.startswith("data:"):
        src = image.get("data-src") or ""
    return src or None
