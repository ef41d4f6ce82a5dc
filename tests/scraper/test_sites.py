"""The loopback sites answer as the crawl tests and benchmarks expect."""

import http.client
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.scraper.sites.books import BooksSite
from tests.scraper.sites.fixture_shop import (
    ALWAYS_500_PATH,
    HUGE_PATH,
    LOOP_PATHS,
    PDF_PATH,
    SLOW_PATH,
    TRAP_PATHS,
    TRUTH_PATH,
    FixtureShop,
)
from tests.scraper.sites.page_sets import page_fetch


def get(url: str, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_truth_file_has_forty_products_of_every_markup_kind() -> None:
    products = json.loads(TRUTH_PATH.read_text(encoding="utf-8"))["products"]

    assert len(products) == 40
    assert {p["markup"] for p in products} == {"jsonld", "microdata", "opengraph", "none"}
    assert len({p["path"] for p in products}) == 40


def test_listings_paginate_with_rel_next_and_link_traps_and_private(
    fixture_shop: FixtureShop,
) -> None:
    first = page_fetch(fixture_shop.listing_urls()[0])
    second = page_fetch(fixture_shop.url("/category/kitchen/?page=2"))

    assert "rel='next' href='/category/kitchen/?page=2'" in first
    assert all(path in first for path in TRAP_PATHS)
    assert "rel='next'" not in second
    every_page = [
        page_fetch(fixture_shop.url(f"/category/{name}/?page={number}"))
        for name in fixture_shop.categories
        for number in (1, 2)
    ]
    assert sum(html.count("class='card'") for html in every_page) == 40 + len(TRAP_PATHS)
    assert any("href='/private/" in html for html in every_page)


def test_robots_and_sitemap(fixture_shop: FixtureShop) -> None:
    robots = page_fetch(fixture_shop.url("/robots.txt"))
    sitemap = page_fetch(fixture_shop.url("/sitemap.xml"))

    assert "Disallow: /private/" in robots
    assert sitemap.count("<loc>") == 39 and "/private/" not in sitemap


def test_rate_limited_product_answers_429_with_retry_after_once(fixture_shop: FixtureShop) -> None:
    product = next(p for p in fixture_shop.products() if p["behaviour"] == "rate_limited")
    url = fixture_shop.product_url(product["id"])

    first, second = get(url), get(url)

    assert (first[0], first[1]["Retry-After"]) == (429, "1")
    assert second[0] == 200
    assert fixture_shop.hits_for(url) == 2


def test_flaky_page_fails_twice_then_answers(fixture_shop: FixtureShop) -> None:
    product = next(p for p in fixture_shop.products() if p["behaviour"] == "flaky")
    url = fixture_shop.product_url(product["id"])

    assert [get(url)[0] for _ in range(3)] == [500, 500, 200]
    assert [get(fixture_shop.url(ALWAYS_500_PATH))[0] for _ in range(3)] == [500, 500, 500]


def test_redirect_loop_pdf_huge_and_missing(fixture_shop: FixtureShop) -> None:
    status, headers, _ = get(fixture_shop.url(LOOP_PATHS[0]))
    assert (status, headers["Location"]) == (302, fixture_shop.url(LOOP_PATHS[1]))
    with pytest.raises(urllib.error.HTTPError, match="redirect"):
        urllib.request.urlopen(fixture_shop.url(LOOP_PATHS[0]))

    status, headers, body = get(fixture_shop.url(PDF_PATH))
    assert (status, headers["Content-Type"], body[:5]) == (200, "application/pdf", b"%PDF-")
    assert len(get(fixture_shop.url(HUGE_PATH))[2]) > 10 * 1024 * 1024
    assert get(fixture_shop.url("/product/gone-missing/"))[0] == 404


def test_slow_page_outlasts_a_short_timeout() -> None:
    with FixtureShop(slow_delay_s=1.0) as shop:
        with pytest.raises(TimeoutError):
            get(shop.url(SLOW_PATH), timeout=0.3)
        assert get(shop.url(SLOW_PATH), timeout=5)[0] == 200


def test_price_and_stock_changes_show_on_the_page(fixture_shop: FixtureShop) -> None:
    product = fixture_shop.products()[0]

    fixture_shop.set_product(product["id"], price="7.5", availability="OutOfStock")
    html = page_fetch(fixture_shop.product_url(product["id"]))

    assert fixture_shop.truth(product["id"])["price"] == "7.50"
    assert '"price": "7.50"' in html and "OutOfStock" in html
    with pytest.raises(ValueError, match="availability"):
        fixture_shop.set_product(product["id"], availability="Maybe")


def test_xss_payloads_are_escaped_in_the_page_source(fixture_shop: FixtureShop) -> None:
    xss = [p for p in fixture_shop.products() if "<script>" in p["title"]]
    html = page_fetch(fixture_shop.product_url(xss[0]["id"]))

    assert len(xss) == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html


def test_books_site_lists_all_200_books_and_edits_prices(books_site: BooksSite) -> None:
    linked: set[str] = set()
    url: str | None = books_site.listing_urls()[0]
    while url:
        html = page_fetch(url)
        linked.update(part.split('"')[0] for part in html.split('<h3><a href="')[1:])
        nxt = html.split('rel="next" href="')
        url = books_site.url("/catalogue/" + nxt[1].split('"')[0]) if len(nxt) > 1 else None
    slug = books_site.slugs[0]

    books_site.set_book(slug, price="9.99", stock_text="Out of stock")
    page = page_fetch(books_site.book_url(slug))

    assert len(linked) == 200
    assert '<p class="price_color">£9.99</p>' in page and "Out of stock" in page
    assert books_site.hits_for(books_site.book_url(slug)) == 1
