"""Data for the serving benchmark: its own database, MovieLens, a model, logged-in cookies.

`serving_environment` points this process (and the gunicorn it starts) at the benchmark
database; `serving_prepare` makes it ready idempotently; `request_lines` builds the lines
of a wrk request file ("<path>\\t<Cookie header>") for the logged-in MovieLens users
plus fresh anonymous sessions (no cookies at all).
"""

import os
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

if TYPE_CHECKING:  # Django models are imported only after django.setup()
    from django.contrib.auth.models import User

    from webapp.models import Visitor

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_URL_FILE = ROOT / "var" / "postgres" / "database_url"
SESSION_DAYS = 1  # expired ones are deleted by the next run
USERNAME_PREFIX = "ml"  # load_movielens creates users ml1..ml943
LogFunction = Callable[[str], None]


def _server_url() -> str:
    return os.environ.get("DATABASE_URL") or EMBEDDED_URL_FILE.read_text().strip()


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def serving_environment(database: str) -> dict[str, str]:
    """Environment of the benchmark's processes; creates `database` when it is missing."""
    url = _with_database(_server_url(), database)
    with psycopg.connect(_with_database(url, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            conn.execute(f'CREATE DATABASE "{database}"')
    return dict(
        os.environ,
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="webapp.settings.local",
        DEBUG="false",
        ML_ARTIFACT_DIR=str(ROOT / "var" / f"{database}_models"),  # not shared with platform
    )


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args, "-v", "0"], cwd=ROOT, check=True)


def serving_prepare(log: LogFunction) -> None:
    """Migrate, load MovieLens when there are no items, train when no model is active."""
    import django

    _manage("migrate", "--noinput")
    django.setup()
    from ml.models import ModelVersion, ModelVersionStatus
    from webapp.models import Item

    if not Item.objects.exists():
        log("loading MovieLens-100K")
        _manage("load_movielens")
    if not ModelVersion.objects.filter(status=ModelVersionStatus.ACTIVE).exists():
        log("training models (train_models --sync)")
        _manage("train_models", "--sync")


def user_cookies(limit: int | None = None) -> list[str]:
    """Cookie headers of logged-in MovieLens users (session, consent, visitor token)."""
    from django.conf import settings

    from webapp.models import Visitor

    visitors = list(
        Visitor.objects.filter(user__username__regex=rf"^{USERNAME_PREFIX}[0-9]+$")
        .select_related("user")
        .order_by("pk")[:limit]
    )
    sessions = _sessions_for([visitor.user for visitor in visitors if visitor.user])
    return [
        f"{settings.SESSION_COOKIE_NAME}={session}; {settings.CONSENT_COOKIE_NAME}=yes; "
        f"{settings.VISITOR_COOKIE_NAME}={_visitor_token(visitor)}"
        for visitor, session in zip(visitors, sessions, strict=True)
    ]


def _visitor_token(visitor: "Visitor") -> str:
    from webapp.middleware import visitor_signed_token

    return visitor_signed_token(visitor)


def _sessions_for(users: list["User"]) -> list[str]:
    """New logged-in sessions (database backend), one per user, created in one query."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    Session.objects.filter(expire_date__lt=timezone.now()).delete()
    store = SessionStore()
    expires = timezone.now() + timedelta(days=SESSION_DAYS)
    rows = [
        Session(
            session_key=get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789"),
            session_data=store.encode(
                {
                    SESSION_KEY: str(user.pk),
                    BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                    HASH_SESSION_KEY: user.get_session_auth_hash(),
                }
            ),
            expire_date=expires,
        )
        for user in users
    ]
    Session.objects.bulk_create(rows)
    return [row.session_key for row in rows]


def active_item_ids() -> list[str]:
    from webapp.models import Item

    return list(Item.objects.filter(is_active=True).values_list("external_id", flat=True))


def request_lines(
    *,
    cookies: list[str],
    anonymous_share: float,
    path: str,
    seed: int,
    item_ids: list[str] | None = None,
) -> list[str]:
    """Every user once plus `anonymous_share` cookie-less requests, in a seeded order.

    With `item_ids`, each line asks about a random item (`path` gets `&item=<id>`).
    """
    rng = random.Random(seed)
    anonymous = round(len(cookies) * anonymous_share / (1 - anonymous_share))
    visits = [*cookies, *([""] * anonymous)]
    rng.shuffle(visits)
    lines = []
    for cookie in visits:
        target = f"{path}&item={quote(rng.choice(item_ids), safe='')}" if item_ids else path
        lines.append(f"{target}\t{cookie}")
    return lines


def events_then_refreshed(*, lag_samples: int = 20, timeout_s: float = 600.0) -> dict[str, float]:
    """One item view for every benchmark user through the ingestion service (as the event
    API stores them), then wait until the worker has rendered each one's answer.

    First `lag_samples` visitors one at a time with nothing else queued: the lag from an
    event's commit to its answer in the cache (a request sooner than that misses). Then
    the rest as a burst, one event (so one queued refresh) per visitor: how long the
    worker takes to catch up. Runs inside `manage.py shell` (Django set up), with the
    shared cache (REDIS_URL) and a worker consuming the default queue.
    """
    import time

    from django.core.cache import caches
    from django.utils import timezone

    from recommender.answers import home_answer_key
    from webapp.models import Visitor
    from webapp.services.interactions import ValidatedEvent, interactions_ingest

    visitors = list(
        Visitor.objects.filter(user__username__regex=rf"^{USERNAME_PREFIX}[0-9]+$").order_by("pk")
    )
    items = active_item_ids()
    rng = random.Random(len(visitors))
    cache = caches["recommendations"]
    deadline = time.monotonic() + timeout_s

    def log_view(visitor: "Visitor") -> str:
        item = rng.choice(items)
        event = ValidatedEvent("view", visitor.key, timezone.now(), None, item)
        interactions_ingest(events=[event])
        visitor.refresh_from_db(fields=["generation"])
        return home_answer_key(visitor)

    lags = []
    for visitor in visitors[:lag_samples]:
        started = time.perf_counter()
        key = log_view(visitor)
        while not cache.has_key(key) and time.monotonic() < deadline:
            time.sleep(0.001)
        lags.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    keys = [log_view(visitor) for visitor in visitors[lag_samples:]]
    logged = time.perf_counter() - started
    missing = keys
    while missing and time.monotonic() < deadline:
        time.sleep(0.05)
        found = cache.get_many(missing)
        missing = [key for key in missing if key not in found]
    caught_up = time.perf_counter() - started
    lags.sort()
    return {
        "lag_samples": len(lags),
        "lag_p50_ms": lags[len(lags) // 2],
        "lag_max_ms": lags[-1],
        "burst_events": len(keys),
        "burst_logged_s": logged,
        "burst_caught_up_s": caught_up,
        "burst_missing": len(missing),
    }
