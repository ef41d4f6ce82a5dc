"""Fixed-window rate limits counted in Postgres, so every process and host shares them."""

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.utils import timezone

from webapp.models import RateLimitCounter

KEY_MAX_LENGTH = 200


@dataclass(frozen=True)
class RateLimitResult:
    """The outcome of one hit: whether it is allowed and when the window resets."""

    allowed: bool
    count: int
    limit: int
    retry_after: int  # whole seconds until the current window ends


def _stored_key(key: str) -> str:
    if len(key) <= KEY_MAX_LENGTH:
        return key
    # Too long for the column: keep a readable head and a digest of the whole.
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: KEY_MAX_LENGTH - len(digest) - 1]}#{digest}"


def _upsert_sql() -> str:
    table = connection.ops.quote_name(RateLimitCounter._meta.db_table)
    return (
        f"INSERT INTO {table} (key, window_start, count) VALUES (%s, %s, %s) "  # noqa: S608
        f"ON CONFLICT (key, window_start) DO UPDATE SET count = {table}.count + EXCLUDED.count "
        "RETURNING count"
    )


def ratelimit_hit(
    *, key: str, limit: int, window_seconds: int = 60, cost: int = 1
) -> RateLimitResult:
    """Add `cost` to `key`'s counter for the current window (one atomic upsert) and judge it."""
    assert window_seconds > 0 and cost >= 0
    now = timezone.now().timestamp()
    start = int(now // window_seconds) * window_seconds
    window_start = datetime.fromtimestamp(start, tz=UTC)
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql(), [_stored_key(key), window_start, cost])
        row = cursor.fetchone()
    count = int(row[0]) if row else cost
    retry_after = max(1, math.ceil(start + window_seconds - now))
    return RateLimitResult(
        allowed=count <= limit, count=count, limit=limit, retry_after=retry_after
    )


def ratelimit_purge_expired(*, older_than: timedelta) -> int:
    """Delete counters whose window started more than `older_than` ago; returns the count."""
    deleted, _ = RateLimitCounter.objects.filter(
        window_start__lt=timezone.now() - older_than
    ).delete()
    return deleted
