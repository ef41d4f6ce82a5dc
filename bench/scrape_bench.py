"""Crawl throughput: our full pipeline next to a plain Scrapy spider, same site, same run.

    flock /tmp/bench.lock .venv/bin/python bench/scrape_bench.py [--repeats 3]
        [--concurrency 16] [--results bench/results_scrape.md]

Serves the 200 books.toscrape.com pages (tests/scraper/sites/books.py) on loopback and
crawls the whole site (robots.txt, 10 listings, 200 books) alternately with
  * ours: `manage.py crawl_source` on a catalog Source configured by selectors only:
    the generic product spider, extract_product, validation, dedup, and batched upserts
    of 200 `Item`s into Postgres (the database DATABASE_URL names; the bench's items are
    deleted before each run so every run inserts them);
  * plain: a minimal Scrapy spider that follows the same links and extracts the same
    fields with the same CSS/XPath (parsel) and price-parser, yielding dicts, no pipeline.
Both: robots.txt obeyed, AutoThrottle off, no download delay, the same concurrency, each in
its own process. Rates are Scrapy's own: responses and items over `elapsed_time_seconds`
(spider open to close, so process start-up is excluded and our final database flush is
included). Prints a markdown table and writes it to the results file.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_SOURCE = "bench: books (loopback)"
OURS = "ours: full pipeline + Postgres, selectors-only extraction"
OURS_STRUCTURED = "ours: full pipeline + Postgres, structured extraction"
PLAIN = "plain Scrapy spider (same fields, no pipeline)"


def common_settings(concurrency: int) -> dict[str, Any]:
    """What both spiders run with: politeness that would cap both equally is off."""
    return {
        "ROBOTSTXT_OBEY": True,
        "AUTOTHROTTLE_ENABLED": False,
        "DOWNLOAD_DELAY": 0,
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
    }


# --- the plain spider (runs in its own process: `scrape_bench.py --plain URL OUT`) ------


def run_plain(start_url: str, out: Path, concurrency: int) -> None:
    import scrapy
    from price_parser import Price
    from scrapy.crawler import CrawlerProcess
    from scrapy.linkextractors import LinkExtractor

    from tests.scraper.sites.books import BOOKS_SELECTORS

    def select(response: Any, expression: str) -> str | None:
        if expression.startswith("xpath:"):
            return response.xpath(expression[len("xpath:") :]).get()
        return response.css(expression).get()

    class PlainBooksSpider(scrapy.Spider):
        name = "plain_books"
        start_urls = [start_url]
        products = LinkExtractor(allow=r"/catalogue/[^/]+/index\.html$")
        listings = LinkExtractor(allow=r"/catalogue/page-\d+\.html$")

        def parse(self, response: Any) -> Any:
            for link in self.products.extract_links(response):
                yield scrapy.Request(link.url, callback=self.parse_book)
            for link in self.listings.extract_links(response):
                yield scrapy.Request(link.url)

        def parse_book(self, response: Any) -> Any:
            price = Price.fromstring(select(response, BOOKS_SELECTORS["price"]) or "")
            availability = response.css(BOOKS_SELECTORS["availability"]).xpath("string()").get()
            yield {
                "url": response.url,
                "title": select(response, BOOKS_SELECTORS["title"]),
                "price": str(price.amount) if price.amount is not None else None,
                "currency": "GBP" if price.currency == "£" else price.currency,
                "availability": "InStock" if "In stock" in (availability or "") else None,
                "sku": select(response, BOOKS_SELECTORS["sku"]),
                "description": select(response, BOOKS_SELECTORS["description"]),
                "image": response.urljoin(select(response, BOOKS_SELECTORS["image"]) or ""),
            }

    process = CrawlerProcess(common_settings(concurrency))  # Scrapy's defaults otherwise
    crawler = process.create_crawler(PlainBooksSpider)
    process.crawl(crawler)
    process.start()
    assert crawler.stats is not None
    stats = crawler.stats.get_stats()
    out.write_text(json.dumps({k: v for k, v in stats.items() if isinstance(v, int | float)}))


# --- the driver -------------------------------------------------------------------------


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")
    import django

    django.setup()


def bench_source(site: Any) -> Any:
    from scraper.models import Source
    from scraper.models.sources import SourceKind
    from tests.scraper.sites.books import BOOKS_SELECTORS

    Source.objects.filter(name=BENCH_SOURCE).delete()
    source = Source(
        name=BENCH_SOURCE,
        kind=SourceKind.CATALOG,
        allowed_domains=["127.0.0.1"],
        start_urls=site.listing_urls(),
        follow_url_pattern=r"/catalogue/page-\d+\.html$",
        product_url_pattern=r"/catalogue/[^/]+/index\.html$",
        selectors=dict(BOOKS_SELECTORS),
        max_pages=10_000,
    )
    source.full_clean()
    source.save()
    return source


def run_ours(
    source: Any, concurrency: int, mode: str, extraction_processes: int
) -> dict[str, float]:
    from scraper.models import ScrapeRun
    from webapp.models import Item

    source.extraction_mode = mode
    source.save(update_fields=["extraction_mode"])
    # every run inserts its 200 items: drop those of earlier runs (any loopback port)
    Item.objects.filter(url__regex=r"^http://127\.0\.0\.1:[0-9]+/catalogue/").delete()
    command = [sys.executable, str(ROOT / "manage.py"), "crawl_source", str(source.pk)]
    settings = {
        **common_settings(concurrency),
        "SCRAPER_EXTRACTION_PROCESSES": extraction_processes,
    }
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"our crawl failed:\n{done.stderr[-3000:]}")
    run = ScrapeRun.objects.filter(source=source).order_by("-id").first()
    assert run is not None
    return {
        "pages": run.pages,
        "items": run.items_scraped,
        "seconds": float(run.stats["elapsed_time_seconds"]),
        "created": run.items_created,
    }


def run_plain_process(start_url: str, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "stats.json"
        command = [sys.executable, __file__, "--plain", start_url, str(out)]
        command += ["--concurrency", str(concurrency)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"plain crawl failed:\n{done.stderr[-3000:]}")
        stats = json.loads(out.read_text())
    return {
        "pages": stats["response_received_count"],
        "items": stats.get("item_scraped_count", 0),
        "seconds": float(stats["elapsed_time_seconds"]),
    }


def rates(run: dict[str, float]) -> tuple[float, float]:
    return run["pages"] / run["seconds"], run["items"] / run["seconds"]


def table(results: dict[str, list[dict[str, float]]], concurrency: int, processes: int) -> str:
    lines = [
        f"Loopback books site (robots.txt + 10 listings + 200 books), concurrency {concurrency},",
        "AutoThrottle off, robots.txt on, no delay; each crawl in its own process; rates over",
        "Scrapy's elapsed_time_seconds. Extraction modes of our source: `selectors` (only the",
        "source's selectors, as the books source is configured), `structured` (selectors, then",
        "JSON-LD/microdata/OpenGraph via extruct, then heuristics: extract_product), in the",
        f"crawl process or in {processes} worker processes. Machine: {os.cpu_count()} CPUs",
        "(shared with other work). Repeats alternate the rows.",
        "",
        "| spider | runs | pages | items | pages/s (median) | items/s (median) | pages/s per run |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    medians: dict[str, tuple[float, float]] = {}
    for name, runs in results.items():
        page_rates = [rates(r)[0] for r in runs]
        item_rates = [rates(r)[1] for r in runs]
        medians[name] = (statistics.median(page_rates), statistics.median(item_rates))
        lines.append(
            f"| {name} | {len(runs)} | {runs[0]['pages']:.0f} | {runs[0]['items']:.0f} | "
            f"{medians[name][0]:.1f} | {medians[name][1]:.1f} | "
            f"{', '.join(f'{r:.1f}' for r in page_rates)} |"
        )
    plain = medians[PLAIN]
    lines.append("")
    for name, (pages, items) in medians.items():
        if name != PLAIN:
            lines.append(
                f"- {name} / plain: pages/s {pages / plain[0]:.2f}, items/s {items / plain[1]:.2f}"
            )
    lines.append("- target: >= 0.80")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--extraction-processes",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="SCRAPER_EXTRACTION_PROCESSES of the last row",
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results_scrape.md")
    parser.add_argument("--plain", nargs=2, metavar=("START_URL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        run_plain(args.plain[0], Path(args.plain[1]), args.concurrency)
        return
    setup_django()
    from tests.scraper.sites.books import BooksSite

    processes = args.extraction_processes
    ours = {
        OURS: ("selectors", 0),
        OURS_STRUCTURED: ("structured", 0),
        f"{OURS_STRUCTURED}, {processes} extraction processes": ("structured", processes),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in [OURS, PLAIN, *ours]}
    with BooksSite() as site:
        source = bench_source(site)
        for repeat in range(args.repeats):
            for name, (mode, workers) in ours.items():
                results[name].append(run_ours(source, args.concurrency, mode, workers))
                if name == OURS:
                    start = site.listing_urls()[0]
                    results[PLAIN].append(run_plain_process(start, args.concurrency))
            for name in results:
                print(f"run {repeat + 1} {name}: {results[name][-1]}", flush=True)
        source.delete()
    text = table(results, args.concurrency, processes)
    print(text)
    args.results.write_text("# Crawl throughput (bench/scrape_bench.py)\n\n" + text + "\n")


if __name__ == "__main__":
    main()
