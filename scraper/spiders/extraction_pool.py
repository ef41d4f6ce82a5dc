"""Product extraction off the event loop: extract_product is CPU-bound (lxml, extruct,
heuristics) and would otherwise stall the single-threaded crawl between downloads."""

import asyncio
import multiprocessing
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor

from scraper.extraction import FIELDS, extract_product, selectors_validate
from scraper.extraction.document import document_parse, html_decode, url_absolute
from scraper.extraction.source_selectors import selector_findings

Fields = dict[str, str | None]


def extract_by_selectors(html: str, url: str, selectors: Mapping[str, str] | None) -> Fields:
    """Only the source's selectors (ExtractionMode.SELECTORS): no markup parsing and no
    heuristics, so a source fully described by selectors is extracted at parsel's speed.
    Values are normalised as extract_product normalises them."""
    selectors_validate(selectors)
    found = selector_findings(document_parse(html_decode(html)), url, selectors)
    fields: Fields = dict.fromkeys(FIELDS)
    fields.update(found.values)
    if fields["price"] is None:
        fields["currency"] = None
    fields["canonical_url"] = fields["canonical_url"] or url_absolute(url, url) or url
    return fields


class ExtractionPool:
    """`processes` worker processes running the extraction (0: in the crawl process).

    Workers start from a forkserver, not by forking the crawl process, whose reactor and
    database threads must not be copied; they import only the Django-free extraction.
    """

    def __init__(self, processes: int) -> None:
        self._executor: ProcessPoolExecutor | None = None
        if processes > 0:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["scraper.extraction"])
            self._executor = ProcessPoolExecutor(max_workers=processes, mp_context=context)

    async def extract(
        self, html: str, url: str, selectors: Mapping[str, str] | None, *, only_selectors: bool
    ) -> Fields:
        """The page's fields; exceptions of the extraction are raised here."""
        extract = extract_by_selectors if only_selectors else extract_product
        if self._executor is None:
            return extract(html, url, selectors)
        future = self._executor.submit(extract, html, url, dict(selectors or {}) or None)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
