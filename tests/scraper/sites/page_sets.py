"""The labelled page sets (fixture shop, books) fetched from their running loopback sites."""

import csv
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tests.scraper.sites.books import BooksSite, book_path
from tests.scraper.sites.fixture_shop import FixtureShop

BOOKS_TRUTH_PATH: Final = Path(__file__).resolve().parent.parent / "data" / "books_truth.csv"
_URL_FIELDS: Final = ("image", "canonical_url")


@dataclass(frozen=True)
class LabelledPage:
    """One page as served, its URL, and the truth for it (URLs absolute)."""

    url: str
    html: str
    truth: dict[str, Any]


def books_truth() -> dict[str, dict[str, str]]:
    """Rows of books_truth.csv by path (empty cells are empty strings)."""
    with BOOKS_TRUTH_PATH.open(encoding="utf-8", newline="") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def page_fetch(url: str, *, attempts: int = 4) -> str:
    """GET a page, waiting out 429/5xx answers (the fixture shop's retry pages)."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body: bytes = response.read()
                return body.decode("utf-8")
        except urllib.error.HTTPError as error:
            if error.code not in (429, 500, 502, 503) or attempt == attempts - 1:
                raise
            time.sleep(float(error.headers.get("Retry-After") or 0.05))
    raise AssertionError("unreachable")


def fixture_shop_pages(shop: FixtureShop) -> list[LabelledPage]:
    """Every product page of the fixture shop (the private one too) with its truth."""
    return [
        LabelledPage(
            shop.product_url(p["id"]), page_fetch(shop.product_url(p["id"])), shop.truth(p["id"])
        )
        for p in shop.products(include_private=True)
    ]


def books_pages_labelled(site: BooksSite) -> list[LabelledPage]:
    """The 200 book pages with their rows of books_truth.csv."""
    truth = books_truth()
    pages = []
    for slug in site.slugs:
        row: dict[str, Any] = dict(truth[book_path(slug)])
        for key in _URL_FIELDS:
            row[key] = site.url(row[key]) if row[key] else None
        pages.append(LabelledPage(site.book_url(slug), page_fetch(site.book_url(slug)), row))
    return pages
