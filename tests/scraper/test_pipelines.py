"""Validation, deduplication and storage of scraped products; the storage pipeline under
the asyncio reactor, next to a naive synchronous ORM pipeline that fails there."""

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.utils import timezone

from scraper.items import ProductItem
from scraper.models import CompetitorProduct, PriceObservation, ScrapeRun, Source
from scraper.models.sources import ScrapeRunStatus, SourceKind
from scraper.pipelines import InvalidProduct, product_validate
from scraper.selectors import CrawlConfig, source_crawl_config
from scraper.services.ingest import (
    ScrapedProduct,
    catalog_external_id,
    catalog_products_ingest,
    competitor_products_ingest,
)
from tests.scraper.crawl_fixtures import books_source, crawl, orm_count_in_db_thread
from tests.scraper.sites.books import BooksSite, book_path
from webapp.models import Item

SHOP = "http://shop.example"
GOOD_GTIN = "4006381333931"


def _config(**changes: Any) -> CrawlConfig:
    values: dict[str, Any] = {
        "source_id": 1,
        "name": "shop",
        "kind": SourceKind.COMPETITOR,
        "allowed_domains": ("shop.example",),
        "start_urls": (),
        "sitemap_urls": (),
        "follow_url_pattern": "",
        "follow_link_css": "",
        "product_url_pattern": "",
        "product_link_css": "",
        "extraction_mode": "structured",
        "selectors": None,
        "default_currency": "",
        "concurrent_requests_per_domain": 2,
        "download_delay": 0.0,
        "download_timeout": 30,
        "max_pages": 100,
        "max_seconds": 60,
    }
    return CrawlConfig(**{**values, **changes})


def _item(**fields: Any) -> ProductItem:
    values: dict[str, Any] = {
        "url": f"{SHOP}/p/1",
        "title": "  Kettle\n Deluxe ",
        "price": "31.17",
        "currency": "EUR",
        "availability": "InStock",
        "gtin": GOOD_GTIN,
    }
    return ProductItem(**{**values, **fields})


def test_validation_cleans_a_good_item() -> None:
    product = product_validate(_item(canonical_url=f"{SHOP}/p/1#top"), _config())
    assert product.title == "Kettle Deluxe"
    assert (product.price, product.currency, product.availability) == (
        Decimal("31.17"),
        "EUR",
        "InStock",
    )
    assert product.url == f"{SHOP}/p/1"
    assert product.gtin == GOOD_GTIN


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"title": None}, "missing title"),
        ({"title": "   "}, "missing title"),
        ({"price": "12,x"}, "invalid price"),
        ({"price": "-1"}, "invalid price"),
        ({"price": "1e12"}, "invalid price"),
        ({"currency": None}, "missing currency"),
        ({"currency": "EURO"}, "invalid currency"),
        ({"url": "ftp://shop.example/p/1"}, "URL outside the allowed domains or too long"),
        ({"url": "http://evil.example/p/1"}, "URL outside the allowed domains or too long"),
    ],
)
def test_validation_names_why_an_item_is_dropped(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidProduct, match=f"^{reason}$"):
        product_validate(_item(**fields), _config())


def test_validation_keeps_own_url_over_a_foreign_canonical_and_blanks_bad_values() -> None:
    product = product_validate(
        _item(
            canonical_url="http://evil.example/p/1",
            gtin="4006381333932",  # bad check digit
            image="javascript:alert(1)",
            availability="Maybe",
            sku="x" * 200,
            title="t" * 600,
        ),
        _config(),
    )
    assert product.url == f"{SHOP}/p/1"
    assert (product.gtin, product.image_url, product.availability, product.sku) == ("", "", "", "")
    assert len(product.title) == 500


def test_default_currency_applies_only_without_one_on_the_page() -> None:
    config = _config(default_currency="GBP")
    assert product_validate(_item(currency=None), config).currency == "GBP"
    assert product_validate(_item(currency="usd"), config).currency == "USD"


@pytest.fixture
def competitor(db: Any) -> Source:
    return Source.objects.create(
        name="rival", kind=SourceKind.COMPETITOR, allowed_domains=["shop.example"]
    )


def _scraped(url: str, price: str | None, availability: str = "InStock") -> ScrapedProduct:
    return ScrapedProduct(
        url=url,
        title=f"Product {url[-1]}",
        price=Decimal(price) if price else None,
        currency="EUR" if price else "",
        availability=availability,
    )


