"""The fixture shop: a loopback site rendered from data/fixture_shop_truth.json.

Listings per category with rel=next pagination, product pages in four markup kinds
(JSON-LD, microdata, OpenGraph, none), robots.txt, sitemap.xml, and trap pages: a 429
with Retry-After, a page that fails twice, one that always fails, a slow page, a redirect
loop, a huge body, a PDF, malformed HTML and XSS payloads in product text.
"""

import copy
import json
import threading
from html import escape
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from tests.scraper.sites import fixture_pages
from tests.scraper.sites.server import LoopbackSite, Response

TRUTH_PATH: Final = Path(__file__).resolve().parent.parent / "data" / "fixture_shop_truth.json"
PAGE_SIZE: Final = 5
DISALLOWED_PREFIX: Final = "/private/"
# Trap pages: linked from the first kitchen listing, shaped like product links.
SLOW_PATH: Final = "/product/slow-item/"
ALWAYS_500_PATH: Final = "/product/always-500/"
LOOP_PATHS: Final = ("/product/loop-a/", "/product/loop-b/")
HUGE_PATH: Final = "/product/huge-item/"
PDF_PATH: Final = "/product/manual.pdf"
MISSING_PATH: Final = "/product/gone-missing/"
TRAP_PATHS: Final = (SLOW_PATH, ALWAYS_500_PATH, LOOP_PATHS[0], HUGE_PATH, PDF_PATH, MISSING_PATH)


def fixture_truth() -> list[dict[str, Any]]:
    """The product records of the truth file (fields as extract_product names them,
    URLs as paths on the shop), plus markup, behaviour and page-only keys."""
    data = json.loads(TRUTH_PATH.read_text(encoding="utf-8"))
    products: list[dict[str, Any]] = data["products"]
    return products


