"""Downloader middlewares: retries with exponential backoff that honours Retry-After, and
redirect loops reported as errors."""

import asyncio
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.settings import BaseSettings
from scrapy.utils.response import response_status_message
from w3lib.url import safe_url_string

logger = logging.getLogger(__name__)

RETRY_AFTER_STAT = "retry/retry_after_honoured"
BACKOFF_WAIT_STAT = "retry/backoff_ms"


def retry_after_seconds(value: str | bytes | None, *, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks us to wait: delta-seconds or an HTTP date
    (RFC 9110 10.2.3); None when absent or unreadable, 0 for a date in the past."""
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" in the header: UTC by the RFC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_seconds(*, attempt: int, base: float, cap: float) -> float:
    """Exponential backoff before retry number `attempt` (1, 2, ...): base, 2*base, 4*base..."""
    return min(cap, base * 2 ** max(0, attempt - 1))


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry middleware (same settings, same `retry/*` stats) that waits before
    each retry: the server's Retry-After when it sends one (capped at RETRY_AFTER_MAX),
    else RETRY_BACKOFF_BASE * 2^(attempt-1) capped at RETRY_BACKOFF_MAX.

    The wait is an asyncio sleep in this request's middleware chain: other requests go on,
    and the retry leaves only after the wait (Scrapy has no per-request "not before").
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff_base = settings.getfloat("RETRY_BACKOFF_BASE", 1.0)
        self.backoff_max = settings.getfloat("RETRY_BACKOFF_MAX", 60.0)
        self.retry_after_max = settings.getfloat("RETRY_AFTER_MAX", 120.0)

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        await self._wait(retry, retry_after_seconds(response.headers.get(b"Retry-After")))
        return retry

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception
    ) -> Request | Response | None:
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry"):
            return None
        retry = self._retry(request, exception)
        if retry is None:
            return None
        await self._wait(retry, None)
        return retry

    async def _wait(self, retry: Request, retry_after: float | None) -> None:
        attempt = int(retry.meta.get("retry_times", 1))
        if retry_after is not None:
            delay = min(retry_after, self.retry_after_max)
            self.crawler.stats.inc_value(RETRY_AFTER_STAT)  # type: ignore[union-attr]
        else:
            delay = backoff_seconds(attempt=attempt, base=self.backoff_base, cap=self.backoff_max)
        self.crawler.stats.inc_value(BACKOFF_WAIT_STAT, round(delay * 1000))  # type: ignore[union-attr]
        logger.debug("waiting %.2fs before retry %d of %s", delay, attempt, retry.url)
        if delay > 0:
            await asyncio.sleep(delay)


_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class RedirectLoopMiddleware:
    """Fails a request whose redirects come back to a URL of its own chain, so the loop is
    counted as an error (Scrapy's duplicate filter would drop the repeat silently).

    Sits after RedirectMiddleware in request order (a higher number), so it sees each
    redirect response before RedirectMiddleware follows it.
    """

    def process_response(self, request: Request, response: Response) -> Response:
        location = response.headers.get(b"Location")
        if response.status not in _REDIRECT_STATUSES or not location:
            return response
        target = safe_url_string(urljoin(request.url, location.decode("latin-1")))
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if target in chain:
            raise IgnoreRequest(f"redirect loop: {' -> '.join([*chain, target])}")
        return response