def test_competitor_ingest_appends_observations_only_on_change(
    competitor: Source, django_assert_max_num_queries: Any
) -> None:
    # Given two products ingested once
    first = [_scraped(f"{SHOP}/p/1", "10.00"), _scraped(f"{SHOP}/p/2", "20.00")]
    result = competitor_products_ingest(source_id=competitor.pk, products=first)
    assert (len(result.created), result.updated, result.price_changes) == (2, 0, 2)
    seen = dict(CompetitorProduct.objects.values_list("url", "last_seen_at"))

    # When they are seen again: one unchanged, one out of stock now, and a new one unpriced
    later = timezone.now() + timedelta(minutes=5)
    again = [
        _scraped(f"{SHOP}/p/1", "10.00"),
        _scraped(f"{SHOP}/p/2", "20.00", availability="OutOfStock"),
        _scraped(f"{SHOP}/p/3", None),
    ]
    with django_assert_max_num_queries(6):  # a batch costs a constant number of queries
        result = competitor_products_ingest(
            source_id=competitor.pk, products=again, observed_at=later
        )

    # Then one observation is appended, and every product's last-seen time moved
    assert (len(result.created), result.updated, result.price_changes) == (1, 2, 1)
    assert PriceObservation.objects.count() == 3
    latest = PriceObservation.objects.filter(product__url=f"{SHOP}/p/2").first()
    assert latest is not None and latest.availability == "OutOfStock"
    for url, last_seen in CompetitorProduct.objects.values_list("url", "last_seen_at"):
        assert last_seen == later and (url not in seen or seen[url] < later)


def test_catalog_ingest_upserts_items_by_sku_or_source_and_url(db: Any) -> None:
    source = Source.objects.create(name="ours", kind=SourceKind.CATALOG)
    with_sku = ScrapedProduct(url=f"{SHOP}/a", title="A", sku="SKU-1", brand="Acme")
    without = ScrapedProduct(
        url=f"{SHOP}/b", title="B", price=Decimal("5.00"), currency="GBP", gtin=GOOD_GTIN
    )
    created = catalog_products_ingest(source_id=source.pk, products=[with_sku, without])
    assert len(created.created) == 2
    item_b = Item.objects.get(external_id=catalog_external_id(source_id=source.pk, product=without))
    assert item_b.external_id.startswith(f"src{source.pk}-")
    assert (item_b.list_price, item_b.currency, item_b.attributes) == (
        Decimal("5.00"),
        "GBP",
        {"gtin": GOOD_GTIN},
    )
    renamed = ScrapedProduct(url=f"{SHOP}/a", title="A renamed", sku="SKU-1")
    updated = catalog_products_ingest(source_id=source.pk, products=[renamed])
    assert (updated.created, updated.updated) == ([], 1)
    item_a = Item.objects.get(external_id="SKU-1")
    assert item_a.title == "A renamed"
    assert item_a.attributes == {"brand": "Acme"}  # attributes belong to the catalog feed


@pytest.mark.django_db(transaction=True)
def test_sync_orm_call_inside_an_event_loop_raises_and_sync_to_async_does_not() -> None:
    async def naive() -> int:
        return CompetitorProduct.objects.count()

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(naive())
    assert asyncio.run(orm_count_in_db_thread()) == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_crawl_under_the_asyncio_reactor_writes_rows_where_a_naive_pipeline_fails(
    books_site: BooksSite,
) -> None:
    # Given the books site as a catalog source configured by selectors, crawled with our
    # pipelines plus a naive one that calls the ORM synchronously from process_item
    source = books_source(books_site, max_pages=40)
    pipelines = {
        "scraper.pipelines.ValidationPipeline": 100,
        "scraper.pipelines.DeduplicationPipeline": 200,
        "scraper.pipelines.StoragePipeline": 300,
        "tests.scraper.crawl_fixtures.NaiveOrmPipeline": 400,
    }

    # When it is crawled (up to 40 pages: 2 listings and their books)
    result = crawl(source, ITEM_PIPELINES=pipelines, SCRAPER_INGEST_BATCH_SIZE=7)

    # Then our pipeline stored every book, while each naive call raised
    assert result.returncode == 0, result.stderr[-3000:]
    run = ScrapeRun.objects.get(source=source)
    assert run.status == ScrapeRunStatus.FINISHED
    assert run.finish_reason == "closespider_pagecount"
    books = run.items_scraped
    assert books >= 30 and run.items_dropped == 0
    assert run.stats["naive_orm/SynchronousOnlyOperation"] == books
    assert "naive_orm/ok" not in run.stats
    assert Item.objects.count() == books
    book_urls = {books_site.url(book_path(slug)) for slug in books_site.slugs}
    for item in Item.objects.all():
        assert item.url in book_urls
        assert item.currency == "GBP" and item.list_price is not None
        assert len(item.external_id) == 16 and item.title  # the UPC, via the sku selector
    assert source_crawl_config(source_id=source.pk).selectors is not None


def test_selectors_only_extraction_agrees_with_extract_product_on_the_named_fields() -> None:
    from scraper.extraction import extract_product
    from scraper.spiders.extraction_pool import extract_by_selectors
    from tests.scraper.sites.books import BOOKS_SELECTORS, books_pages

    slug, html = next(iter(books_pages().items()))
    url = f"http://127.0.0.1:8000{book_path(slug)}"
    fast = extract_by_selectors(html, url, BOOKS_SELECTORS)
    full = extract_product(html, url, BOOKS_SELECTORS)
    for name in [*BOOKS_SELECTORS, "currency", "canonical_url"]:
        assert fast[name] == full[name], name
    assert fast["price"] and fast["currency"] == "GBP" and fast["sku"]
