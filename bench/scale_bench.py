"""Large catalogs through the API: 10k items scored exactly vs 1M items through the ANN index.

    .venv/bin/python bench/scale_bench.py [--sizes 10000 1000000] [--duration 20]
        [--rounds 3] [--connections 8] [--fresh] [--cleanup] [--results bench/RESULTS.md]

Each size has its own database (`bench_scale_10k`, `bench_scale_1m`) and artifact folder
(var/bench/scale/<N>/), filled once by bench/scale_data.py (reused until --fresh). Then,
holding /tmp/bench.lock (no other benchmark measures meanwhile): time a worker's model
loading (the first one builds and saves the ANN index), start one gunicorn per size
(2 sync workers, webapp.gunicorn_conf, DEBUG off, OMP_NUM_THREADS=1,
RECOMMENDER_CACHE_SECONDS=0 so every request computes its answer), check sample answers
are model answers, warm up, and run wrk (bench/scale_requests.lua) on `placement=item`
(random items) and `placement=home` (visitors with 5-20 views), with the visitor's
cookies. RECOMMENDER_ANN_THRESHOLD keeps its default: 10k items are scored exactly, 1M
through faiss IVF.
"""

import argparse
import fcntl
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
WORK = ROOT / "var" / "bench" / "scale"
LUA = ROOT / "bench" / "scale_requests.lua"
PLACEMENTS = ("item", "home")
READY_TIMEOUT_S = 600
SAMPLE_CHECKS = 20
RESULTS_BEGIN = "<!-- scale:begin -->"
RESULTS_END = "<!-- scale:end -->"
RESULTS_HEADING = "## Large catalogs (ANN)"
SECRET_KEY = "scale-bench-only"  # noqa: S105 (signs the synthetic visitors' cookies)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def label(items: int) -> str:
    return f"{items // 1_000_000}m" if items % 1_000_000 == 0 else f"{items // 1_000}k"


@dataclass(frozen=True)
class Setup:
    items: int
    url: str  # the database of this size
    work: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.url,
            "ML_ARTIFACT_DIR": str(self.work / "models"),
            "DJANGO_SETTINGS_MODULE": "webapp.settings.local",
            "DEBUG": "false",
            "SECRET_KEY": SECRET_KEY,
            "OMP_NUM_THREADS": "1",
            "RECOMMENDER_CACHE_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
        }


