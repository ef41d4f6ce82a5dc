"""The retry middleware's backoff and Retry-After handling, and redirect-loop detection."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Request, Response
from scrapy.utils.test import get_crawler

from scraper.middlewares import (
    BACKOFF_WAIT_STAT,
    RETRY_AFTER_STAT,
    BackoffRetryMiddleware,
    RedirectLoopMiddleware,
    backoff_seconds,
    retry_after_seconds,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
URL = "http://shop.example/p/1"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (b" 0 ", 0.0),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        ("Sun, 29 Nov 2026 11:00:00 GMT", 0.0),  # a date in the past: retry now
        ("soon", None),
        ("-3", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header: str | None, expected: float) -> None:
    assert retry_after_seconds(header, now=NOW) == expected


def test_backoff_doubles_and_is_capped() -> None:
    waits = [backoff_seconds(attempt=n, base=0.5, cap=3.0) for n in range(1, 6)]
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]


class _Spider(Spider):
    name = "probe"


def _middleware(**settings: object) -> tuple[BackoffRetryMiddleware, Crawler]:
    crawler = get_crawler(
        _Spider,
        {
            "RETRY_TIMES": 2,
            "RETRY_HTTP_CODES": [408, 429, 500, 503],
            "RETRY_BACKOFF_BASE": 0.05,
            "RETRY_BACKOFF_MAX": 0.1,
            "RETRY_AFTER_MAX": 0.5,
            **settings,
        },
    )
    crawler.spider = crawler._create_spider()
    crawler.stats.open_spider()
    return BackoffRetryMiddleware.from_crawler(crawler), crawler


def _response(status: int, **headers: str) -> Response:
    return HtmlResponse(URL, status=status, headers=headers, body=b"")


def test_429_waits_for_retry_after_then_retries() -> None:
    middleware, crawler = _middleware()
    request = Request(URL)
    started = time.monotonic()
    retry = asyncio.run(
        middleware.process_response(request, _response(429, **{"Retry-After": "0.3"}))
    )
    # "0.3" is not delta-seconds (digits only): the backoff is used instead
    assert isinstance(retry, Request) and retry.meta["retry_times"] == 1
    retry = asyncio.run(
        middleware.process_response(request, _response(503, **{"Retry-After": "1"}))
    )
    elapsed = time.monotonic() - started
    assert isinstance(retry, Request)
    assert 0.5 <= elapsed < 1.0  # Retry-After: 1 capped at RETRY_AFTER_MAX (0.5 s)
    assert crawler.stats.get_value(RETRY_AFTER_STAT) == 1
    assert crawler.stats.get_value("retry/count") == 2


def test_retries_stop_after_retry_times_and_the_response_is_returned() -> None:
    middleware, crawler = _middleware()
    request = Request(URL)
    for attempt in (1, 2):
        retry = asyncio.run(middleware.process_response(request, _response(500)))
        assert isinstance(retry, Request) and retry.meta["retry_times"] == attempt
        request = retry
    final = asyncio.run(middleware.process_response(request, _response(500)))
    assert isinstance(final, Response) and final.status == 500
    assert crawler.stats.get_value("retry/max_reached") == 1
    assert crawler.stats.get_value(BACKOFF_WAIT_STAT) == 50 + 100  # ms: 0.05 then 0.1 (cap)


def test_success_and_dont_retry_pass_through() -> None:
    middleware, crawler = _middleware()
    ok = _response(200)
    assert asyncio.run(middleware.process_response(Request(URL), ok)) is ok
    failed = _response(500)
    no_retry = Request(URL, meta={"dont_retry": True})
    assert asyncio.run(middleware.process_response(no_retry, failed)) is failed
    assert crawler.stats.get_value("retry/count") is None


def test_timeouts_are_retried_with_backoff() -> None:
    from scrapy.exceptions import DownloadTimeoutError

    middleware, crawler = _middleware()
    retry = asyncio.run(middleware.process_exception(Request(URL), DownloadTimeoutError()))
    assert isinstance(retry, Request)
    assert crawler.stats.get_value("retry/reason_count/scrapy.exceptions.DownloadTimeoutError") == 1


def test_a_redirect_back_into_its_own_chain_is_a_loop() -> None:
    middleware = RedirectLoopMiddleware()
    a, b = "http://shop.example/a", "http://shop.example/b"
    first = Request(a)
    to_b = HtmlResponse(a, status=302, headers={"Location": "/b"}, body=b"")
    assert middleware.process_response(first, to_b) is to_b  # a -> b is fine
    second = Request(b, meta={"redirect_urls": [a]})
    back_to_a = HtmlResponse(b, status=302, headers={"Location": a}, body=b"")
    with pytest.raises(IgnoreRequest, match="redirect loop"):
        middleware.process_response(second, back_to_a)
    self_loop = HtmlResponse(a, status=301, headers={"Location": a}, body=b"")
    with pytest.raises(IgnoreRequest, match="redirect loop"):
        middleware.process_response(first, self_loop)
