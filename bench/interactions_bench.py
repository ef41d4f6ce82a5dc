"""The interaction log at scale: synthetic events loaded with COPY, then writes and reads timed.

    .venv/bin/python bench/interactions_bench.py [--events 10000000] [--keep]
        [--results bench/RESULTS.md]

Works in its own database (`platform_bench`, dropped and re-created on the server that
DATABASE_URL or var/postgres/database_url names; dropped again at the end unless --keep),
migrated with Django. Measures: COPY of the synthetic log (rows/s), the service write path
(batches of 500 through bulk_create(ignore_conflicts=True) and through
interactions_ingest) on the already-big table, the three read patterns (p50/p95 with the
plan's node types), server-side-cursor streaming (rows/s) and table/index sizes. Prints a
table and writes it between the markers in the results file.
"""

import argparse
import os
import platform
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DATABASE = "platform_bench"
DEFAULT_EVENTS = 10_000_000
VISITORS = 200_000
ITEMS = 50_000
DAYS = 365
ITEM_ZIPF_EXPONENT = 0.9  # item popularity ~ 1 / rank^0.9
VISITOR_ACTIVITY_SIGMA = 1.0  # visitor activity: lognormal weights
EVENT_MIX = {
    "impression": 0.45,
    "view": 0.28,
    "click": 0.12,
    "add_to_cart": 0.06,
    "purchase": 0.03,
    "rating": 0.03,
    "search": 0.03,
}
PLACEMENTS = ("home", "item_page", "cart", "email")
PLACED_TYPES = frozenset({"impression", "click"})
NULL = "\\N"  # COPY text format
SEARCH_TERMS = ("shoes", "red dress", "laptop", "coffee", "gift", "sale", "phone case")
COPY_CHUNK = 250_000
INGEST_BATCH = 500
INGEST_BATCHES = 60
RUNS_POINT = 300  # runs of the visitor and item queries
RUNS_HOUR = 100
RUNS_DAY = 20
RUNS_MONTH = 3
STREAM_CHUNK = 5_000
SEED = 20_250_501
RESULTS_BEGIN = "<!-- bench:begin -->"
RESULTS_END = "<!-- bench:end -->"
INTERACTION_COLUMNS = (
    "event_id, visitor_id, item_id, event_type, value, query, session_id, timestamp, "
    "placement, context, is_bot"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- The database ----------------------------------------------------------------------


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        url = (ROOT / "var" / "postgres" / "database_url").read_text().strip()
    return url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_recreate(url: str, name: str, *, create: bool = True) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.settings.local"
    os.environ["DEBUG"] = "false"  # DEBUG keeps every query in memory
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


# --- Synthetic data --------------------------------------------------------------------


@dataclass(frozen=True)
class Population:
    visitor_ids: np.ndarray
    visitor_keys: list[uuid.UUID]
    visitor_p: np.ndarray
    item_ids: np.ndarray
    item_p: np.ndarray
    start: datetime
    end: datetime

    def visitors(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(len(self.visitor_ids), size=size, p=self.visitor_p)

    def items(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(len(self.item_ids), size=size, p=self.item_p)


def population_create(conn: psycopg.Connection, now: datetime) -> Population:
    """200k visitors and 50k items, written with COPY; their ids and sampling weights."""
    rng = np.random.default_rng(SEED)
    stamp = now.isoformat()
    keys = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(VISITORS)]
    with conn.cursor() as cur:
        columns = "key, is_bot, created_at, last_seen_at"
        with cur.copy(f"COPY webapp_visitor ({columns}) FROM STDIN") as copy:
            copy.write("".join(f"{key}\tf\t{stamp}\t{stamp}\n" for key in keys))
        columns = (
            "external_id, title, description, attributes, list_price, currency, image_url, "
            "url, is_active, created_at, updated_at"
        )
        prices = np.round(rng.uniform(2, 300, ITEMS), 2)
        with cur.copy(f"COPY webapp_item ({columns}) FROM STDIN") as copy:
            copy.write(
                "".join(
                    f"bench-{n}\tBench item {n}\t\t{{}}\t{prices[n]:.2f}\tUSD\t\t\tt\t{stamp}\t"
                    f"{stamp}\n"
                    for n in range(ITEMS)
                )
            )
        visitor_rows = cur.execute("SELECT id, key FROM webapp_visitor ORDER BY id").fetchall()
        item_ids = [row[0] for row in cur.execute("SELECT id FROM webapp_item ORDER BY id")]
    conn.commit()
    activity = rng.lognormal(0, VISITOR_ACTIVITY_SIGMA, VISITORS)
    popularity = 1 / np.arange(1, ITEMS + 1) ** ITEM_ZIPF_EXPONENT
    rng.shuffle(popularity)  # popular items are not simply the low ids
    return Population(
        visitor_ids=np.array([row[0] for row in visitor_rows]),
        visitor_keys=[row[1] for row in visitor_rows],
        visitor_p=activity / activity.sum(),
        item_ids=np.array(item_ids),
        item_p=popularity / popularity.sum(),
        start=now - timedelta(days=DAYS),
        end=now,
    )


def events_chunk(pop: Population, index: int, chunks: int, size: int) -> str:
    """COPY text of `size` events in the index-th slice of the year, in time order."""
    rng = np.random.default_rng(SEED + 1 + index)
    span_us = (pop.end - pop.start) / timedelta(microseconds=1)
    first_us = pop.start.timestamp() * 1e6 + span_us * index / chunks
    offsets = np.sort(rng.random(size)) * span_us / chunks
    stamps_us = (first_us + offsets).astype("int64")
    stamps = np.datetime_as_string(stamps_us.astype("datetime64[us]"), timezone="UTC").tolist()
    days = ((stamps_us - int(pop.start.timestamp() * 1e6)) // 86_400_000_000).tolist()
    types = rng.choice(list(EVENT_MIX), size=size, p=list(EVENT_MIX.values())).tolist()
    visitors = pop.visitor_ids[pop.visitors(rng, size)].tolist()
    items = pop.item_ids[pop.items(rng, size)].tolist()
    ratings = rng.integers(1, 6, size).tolist()
    prices = np.round(rng.uniform(2, 300, size), 2).tolist()
    placements = rng.choice(PLACEMENTS, size=size).tolist()
    terms = rng.choice(SEARCH_TERMS, size=size).tolist()
    ids = rng.bytes(16 * size).hex()
    rows = []
    for n, (kind, visitor, item) in enumerate(zip(types, visitors, items, strict=True)):
        value = ratings[n] if kind == "rating" else prices[n] if kind == "purchase" else NULL
        search = kind == "search"
        placement = placements[n] if kind in PLACED_TYPES else ""
        rows.append(
            f"{ids[32 * n : 32 * n + 32]}\t{visitor}\t{NULL if search else item}\t{kind}\t"
            f"{value}\t{terms[n] if search else ''}\ts{visitor}-{days[n]}\t{stamps[n]}\t"
            f"{placement}\t{{}}\tf\n"
        )
    return "".join(rows)


@dataclass
class CopyResult:
    rows: int = 0
    wall_s: float = 0.0
    copy_s: float = 0.0
    generate_s: float = 0.0


def events_copy(conn: psycopg.Connection, pop: Population, total: int) -> CopyResult:
    """COPY the log chunk by chunk (one transaction each), generating the next one meanwhile."""
    chunks = max(1, -(-total // COPY_CHUNK))
    sizes = [COPY_CHUNK] * (chunks - 1) + [total - COPY_CHUNK * (chunks - 1)]
    result = CopyResult()
    ready: queue.Queue[str | None] = queue.Queue(maxsize=2)

    def produce() -> None:
        for index, size in enumerate(sizes):
            started = time.perf_counter()
            text = events_chunk(pop, index, chunks, size)
            result.generate_s += time.perf_counter() - started
            ready.put(text)
        ready.put(None)

    producer = threading.Thread(target=produce, daemon=True)
    started = time.perf_counter()
    producer.start()
    with conn.cursor() as cur:
        for index, size in enumerate(sizes):
            text = ready.get()
            assert text is not None
            copy_started = time.perf_counter()
            with cur.copy(f"COPY webapp_interaction ({INTERACTION_COLUMNS}) FROM STDIN") as copy:
                copy.write(text)
            conn.commit()
            result.copy_s += time.perf_counter() - copy_started
            result.rows += size
            elapsed = time.perf_counter() - started
            log(
                f"COPY chunk {index + 1}/{chunks}: {result.rows:,} rows, "
                f"{result.rows / elapsed:,.0f} rows/s overall"
            )
    producer.join()
    result.wall_s = time.perf_counter() - started
    return result


# --- Measuring -------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    runs: int
    p50_ms: float
    p95_ms: float
    rows_avg: float
    plan: str = ""
    rows_per_s: float | None = None


@dataclass
class Report:
    events: int
    started: datetime
    copy: CopyResult = field(default_factory=CopyResult)
    setup_s: float = 0.0
    vacuum_s: float = 0.0
    ingest: list[tuple[str, float, float, float]] = field(default_factory=list)
    queries: list[Timing] = field(default_factory=list)
    sizes: list[tuple[str, int]] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def plan_nodes(sql: str, params: Any) -> str:
    """The plan's node types (and indexes) from EXPLAIN (ANALYZE), outermost first."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        plan = cur.fetchone()[0][0]["Plan"]
    nodes: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        label = node["Node Type"]
        if "Index Name" in node:
            label += f" [{node['Index Name']}]"
        nodes.append(label)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    return " > ".join(nodes)


def time_fetch(
    name: str, runs: int, query: Callable[[np.random.Generator], Any], rng: np.random.Generator
) -> Timing:
    """Run a queryset `runs` times with fresh random parameters, fetching every row."""
    from django.db import connection

    durations: list[float] = []
    rows = 0
    for run in range(runs + 5):
        sql, params = query(rng).query.sql_with_params()
        started = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(sql, params)
            fetched = len(cur.fetchall())
        if run >= 5:  # the first few warm the caches
            durations.append(time.perf_counter() - started)
            rows += fetched
    sql, params = query(rng).query.sql_with_params()
    return Timing(
        name=name,
        runs=runs,
        p50_ms=percentile(durations, 50) * 1000,
        p95_ms=percentile(durations, 95) * 1000,
        rows_avg=rows / runs,
        plan=plan_nodes(sql, params),
    )


def time_stream(
    name: str,
    runs: int,
    window: timedelta,
    pop: Population,
    rng: np.random.Generator,
    *,
    atomic: bool = True,
) -> Timing:
    """Training read: every event in a time window through a server-side cursor."""
    from django.db import transaction

    from webapp.models import Interaction

    def window_qs(start: datetime) -> Any:
        return Interaction.objects.filter(
            timestamp__gte=start, timestamp__lt=start + window
        ).values_list("visitor_id", "item_id", "event_type", "value", "timestamp")

    durations: list[float] = []
    rows = 0
    for run in range(runs + 1):
        start = pop.start + (pop.end - pop.start - window) * float(rng.random())
        started = time.perf_counter()
        count = 0
        if atomic:
            with transaction.atomic():
                for _ in window_qs(start).iterator(chunk_size=STREAM_CHUNK):
                    count += 1
        else:
            for _ in window_qs(start).iterator(chunk_size=STREAM_CHUNK):
                count += 1
        if run >= 1:
            durations.append(time.perf_counter() - started)
            rows += count
    sql, params = window_qs(pop.start + timedelta(days=100)).query.sql_with_params()
    return Timing(
        name=name,
        runs=runs,
        p50_ms=percentile(durations, 50) * 1000,
        p95_ms=percentile(durations, 95) * 1000,
        rows_avg=rows / runs,
        plan=plan_nodes(sql, params),
        rows_per_s=rows / sum(durations),
    )


def read_patterns(pop: Population) -> list[Timing]:
    from webapp.models import Interaction

    rng = np.random.default_rng(SEED + 10_000)
    week = timedelta(days=7)

    def visitor_recent(r: np.random.Generator) -> Any:
        visitor = int(pop.visitor_ids[pop.visitors(r, 1)[0]])
        return Interaction.objects.filter(visitor_id=visitor).order_by("-timestamp")[:50]

    def item_week(pick: Callable[[np.random.Generator], int]) -> Callable[..., Any]:
        def query(r: np.random.Generator) -> Any:
            start = pop.start + (pop.end - pop.start - week) * float(r.random())
            return Interaction.objects.filter(
                item_id=pick(r), timestamp__gte=start, timestamp__lt=start + week
            )

        return query

    def item_by_traffic(r: np.random.Generator) -> int:
        return int(pop.item_ids[pop.items(r, 1)[0]])

    def item_uniform(r: np.random.Generator) -> int:
        return int(pop.item_ids[r.integers(len(pop.item_ids))])

    timings = [
        time_fetch("(1) visitor's recent 50 events", RUNS_POINT, visitor_recent, rng),
        time_fetch(
            "(2) item, 7-day window, item by traffic",
            RUNS_POINT,
            item_week(item_by_traffic),
            rng,
        ),
        time_fetch("(2) item, 7-day window, any item", RUNS_POINT, item_week(item_uniform), rng),
    ]
    for name, runs, window, atomic in (
        ("(3) all events, 1-hour window", RUNS_HOUR, timedelta(hours=1), True),
        ("(3) all events, 1-day window", RUNS_DAY, timedelta(days=1), True),
        ("(3) all events, 30-day window", RUNS_MONTH, timedelta(days=30), True),
        ("(3) 30-day window, autocommit (WITH HOLD)", RUNS_MONTH, timedelta(days=30), False),
    ):
        log(f"timing {name}")
        timings.append(time_stream(name, runs, window, pop, rng, atomic=atomic))
    return timings


def ingest_rates(pop: Population) -> list[tuple[str, float, float, float]]:
    """Events/s and per-batch p50/p95 of the write paths, 500 events a batch."""
    from django.db import transaction

    from webapp.models import Interaction

    rng = np.random.default_rng(SEED + 20_000)

    def batch_rows() -> list[Interaction]:
        visitors = pop.visitor_ids[pop.visitors(rng, INGEST_BATCH)]
        items = pop.item_ids[pop.items(rng, INGEST_BATCH)]
        now = datetime.now(UTC)
        return [
            Interaction(
                event_id=uuid.uuid4(),
                visitor_id=int(visitor),
                item_id=int(item),
                event_type="view",
                timestamp=now - timedelta(seconds=float(rng.random()) * 60),
                session_id=f"s{visitor}",
                context={"bench": True},
            )
            for visitor, item in zip(visitors, items, strict=True)
        ]

    def measure(name: str, write: Callable[[], None]) -> tuple[str, float, float, float]:
        durations = []
        for _ in range(INGEST_BATCHES):
            started = time.perf_counter()
            write()
            durations.append(time.perf_counter() - started)
        rate = INGEST_BATCH * len(durations) / sum(durations)
        log(f"{name}: {rate:,.0f} events/s")
        return (name, rate, percentile(durations, 50) * 1000, percentile(durations, 95) * 1000)

    def bulk_create() -> None:
        rows = batch_rows()
        with transaction.atomic():
            Interaction.objects.bulk_create(rows, ignore_conflicts=True)

    results = [measure("bulk_create(ignore_conflicts=True), new events", bulk_create)]
    try:
        from webapp.services.interactions import ValidatedEvent, interactions_ingest
    except ImportError as error:  # the service is still moving; keep the rest of the bench
        log(f"skipping interactions_ingest: {error}")
        return results

    def validated_batch() -> list[Any]:
        visitors = pop.visitors(rng, INGEST_BATCH)
        items = pop.items(rng, INGEST_BATCH)  # item n is "bench-<n>"
        now = datetime.now(UTC)
        return [
            ValidatedEvent(
                event_type="view",
                visitor_key=pop.visitor_keys[int(visitor)],
                timestamp=now,
                event_id=uuid.uuid4(),
                item_external_id=f"bench-{int(item)}",
                session_id=f"s{visitor}",
            )
            for visitor, item in zip(visitors, items, strict=True)
        ]

    sent: list[list[Any]] = []

    def ingest_new() -> None:
        sent.append(validated_batch())
        interactions_ingest(events=sent[-1])

    def ingest_replayed() -> None:
        interactions_ingest(events=sent[len(sent) - INGEST_BATCHES])
        sent.append(sent[len(sent) - INGEST_BATCHES])

    results.append(measure("interactions_ingest (API service), new events", ingest_new))
    results.append(measure("interactions_ingest, replayed batch (all duplicates)", ingest_replayed))
    return results


def relation_sizes() -> list[tuple[str, int]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT 'table (heap + toast)', pg_table_size('webapp_interaction') UNION ALL "
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = 'webapp_interaction'::regclass UNION ALL "
            "SELECT 'total', pg_total_relation_size('webapp_interaction')"
        )
        return [(name, int(size)) for name, size in cur.fetchall()]


def server_settings() -> dict[str, str]:
    from django.db import connection

    names = ("server_version", "shared_buffers", "work_mem", "effective_cache_size", "jit")
    with connection.cursor() as cur:
        found = {}
        for name in names:
            cur.execute(f"SHOW {name}")
            found[name] = cur.fetchone()[0]
        return found


# --- Output ----------------------------------------------------------------------------


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:,.0f} MB"


def report_lines(report: Report, command: str) -> Iterator[str]:
    copy = report.copy
    yield f"Command: `{command}`  "
    yield f"Date: {report.started:%Y-%m-%d %H:%M} UTC  "
    yield (
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL "
        f"{report.settings.get('server_version', '?').split()[0]} on the same machine "
        f"(defaults: shared_buffers {report.settings.get('shared_buffers')}, work_mem "
        f"{report.settings.get('work_mem')}, jit {report.settings.get('jit')})  "
    )
    yield (
        f"Data: {report.events:,} events, {VISITORS:,} visitors (lognormal activity), "
        f"{ITEMS:,} items (zipf {ITEM_ZIPF_EXPONENT}), {DAYS} days, mix "
        + ", ".join(f"{k} {v:.0%}" for k, v in EVENT_MIX.items())
    )
    yield ""
    yield "| load | figure |"
    yield "| --- | --- |"
    yield (
        f"| COPY into the indexed table (7 indexes, 2 FKs), {COPY_CHUNK:,} rows per "
        f"transaction | {copy.rows / copy.wall_s:,.0f} rows/s wall ({copy.wall_s:,.0f} s); "
        f"{copy.rows / copy.copy_s:,.0f} rows/s while copying |"
    )
    yield f"| generating the rows in Python (overlapped) | {copy.generate_s:,.0f} s |"
    yield f"| VACUUM ANALYZE afterwards | {report.vacuum_s:,.0f} s |"
    for name, rate, p50, p95 in report.ingest:
        yield (
            f"| {name}, {INGEST_BATCH} per batch | {rate:,.0f} events/s "
            f"(batch p50 {p50:.0f} ms, p95 {p95:.0f} ms) |"
        )
    yield ""
    yield "| query | runs | p50 ms | p95 ms | rows (avg) | rows/s | plan |"
    yield "| --- | --- | --- | --- | --- | --- | --- |"
    for t in report.queries:
        streamed = f"{t.rows_per_s:,.0f}" if t.rows_per_s else ""
        yield (
            f"| {t.name} | {t.runs} | {t.p50_ms:,.1f} | {t.p95_ms:,.1f} | {t.rows_avg:,.0f} "
            f"| {streamed} | {t.plan} |"
        )
    yield ""
    yield "| relation | size |"
    yield "| --- | --- |"
    for name, size in report.sizes:
        yield f"| {name} | {megabytes(size)} |"


def results_write(path: Path, lines: list[str]) -> None:
    block = "\n".join([RESULTS_BEGIN, *lines, RESULTS_END])
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{RESULTS_BEGIN}\n{RESULTS_END}"
    if RESULTS_BEGIN in text and RESULTS_END in text:
        head, rest = text.split(RESULTS_BEGIN, 1)
        text = head + block + rest.split(RESULTS_END, 1)[1]
    else:
        text += "\n" + block + "\n"
    path.write_text(text)


# --- Main ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    command = "python bench/interactions_bench.py " + " ".join(sys.argv[1:])
    base = server_url()
    url = with_database(base, BENCH_DATABASE)
    report = Report(events=args.events, started=datetime.now(UTC))
    log(f"creating database {BENCH_DATABASE} and migrating")
    started = time.perf_counter()
    database_recreate(base, BENCH_DATABASE)
    try:
        django_setup(url)
        with psycopg.connect(url) as conn:
            pop = population_create(conn, report.started.replace(microsecond=0))
            report.setup_s = time.perf_counter() - started
            log(f"{VISITORS:,} visitors and {ITEMS:,} items in {report.setup_s:.0f} s")
            report.copy = events_copy(conn, pop, args.events)
            log("VACUUM ANALYZE")
            conn.autocommit = True
            started = time.perf_counter()
            conn.execute("VACUUM ANALYZE webapp_interaction")
            report.vacuum_s = time.perf_counter() - started
        report.settings = server_settings()
        report.ingest = ingest_rates(pop)
        report.queries = read_patterns(pop)
        report.sizes = relation_sizes()
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            database_recreate(base, BENCH_DATABASE, create=False)
    lines = list(report_lines(report, command))
    print("\n".join(lines))
    results_write(args.results, lines)
    log(f"figures written to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