class FixtureShop(LoopbackSite):
    """The fixture shop server. `slow_delay_s` is how long SLOW_PATH sleeps (make it longer
    than the crawler's timeout); `huge_bytes` is the size of HUGE_PATH's body."""

    def __init__(self, *, slow_delay_s: float = 3.0, huge_bytes: int = 12 * 1024 * 1024) -> None:
        super().__init__()
        self.slow_delay_s = slow_delay_s
        self.huge_bytes = huge_bytes
        self._products = {p["id"]: p for p in fixture_truth()}
        self._by_path = {p["path"]: p for p in self._products.values()}
        self._state_lock = threading.Lock()
        self._huge_body: bytes | None = None

    # --- truth and state ------------------------------------------------------------

    @property
    def categories(self) -> list[str]:
        """Category names in the order of the truth file."""
        return list(dict.fromkeys(p["category"] for p in self._products.values()))

    def products(self, *, include_private: bool = False) -> list[dict[str, Any]]:
        """Current product records (copies); the private one only when asked for."""
        with self._state_lock:
            return [
                copy.deepcopy(p)
                for p in self._products.values()
                if include_private or p["behaviour"] != "private"
            ]

    def product(self, product_id: str) -> dict[str, Any]:
        """The current record of one product (a copy)."""
        with self._state_lock:
            return copy.deepcopy(self._products[product_id])

    def truth(self, product_id: str) -> dict[str, Any]:
        """The fields extract_product should return for a product, URLs made absolute."""
        record = self.product(product_id)
        fields = {k: record[k] for k in _FIELD_KEYS}
        for key in ("image", "canonical_url"):
            fields[key] = self.url(record[key])
        return fields

    def set_product(
        self,
        product_id: str,
        *,
        price: str | None = None,
        availability: str | None = None,
        availability_text: str | None = None,
    ) -> None:
        """Change a product's price ("12.50") or availability ("InStock"/"OutOfStock")
        before the next crawl; the page text follows."""
        if availability not in (None, "InStock", "OutOfStock"):
            raise ValueError(f"availability must be InStock or OutOfStock, not {availability!r}")
        with self._state_lock:
            record = self._products[product_id]
            if price is not None:
                record["price"] = f"{float(price):.2f}"
            if availability is not None:
                record["availability"] = availability
                record["availability_text"] = availability_text or (
                    "In stock" if availability == "InStock" else "Out of stock"
                )

    def product_url(self, product_id: str) -> str:
        """Absolute URL of a product page."""
        return self.url(self._products[product_id]["path"])

    def listing_urls(self) -> list[str]:
        """The first listing page of each category (the crawl's start URLs)."""
        return [self.url(f"/category/{name}/") for name in self.categories]

    # --- responses ------------------------------------------------------------------

    def respond(self, path: str, hit: int) -> Response:
        """Route a request path to its page."""
        parts = urlsplit(path)
        route = parts.path
        if route == "/":
            return self._home()
        if route == "/robots.txt":
            sitemap = self.url("/sitemap.xml")
            body = f"User-agent: *\nDisallow: {DISALLOWED_PREFIX}\nSitemap: {sitemap}\n"
            return Response(body=body.encode(), content_type="text/plain")
        if route == "/sitemap.xml":
            return self._sitemap()
        if route.startswith("/category/"):
            return self._listing(route.split("/")[2], parse_qs(parts.query))
        trap = self._trap(route)
        if trap is not None:
            return trap
        product = self._by_path.get(route)
        if product is None:
            return Response(404, b"<html><body><h1>Not found</h1></body></html>")
        return self._product(product["id"], hit)

    def _home(self) -> Response:
        links = "".join(
            f"<li><a href='/category/{escape(c)}/'>{escape(c.title())}</a></li>"
            for c in self.categories
        )
        html = fixture_pages.page("Home", f"<h1>Fixture Shop</h1><ul>{links}</ul>")
        return Response(body=html.encode())

    def _sitemap(self) -> Response:
        urls = "".join(
            f"<url><loc>{escape(self.url(p['path']))}</loc></url>" for p in self.products()
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        )
        return Response(body=body.encode(), content_type="application/xml")

    def _listing(self, category: str, query: dict[str, list[str]]) -> Response:
        members = [p for p in self.products(include_private=True) if p["category"] == category]
        if not members:
            return Response(404, b"<html><body><h1>No such category</h1></body></html>")
        try:
            number = max(1, int(query.get("page", ["1"])[0]))
        except ValueError:
            number = 1
        chunk = members[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        more = number * PAGE_SIZE < len(members)
        next_url = f"/category/{category}/?page={number + 1}" if more else None
        traps = list(TRAP_PATHS) if category == self.categories[0] and number == 1 else []
        html = fixture_pages.listing_page(category.title(), chunk, traps, next_url)
        return Response(body=html.encode())

    def _product(self, product_id: str, hit: int) -> Response:
        record = self.product(product_id)
        behaviour = record["behaviour"]
        if behaviour == "rate_limited" and hit == 1:
            return Response(429, b"Too many requests", "text/plain", {"Retry-After": "1"})
        if behaviour == "flaky" and hit <= 2:
            return Response(500, b"Internal error", "text/plain")
        others = [p for p in self.products() if p["id"] != product_id]
        index = int(product_id[1:])
        related = [others[(index + k * 7) % len(others)] for k in range(3)]
        html = fixture_pages.product_page(record, self.base_url, related, index)
        if behaviour == "malformed":
            html = fixture_pages.malformed(html)
        return Response(body=html.encode())

    def _trap(self, route: str) -> Response | None:
        if route == SLOW_PATH:
            html = fixture_pages.page("Slow item", "<h1>Slow item</h1><p>£1.00</p>")
            return Response(body=html.encode(), delay_s=self.slow_delay_s)
        if route == ALWAYS_500_PATH:
            return Response(500, b"Internal error", "text/plain")
        if route in LOOP_PATHS:
            target = LOOP_PATHS[1] if route == LOOP_PATHS[0] else LOOP_PATHS[0]
            return Response(302, b"", "text/plain", {"Location": self.url(target)})
        if route == HUGE_PATH:
            return Response(body=self._huge())
        if route == PDF_PATH:
            pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
            return Response(body=pdf, content_type="application/pdf")
        return None

    def _huge(self) -> bytes:
        if self._huge_body is None:
            head = fixture_pages.page("Huge item", "<h1>Huge item</h1><p>£2.00</p>")
            filler = "<p>" + "filler text " * 80 + "</p>\n"
            count = max(1, self.huge_bytes // len(filler))
            self._huge_body = head.replace("</main>", filler * count + "</main>").encode()
        return self._huge_body


_FIELD_KEYS: Final = (
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
