"""Turning whatever a response held into a parsed HTML document that never raises."""

import re
from typing import Final
from urllib.parse import urljoin, urlsplit, urlunsplit

from parsel import Selector
from w3lib.encoding import html_to_unicode

# Pages past this many characters are cut: product data sits near the top, and lxml plus
# extruct on tens of megabytes would stall a crawl worker.
MAX_HTML_CHARS: Final = 2_000_000
# XML 1.0 forbids these control characters; lxml refuses strings that hold them.
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def html_decode(html: str | bytes) -> str:
    """Text of the page: bytes decoded by their declared encoding (UTF-8 otherwise),
    control characters dropped, and cut to MAX_HTML_CHARS."""
    if isinstance(html, bytes | bytearray):
        _, text = html_to_unicode(None, bytes(html[: MAX_HTML_CHARS * 4]))
    else:
        text = html
    return _CONTROL_CHARS.sub("", text[:MAX_HTML_CHARS])


def document_parse(text: str) -> Selector:
    """A parsel Selector over `text`; an empty <html/> when the text is not parseable."""
    try:
        return Selector(text=text or "<html></html>", type="html")
    except (ValueError, TypeError):
        return Selector(text="<html></html>", type="html")


def text_clean(value: object) -> str | None:
    """Whitespace collapsed to single spaces; None for empty or non-text values."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = " ".join(str(value).split())
    return text or None


def url_absolute(value: object, base_url: str) -> str | None:
    """`value` resolved against the page URL, only for http(s); fragments dropped."""
    text = text_clean(value)
    if text is None or text.lower().startswith(("javascript:", "data:", "mailto:")):
        return None
    try:
        parts = urlsplit(urljoin(base_url, text))
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))
