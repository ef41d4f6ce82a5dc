"""The books.toscrape.com pages (tests/scraper/data/books-toscrape) served on loopback.

The archive holds 200 product pages and no listings, so the site adds listing pages
(20 books each, rel=next pagination), a sitemap and a robots.txt. Each book is served at
its original path, /catalogue/<slug>/index.html, so the pages' relative links resolve
as they did on the real shop. BOOKS_SELECTORS configures this source "through selectors
only".
"""

import functools
import html
import re
import tarfile
import threading
from pathlib import Path
from typing import Final

from tests.scraper.sites.server import LoopbackSite, Response

REPO_ROOT: Final = Path(__file__).resolve().parents[3]
# A copy of ../shared/data/books-toscrape (scrapy-bench's pages, MIT: see its LICENSE), kept
# with the tests so a clean clone anywhere has it.
BOOKS_ARCHIVE: Final = (
    REPO_ROOT / "tests" / "scraper" / "data" / "books-toscrape" / "bookfiles.tar.gz"
)
LISTING_SIZE: Final = 20

BOOKS_SELECTORS: Final[dict[str, str]] = {
    "title": ".product_main h1::text",
    "price": ".product_main .price_color::text",
    "availability": ".product_main .availability",
    "description": "#product_description + p::text",
    "image": "#product_gallery img::attr(src)",
    "sku": "xpath://table//tr[th[normalize-space()='UPC']]/td/text()",
}

_SLUG_RE: Final = re.compile(rb'href="/catalogue/([^/"]+)/reviews/"')
_MAIN_PRICE_RE: Final = re.compile(r'(<p class="price_color">)[^<]*(</p>)')
_TABLE_PRICE_RE: Final = re.compile(r"(<th>Price \((?:excl|incl)\. tax\)</th><td>)[^<]*(</td>)")
_MAIN_STOCK_RE: Final = re.compile(
    r'(<p class="instock availability">\s*<i class="icon-ok"></i>\s*)[^<]*?(\s*</p>)'
)
_TABLE_STOCK_RE: Final = re.compile(r"(<th>Availability</th>\s*<td>)[^<]*(</td>)")


@functools.cache
def books_pages() -> dict[str, str]:
    """Slug -> page HTML for the 200 archived product pages, in the archive's numeric order."""
    if not BOOKS_ARCHIVE.is_file():
        raise FileNotFoundError(f"books archive missing: {BOOKS_ARCHIVE}")
    members: list[tuple[int, str, str]] = []
    with tarfile.open(BOOKS_ARCHIVE) as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if not (member.isfile() and name.endswith(".html") and name[:-5].isdigit()):
                continue
            handle = archive.extractfile(member)
            data = handle.read() if handle is not None else b""
            slug = _SLUG_RE.search(data)
            if slug is None:
                raise ValueError(f"{member.name} in {BOOKS_ARCHIVE} has no /catalogue/<slug>/ link")
            members.append((int(name[:-5]), slug.group(1).decode(), data.decode("utf-8")))
    return {slug: text for _, slug, text in sorted(members)}


def book_path(slug: str) -> str:
    """The path a book is served at."""
    return f"/catalogue/{slug}/index.html"


class BooksSite(LoopbackSite):
    """The books site server; `set_book` changes a price or stock text between crawls."""

    def __init__(self) -> None:
        super().__init__()
        self._pages = books_pages()
        self._slugs = list(self._pages)
        self._overrides: dict[str, dict[str, str]] = {}
        self._state_lock = threading.Lock()

    @property
    def slugs(self) -> list[str]:
        """Book slugs in listing order."""
        return list(self._slugs)

    def book_url(self, slug: str) -> str:
        """Absolute URL of a book page."""
        return self.url(book_path(slug))

    def listing_urls(self) -> list[str]:
        """The first listing page (the crawl's start URL)."""
        return [self.url("/catalogue/page-1.html")]

    def set_book(
        self, slug: str, *, price: str | None = None, stock_text: str | None = None
    ) -> None:
        """Print another price ("12.34", shown as £12.34) or stock text ("Out of stock")
        on a book's page from now on."""
        if slug not in self._pages:
            raise KeyError(f"no book with slug {slug!r}")
        with self._state_lock:
            changes = self._overrides.setdefault(slug, {})
            if price is not None:
                changes["price"] = f"£{float(price):.2f}"
            if stock_text is not None:
                changes["stock"] = html.escape(stock_text)

    def respond(self, path: str, hit: int) -> Response:
        """Route a request path to its page."""
        route = path.split("?", 1)[0]
        if route in ("/", "/index.html"):
            return self._listing(1)
        if route == "/robots.txt":
            body = f"User-agent: *\nAllow: /\nSitemap: {self.url('/sitemap.xml')}\n"
            return Response(body=body.encode(), content_type="text/plain")
        if route == "/sitemap.xml":
            locs = "".join(f"<url><loc>{self.book_url(s)}</loc></url>" for s in self._slugs)
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>'
            )
            return Response(body=body.encode(), content_type="application/xml")
        listing = re.fullmatch(r"/catalogue/page-(\d+)\.html", route)
        if listing:
            return self._listing(int(listing.group(1)))
        book = re.fullmatch(r"/catalogue/([^/]+)/index\.html", route)
        if book and book.group(1) in self._pages:
            return Response(body=self._book(book.group(1)).encode())
        return Response(404, b"<html><body><h1>404 Not found</h1></body></html>")

    def _book(self, slug: str) -> str:
        text = self._pages[slug]
        with self._state_lock:
            changes = dict(self._overrides.get(slug, {}))
        if "price" in changes:
            text = _MAIN_PRICE_RE.sub(rf"\g<1>{changes['price']}\g<2>", text, count=1)
            text = _TABLE_PRICE_RE.sub(rf"\g<1>{changes['price']}\g<2>", text)
        if "stock" in changes:
            text = _MAIN_STOCK_RE.sub(rf"\g<1>{changes['stock']}\g<2>", text, count=1)
            text = _TABLE_STOCK_RE.sub(rf"\g<1>{changes['stock']}\g<2>", text)
        return text

    def _listing(self, number: int) -> Response:
        pages = (len(self._slugs) + LISTING_SIZE - 1) // LISTING_SIZE
        if not 1 <= number <= pages:
            return Response(404, b"<html><body><h1>404 Not found</h1></body></html>")
        chunk = self._slugs[(number - 1) * LISTING_SIZE : number * LISTING_SIZE]
        items = "".join(
            f'<li><article class="product_pod"><h3><a href="{slug}/index.html">'
            f"{html.escape(slug)}</a></h3></article></li>"
            for slug in chunk
        )
        head = body_next = ""
        if number < pages:
            head = f'<link rel="next" href="page-{number + 1}.html">'
            body_next = (
                f'<li class="next"><a rel="next" href="page-{number + 1}.html">next</a></li>'
            )
        page = (
            f"<!DOCTYPE html><html><head><title>All products | Books to Scrape</title>{head}"
            f'</head><body><h1>All products</h1><ol class="row">{items}</ol>'
            f'<ul class="pager"><li class="current">Page {number} of {pages}</li>{body_next}</ul>'
            "</body></html>"
        )
        return Response(body=page.encode())
