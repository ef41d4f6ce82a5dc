"""Where a recommendation request's time goes: cProfile over in-process requests.

    .venv/bin/python bench/serving_profile.py [--database bench_serving] [--users 200]
        [--path "/api/recommendations/?placement=home&k=10"] [--top 30] [--sort tottime]

Same database, settings (DEBUG off) and cookies as bench/serving_bench.py, but requests go
through django.test.Client in this process: one pass over the users (cold cache), then a
second pass (warm: every answer cached). Prints per-pass latency, SQL queries per request
and the functions with the most cumulative time in each pass.
"""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serving_data import serving_environment, serving_prepare, user_cookies  # noqa: E402
from bench.serving_load import SINGLE_THREADED  # noqa: E402


def _pass(path: str, cookies: list[str], top: int, label: str, sort: str) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(SERVER_NAME="127.0.0.1")
    timings, queries, hits = [], 0, 0
    profiler = cProfile.Profile()
    for cookie in cookies:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            profiler.enable()
            response = client.get(path, HTTP_COOKIE=cookie)
            profiler.disable()
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        queries += len(captured.captured_queries)
        hits += response.headers.get("X-Recommendations-Cache") == "hit"
    quantiles = statistics.quantiles(timings, n=100)
    print(
        f"\n== {label}: {len(cookies)} requests, mean {statistics.mean(timings):.1f} ms, "
        f"p50 {quantiles[49]:.1f} p99 {quantiles[98]:.1f} ms, "
        f"{queries / len(cookies):.1f} queries/request, {hits} cache hits"
    )
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
    print(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="bench_serving")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--path", default="/api/recommendations/?placement=home&k=10")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--sort", choices=["cumulative", "tottime"], default="cumulative", help="profile order"
    )
    args = parser.parse_args()
    os.environ.update(serving_environment(args.database) | SINGLE_THREADED)
    serving_prepare(print)
    from recommender.active_models import serving_warm_up

    serving_warm_up()
    cookies = user_cookies(limit=args.users)
    from django.test import Client

    Client(SERVER_NAME="127.0.0.1").get("/api/recommendations/?placement=none")  # URLconf
    _pass(args.path, cookies, args.top, "cold (first request of each user)", args.sort)
    _pass(args.path, cookies, args.top, "warm (same requests again)", args.sort)
    return 0


if __name__ == "__main__":
    sys.exit(main())
