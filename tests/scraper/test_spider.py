"""Real crawls of the loopback fixture shop by the generic product spider, in a child
process under the asyncio reactor, writing to the test database."""

from collections.abc import Iterator
from decimal import Decimal

import pytest

from scraper.models import CompetitorProduct, PriceObservation, ScrapeRun
from scraper.models.sources import ScrapeRunStatus
from tests.scraper.crawl_fixtures import crawl, fixture_shop_source
from tests.scraper.sites.fixture_shop import (
    ALWAYS_500_PATH,
    HUGE_PATH,
    LOOP_PATHS,
    MISSING_PATH,
    SLOW_PATH,
    FixtureShop,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
RETRY_TIMES = 2
TIMEOUT_SECONDS = 2
ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def _product(shop: FixtureShop, product_id: str) -> CompetitorProduct:
    return CompetitorProduct.objects.get(url=shop.product_url(product_id))


@pytest.fixture
def slow_shop() -> Iterator[FixtureShop]:
    """The fixture shop whose slow page takes far longer than the crawl's timeout, and the
    timeout far longer than a normal page takes on a busy test machine."""
    with FixtureShop(slow_delay_s=3 * TIMEOUT_SECONDS) as shop:
        yield shop


def test_crawl_survives_every_trap_counts_it_and_records_prices_only_on_change(
    slow_shop: FixtureShop,
) -> None:
    fixture_shop = slow_shop
    # Given the fixture shop as a competitor source
    source = fixture_shop_source(fixture_shop, download_timeout=TIMEOUT_SECONDS)
    products = fixture_shop.products()  # the 39 public products (one is robots-disallowed)
    private = [p for p in fixture_shop.products(include_private=True) if p not in products]

    # When it is crawled
    first = crawl(source, RETRY_TIMES=RETRY_TIMES)

    # Then the crawl ran under the asyncio reactor and finished
    assert first.returncode == 0, first.stderr[-3000:]
    assert ASYNCIO_REACTOR in first.stderr
    run = ScrapeRun.objects.get(source=source)
    assert run.status == ScrapeRunStatus.FINISHED
    assert run.finish_reason == "finished"
    # robots.txt: the disallowed product page was never fetched
    assert private and fixture_shop.hits_for(private[0]["path"]) == 0
    assert run.stats["robotstxt/forbidden"] == 1
    assert run.stats["scraper/skipped/robots.txt"] == 1
    # 429 with Retry-After: retried once, honoured, then stored
    rate_limited = next(p for p in products if p["behaviour"] == "rate_limited")
    assert fixture_shop.hits_for(rate_limited["path"]) == 2
    assert run.stats["retry/retry_after_honoured"] == 1
    # 500 twice then 200: stored; always 500: retried RETRY_TIMES, then counted
    flaky = next(p for p in products if p["behaviour"] == "flaky")
    assert fixture_shop.hits_for(flaky["path"]) == 3
    assert fixture_shop.hits_for(ALWAYS_500_PATH) == 1 + RETRY_TIMES
    # the timeout, the redirect loop, the huge body and the 404 are counted, not fatal
    assert fixture_shop.hits_for(SLOW_PATH) == 1 + RETRY_TIMES
    assert fixture_shop.hits_for(LOOP_PATHS[0]) == 1
    assert fixture_shop.hits_for(LOOP_PATHS[1]) == 1
    assert fixture_shop.hits_for(HUGE_PATH) == 1
    assert fixture_shop.hits_for(MISSING_PATH) == 1
    assert run.error_counts == {
        "HTTP 404": 1,
        "HTTP 500": 1,
        "redirect loop": 1,
        "timeout": 1,
        "too large": 1,
    }
    assert run.errors == 5
    # the malformed page is stored like the others
    malformed = next(p for p in products if p["behaviour"] == "malformed")
    assert _product(fixture_shop, malformed["id"]).title == malformed["title"]
    # counters: 10 listings + 39 products parsed, 5 pages given up on
    assert (run.pages_ok, run.pages_failed) == (10 + len(products), 5)
    assert run.success_rate == pytest.approx(run.pages_ok / (run.pages_ok + 5), abs=1e-4)
    assert run.items_scraped == run.items_created == len(products)
    assert run.items_dropped == 0
    assert run.price_changes == len(products)
    assert run.status_counts["429"] == 1
    assert run.status_counts["500"] == 2 + (1 + RETRY_TIMES)
    assert run.status_counts["302"] == 2
    assert run.stats["retry/reason_count/429 Unknown Status"] == 1
    assert run.stats["retry/reason_count/500 Internal Server Error"] == 2 + RETRY_TIMES
    assert run.stats["retry/reason_count/scrapy.exceptions.DownloadTimeoutError"] >= RETRY_TIMES
    assert run.retries == sum(
        count for key, count in run.stats.items() if key.startswith("retry/reason_count/")
    )
    assert CompetitorProduct.objects.filter(source=source).count() == len(products)
    assert PriceObservation.objects.count() == len(products)
    kettle = _product(fixture_shop, "p01")
    observation = kettle.observations.get()
    truth = fixture_shop.truth("p01")
    assert (observation.price, observation.currency, observation.availability) == (
        Decimal(truth["price"]),
        truth["currency"],
        truth["availability"],
    )
    first_seen = {p.pk: p.last_seen_at for p in CompetitorProduct.objects.all()}

    # When one price changes on the shop and the source is crawled again
    fixture_shop.set_product("p01", price="19.99")
    fixture_shop.reset_hits()
    second = crawl(source, RETRY_TIMES=RETRY_TIMES)

    # Then only that product gets a new observation; every product was seen again
    assert second.returncode == 0, second.stderr[-3000:]
    rerun = ScrapeRun.objects.filter(source=source).exclude(pk=run.pk).get()
    assert (rerun.items_created, rerun.items_updated) == (0, len(products))
    assert rerun.price_changes == 1
    assert PriceObservation.objects.count() == len(products) + 1
    assert list(kettle.observations.values_list("price", flat=True)) == [
        Decimal("19.99"),
        Decimal(truth["price"]),
    ]
    for product in CompetitorProduct.objects.all():
        assert product.last_seen_at > first_seen[product.pk]
