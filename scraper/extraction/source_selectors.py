"""Per-source CSS/XPath selectors, the first evidence for any field they name."""

import functools
from collections.abc import Mapping
from typing import Final

from cssselect import SelectorError as CssSyntaxError
from lxml.etree import XPathError
from parsel import Selector, SelectorList

from scraper.extraction.fields import FIELDS
from scraper.extraction.findings import Findings

_XPATH_PREFIX: Final = "xpath:"
# Attributes that hold an element's value when a selector names the element itself.
_VALUE_ATTRIBUTES: Final[dict[str, tuple[str, ...]]] = {
    "img": ("src", "data-src"),
    "link": ("href",),
    "meta": ("content",),
    "a": ("href",),
}
_URL_FIELDS: Final = frozenset({"image", "canonical_url"})


class SelectorConfigError(ValueError):
    """A source's selectors name an unknown field or do not parse."""


def selectors_validate(selectors: Mapping[str, str] | None) -> None:
    """Raise SelectorConfigError naming the field and selector that are unusable."""
    if not selectors:
        return
    for name, expression in selectors.items():
        if not isinstance(name, str) or not isinstance(expression, str):
            raise SelectorConfigError(f"selector for field {name!r} is not text: {expression!r}")
    _selectors_check(tuple(selectors.items()))


@functools.lru_cache(maxsize=256)
def _selectors_check(selectors: tuple[tuple[str, str], ...]) -> None:
    # Cached: a crawl checks the same source's selectors on every page.
    probe = Selector(text="<html></html>")
    for name, expression in selectors:
        if name not in FIELDS:
            raise SelectorConfigError(
                f"selector for unknown field {name!r}; known fields: {', '.join(FIELDS)}"
            )
        if not isinstance(expression, str) or not expression.strip():
            raise SelectorConfigError(f"selector for field {name!r} is empty")
        _select(probe, name, expression)


def selector_findings(
    document: Selector, base_url: str, selectors: Mapping[str, str] | None
) -> Findings:
    """Fields the source's selectors find; a field whose selector matches nothing is left
    to the next evidence source."""
    found = Findings(base_url)
    for name, expression in (selectors or {}).items():
        for value in _values(_select(document, name, expression), name):
            if found.put(name, value):
                break
    return found


def _select(document: Selector, name: str, expression: str) -> SelectorList[Selector]:
    text = expression.strip()
    try:
        if text.lower().startswith(_XPATH_PREFIX):
            return document.xpath(text[len(_XPATH_PREFIX) :].strip())
        if text.startswith(("/", "(")):
            return document.xpath(text)
        return document.css(text)
    except (CssSyntaxError, XPathError, ValueError) as error:
        raise SelectorConfigError(
            f"selector for field {name!r} does not parse: {expression!r} ({error})"
        ) from error


def _values(matches: SelectorList[Selector], name: str) -> list[str]:
    """Each match as text: attribute/text nodes as they are, elements by their value
    attribute (img src, meta content...) or else their whole text."""
    values = []
    for match in matches[:20]:
        root = match.root
        if isinstance(root, str):
            values.append(root)
            continue
        tag = str(getattr(root, "tag", "")).lower()
        attributes = _VALUE_ATTRIBUTES.get(tag, ())
        if tag == "a" and name not in _URL_FIELDS:
            attributes = ()
        attribute_value = next((match.attrib[a] for a in attributes if match.attrib.get(a)), None)
        values.append(attribute_value or match.xpath("normalize-space(string())").get() or "")
    return values
