"""Made books_truth.csv ONCE from the archived pages; kept to show how, not run by tests.

It reads each page with regular expressions on the page's own product table and gallery,
independently of scraper.extraction and of BOOKS_SELECTORS: the price is the table's
"Price (incl. tax)" row, availability its "Availability" row, the SKU its "UPC" row. The
rows were then spot-checked by eye against the pages in a browser.

    python tests/scraper/data/make_books_truth.py > tests/scraper/data/books_truth.csv
"""

import csv
import html
import re
import sys
import tarfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

ARCHIVE = Path(__file__).resolve().parent / "books-toscrape" / "bookfiles.tar.gz"
COLUMNS = [
    "path",
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
]


def row_value(page: str, header: str) -> str:
    match = re.search(rf"<th>{re.escape(header)}</th>\s*<td>(.*?)</td>", page, re.DOTALL)
    if match is None:
        raise ValueError(f"no {header!r} row")
    return html.unescape(match.group(1)).strip()


def book_row(page: str) -> dict[str, str]:
    slug = re.search(r'href="/catalogue/([^/"]+)/reviews/"', page).group(1)  # type: ignore[union-attr]
    path = f"/catalogue/{slug}/index.html"
    title = html.unescape(re.search(r"<h1>(.*?)</h1>", page, re.DOTALL).group(1))  # type: ignore[union-attr]
    price = row_value(page, "Price (incl. tax)")
    assert price.startswith("£"), price
    stock = row_value(page, "Availability")
    image = re.search(r'<div class="item active">\s*<img src="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    description = re.search(
        r'<div id="product_description" class="sub-header">.*?</div>\s*<p>(.*?)</p>',
        page,
        re.DOTALL,
    )
    return {
        "path": path,
        "title": " ".join(title.split()),
        "price": price[1:],
        "currency": "GBP",
        "availability": "InStock" if stock.lower().startswith("in stock") else "OutOfStock",
        "sku": row_value(page, "UPC"),
        "gtin": "",
        "mpn": "",
        "brand": "",
        "image": urlsplit(urljoin(path, image)).path,
        "description": " ".join(html.unescape(description.group(1)).split()) if description else "",
        "canonical_url": path,
    }


def main() -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    with tarfile.open(ARCHIVE) as archive:
        members = sorted(
            (m for m in archive.getmembers() if m.isfile() and m.name.endswith(".html")),
            key=lambda m: int(Path(m.name).stem),
        )
        for member in members:
            handle = archive.extractfile(member)
            assert handle is not None
            writer.writerow(book_row(handle.read().decode("utf-8")))


if __name__ == "__main__":
    main()