# --- Database and data ----------------------------------------------------------------


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return url or (ROOT / "var" / "postgres" / "database_url").read_text().strip()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def database_exists(url: str, name: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return found is not None


def database_drop(url: str, name: str, *, create: bool) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def bench_lock(path: Path) -> Iterator[None]:
    """flock(2) on the file that `flock /tmp/bench.lock ...` takes: one benchmark at a time."""
    with path.open("a") as handle:
        log(f"waiting for {path}")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def data_step(setup: Setup, *args: str) -> dict[str, Any]:
    """Run a bench/scale_data.py step in this size's environment; its JSON result."""
    command = [PYTHON, str(ROOT / "bench" / "scale_data.py"), *args]
    done = subprocess.run(
        command, env=setup.env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def prepared(setup: Setup, server: str, visitors: int, fresh: bool) -> dict[str, Any]:
    """The figures of this size's data, generating it first when missing or --fresh."""
    marker, name = setup.work / "prepare.json", f"bench_scale_{label(setup.items)}"
    if not fresh and marker.exists() and database_exists(server, name):
        log(f"{setup.items:,} items: reusing {name} and {setup.work}")
        cached: dict[str, Any] = json.loads(marker.read_text())
        return cached
    log(f"{setup.items:,} items: creating {name} and generating the data")
    database_drop(server, name, create=True)
    shutil.rmtree(setup.work, ignore_errors=True)
    setup.work.mkdir(parents=True)
    migrate = [PYTHON, "manage.py", "migrate", "--verbosity", "0"]
    subprocess.run(migrate, env=setup.env, cwd=ROOT, check=True)
    figures = data_step(
        setup, "prepare", "--items", str(setup.items), "--visitors", str(visitors),
        "--out", str(setup.work),
    )  # fmt: skip
    marker.write_text(json.dumps(figures))
    return figures


def failures_counted(setup: Setup) -> int:
    with psycopg.connect(setup.url) as conn:
        row = conn.execute("SELECT coalesce(sum(count), 0) FROM recommender_servingfailure")
        total = row.fetchone()
    return int(total[0]) if total else 0


# --- The server and the load ----------------------------------------------------------


@contextmanager
def gunicorn(setup: Setup, port: int) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """gunicorn with two warmed-up workers; yields the process and seconds until ready."""
    logfile = setup.work / "gunicorn.log"
    command = [
        PYTHON, "-m", "gunicorn", "webapp.wsgi", "--config", "python:webapp.gunicorn_conf",
        "--workers", "2", "--bind", f"127.0.0.1:{port}", "--error-logfile", str(logfile),
    ]  # fmt: skip
    logfile.unlink(missing_ok=True)
    started = time.perf_counter()
    server = subprocess.Popen(command, env=setup.env, cwd=ROOT)
    try:
        while True:
            text = logfile.read_text() if logfile.exists() else ""
            if text.count("serving warm") >= 2:
                break
            if "WORKER TIMEOUT" in text or server.poll() is not None:
                raise RuntimeError(f"gunicorn did not come up, see {logfile}")
            if time.perf_counter() - started > READY_TIMEOUT_S:
                raise RuntimeError(f"gunicorn not ready after {READY_TIMEOUT_S} s")
            time.sleep(0.5)
        yield server, time.perf_counter() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def workers_rss_mb(server: subprocess.Popen[bytes]) -> float:
    """Resident memory of the master's children (the workers), from /proc."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    total_kb = 0
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def sample_answers(base: str, lines: list[str]) -> tuple[int, int]:
    """(answers checked, answers that were a fallback or short) over sample request lines."""
    bad = 0
    for line in lines[:SAMPLE_CHECKS]:
        path, cookie = line.split("\t")
        request = urllib.request.Request(base + path, headers={"Cookie": cookie})  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            body = json.load(response)
        bad += body["fallback"] != "" or len(body["items"]) != 10
    return min(SAMPLE_CHECKS, len(lines)), bad


def wrk(base: str, requests: Path, seconds: int, connections: int) -> dict[str, Any]:
    command = [
        "wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(LUA), base, "--", str(requests),
    ]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("SCALE_RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("SCALE_RESULT "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def measure(setups: list[Setup], args: argparse.Namespace) -> dict[int, dict[str, Any]]:
    """Load times per size, then every size served at once and measured in alternation.

    Rounds alternate the sizes (10k item, 1M item, 10k home, ...) so that load from the
    rest of the machine falls on both alike; the report takes the median of the rounds.
    """
    sizes: dict[int, dict[str, Any]] = {}
    for setup in setups:
        log(f"{setup.items:,} items: timing a worker's model loading")
        sizes[setup.items] = {"load": data_step(setup, "load"), "runs": {}}
    with ExitStack() as stack:
        bases = {}
        for offset, setup in enumerate(setups):
            server, ready_s = stack.enter_context(gunicorn(setup, args.port + offset))
            log(f"{setup.items:,} items: gunicorn ready in {ready_s:.1f} s")
            figures, base = sizes[setup.items], f"http://127.0.0.1:{args.port + offset}"
            figures |= {"ready_s": ready_s, "server": server, "checks": {}}
            for placement in PLACEMENTS:
                lines = request_file(setup, placement).read_text().splitlines()
                figures["checks"][placement] = sample_answers(base, lines)
                wrk(base, request_file(setup, placement), args.warmup, args.connections)
                figures["runs"][placement] = []
            figures["failures_before"] = failures_counted(setup)
            bases[setup.items] = base
        for round_number in range(1, args.rounds + 1):
            for placement in PLACEMENTS:
                for setup in setups:
                    log(f"round {round_number}: {setup.items:,} items, {placement}")
                    run = wrk(bases[setup.items], request_file(setup, placement), args.duration,
                              args.connections)  # fmt: skip
                    sizes[setup.items]["runs"][placement].append(run)
        for setup in setups:
            figures = sizes[setup.items]
            figures["fallbacks"] = failures_counted(setup) - figures.pop("failures_before")
            figures["rss_mb"] = workers_rss_mb(figures.pop("server"))
    return sizes


def request_file(setup: Setup, placement: str) -> Path:
    return setup.work / f"requests-{placement}.txt"  # written by scale_data.py prepare


# --- Report ---------------------------------------------------------------------------


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def sum_of(runs: list[dict[str, Any]], key: str) -> int:
    return int(sum(run[key] for run in runs))


def built(load: dict[str, Any]) -> str:
    """Which indexes the first load had to build: "3 built", "read from disk" or "none"."""
    if load["ann"][0] is None:
        return "exact: none"
    fresh = sum(not saved for saved in load["ann_saved_before"])
    return f"{fresh} built" if fresh else "read from disk"


def report(sizes: dict[int, dict[str, Any]], args: argparse.Namespace) -> str:
    ms = 1 / 1000
    lines = [
        "| items | placement | scoring | requests | req/s | p50 ms | p95 ms (range) | p99 ms"
        " | non-2xx | socket errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for items, figures in sizes.items():
        ann = figures["load"]["ann"][0]
        for placement, runs in figures["runs"].items():
            p95s = sorted(run["p95_us"] * ms for run in runs)
            lines.append(
                f"| {items:,} | {placement} | {ann or 'exact'} | {sum_of(runs, 'requests'):,}"
                f" | {median_of(runs, 'rps'):.0f} | {median_of(runs, 'p50_us') * ms:.1f}"
                f" | **{median_of(runs, 'p95_us') * ms:.1f}** ({p95s[0]:.0f}-{p95s[-1]:.0f})"
                f" | {median_of(runs, 'p99_us') * ms:.1f} | {sum_of(runs, 'non_2xx')}"
                f" | {sum_of(runs, 'socket_errors')} |"
            )
    lines.append(
        "\nFallbacks counted by the servers during the runs: "
        + ", ".join(f"{items:,} items {figures['fallbacks']}" for items, figures in sizes.items())
    )
    lines += [
        "",
        "| items | COPY items s | read artifact s (1 role) | item_pks_of s (1 role) "
        "| first load, 3 roles s | worker warm-up, 3 roles s "
        "| index from disk, 3 roles s | gunicorn ready s | 2 workers RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for items, figures in sizes.items():
        load, data = figures["load"], figures["prepare"]
        lines.append(
            f"| {items:,} | {data['copy_items_s']:.1f} | {load['read_artifact_s']:.1f}"
            f" | {load['item_pks_of_s']:.1f} | {load['first_load_all_roles_s']:.1f}"
            f" ({built(load)})"
            f" | {load['warm_up_s']:.1f} | {load['index_from_disk_all_roles_s']:.2f}"
            f" | {figures['ready_s']:.1f} | {figures['rss_mb']:,.0f} |"
        )
    if len(sizes) == 2:
        small, large = (sizes[n]["runs"] for n in sorted(sizes))
        lines.append("")
        for placement in PLACEMENTS:
            ratio = median_of(large[placement], "p95_us") / median_of(small[placement], "p95_us")
            verdict = "meets" if ratio <= args.target else "misses"
            lines.append(
                f"- p95 {max(sizes):,} / {min(sizes):,} items, {placement}: "
                f"**{ratio:.2f}x** ({verdict} the {args.target}x target)"
            )
    return "\n".join(lines)


def header(sizes: dict[int, dict[str, Any]], args: argparse.Namespace) -> str:
    first = next(iter(sizes.values()))["prepare"]
    checks = "; ".join(
        f"{n:,}: " + ", ".join(f"{p} {bad}/{total} bad" for p, (total, bad) in f["checks"].items())
        for n, f in sizes.items()
    )
    command = " ".join([".venv/bin/python bench/scale_bench.py", *sys.argv[1:]])
    return (
        f"Command: `{command}`  \n"
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  \n"
        f"Machine: {os.cpu_count()} cores shared with the database and wrk, Python "
        f"{platform.python_version()}; gunicorn 2 sync workers, OMP_NUM_THREADS=1  \n"
        f"Load: wrk, {args.connections} connections, {args.warmup} s warm-up, then "
        f"{args.rounds} round(s) of {args.duration} s per size and placement, sizes alternating "
        "(medians of the rounds; p95 range in brackets), k=10, recommendation cache off  \n"
        f"Data: {first['visitors']} visitors with 5-20 views each; ALS-shaped item factors "
        f"(d=64, a cluster per 1,000 items) as home, similar and session models  \n"
        f"Sample answers checked (fallback or fewer than 10 items): {checks}\n\n"
    )


def results_write(path: Path, block: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if RESULTS_BEGIN not in text:
        text = text.rstrip("\n") + f"\n\n{RESULTS_HEADING}\n\n{RESULTS_BEGIN}\n{RESULTS_END}\n"
    before, rest = text.split(RESULTS_BEGIN, 1)
    after = rest.split(RESULTS_END, 1)[1]
    path.write_text(f"{before}{RESULTS_BEGIN}\n{block}\n{RESULTS_END}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--visitors", type=int, default=300)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--target", type=float, default=1.5)
    parser.add_argument("--lock", type=Path, default=Path("/tmp/bench.lock"))  # noqa: S108
    parser.add_argument("--fresh", action="store_true", help="regenerate the data")
    parser.add_argument("--cleanup", action="store_true", help="drop databases and files after")
    parser.add_argument("--results", type=Path, help="write the tables into this file")
    args = parser.parse_args()
    server = server_url()
    setups = [
        Setup(items, with_database(server, f"bench_scale_{label(items)}"), WORK / str(items))
        for items in args.sizes
    ]
    prepare = {}
    for setup in setups:
        with bench_lock(args.lock):
            prepare[setup.items] = prepared(setup, server, args.visitors, args.fresh)
    with bench_lock(args.lock):
        sizes = measure(setups, args)
    for items, figures in sizes.items():
        figures["prepare"] = prepare[items]
    block = header(sizes, args) + report(sizes, args)
    print(block)
    if args.results:
        results_write(args.results, block)
    if args.cleanup:
        for items in args.sizes:
            database_drop(server, f"bench_scale_{label(items)}", create=False)
            shutil.rmtree(WORK / str(items), ignore_errors=True)


if __name__ == "__main__":
    main()
