"""Tables of the serving benchmark, for stdout and between markers in bench/RESULTS.md."""

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.serving_load import LoadResult, ServerConfig

BEGIN = "<!-- serving:begin -->"
END = "<!-- serving:end -->"
SECTION = "## Serving latency (`bench/serving_bench.py`)"
TARGET_P99_MS = 20.0
TARGET_PAGE_RATIO = 0.8
CPU_COLUMNS = ("gunicorn", "postgres", "wrk")


@dataclass(frozen=True)
class ApiRow:
    config: str
    endpoint: str
    clients: int
    phase: str  # "cold" (first pass after a restart) or "warm"
    result: LoadResult
    think_ms: float = 0.0  # > 0: clients pause this long on average between requests

    @property
    def clients_label(self) -> str:
        if self.think_ms:
            return f"{self.clients}, think {self.think_ms:.0f} ms"
        return str(self.clients)


@dataclass(frozen=True)
class PageRow:
    config: str
    page: str
    clients: int
    round: int
    result: LoadResult


def _cpu_cells(result: LoadResult) -> list[str]:
    used = [result.cores(name) for name in CPU_COLUMNS]
    other = max(0.0, result.cores("machine") - sum(used))
    cells = [f"{value:.2f}" for value in (*used, other)]
    cells[0] += f" ({result.cores('gunicorn_busiest'):.2f})"
    per_request = result.cpu_ms_per_request("gunicorn", "postgres")
    return [f"{per_request:.1f}", *cells, f"{result.probe_ms:.0f}"]


def _latency_cells(result: LoadResult) -> list[str]:
    values = (result.p50_ms, result.p95_ms, result.p99_ms, result.max_ms)
    return [f"{value:.1f}" for value in values]


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


CPU_HEADER = [
    "CPU ms/req",
    "CPU gunicorn (busiest process)",
    "CPU postgres",
    "CPU wrk",
    "CPU other",
    "probe ms",
]


def api_table(rows: list[ApiRow]) -> list[str]:
    """One line per gunicorn setup, endpoint, client count and cache phase."""
    header = ["gunicorn", "endpoint", "clients", "cache", "requests", "req/s"]
    header += ["p50 ms", "p95 ms", "p99 ms", "max ms", "hit rate", "non-200", *CPU_HEADER]
    lines = [_row(header), _row(["---"] * len(header))]
    for row in rows:
        result = row.result
        hit = "" if result.hit_rate is None else f"{result.hit_rate:.0%}"
        cells = [row.config, row.endpoint, row.clients_label, row.phase, f"{result.requests:,}"]
        cells += [f"{result.rps:,.0f}", *_latency_cells(result), hit]
        cells += [str(result.not_ok + result.socket_errors), *_cpu_cells(result)]
        lines.append(_row(cells))
    return lines


def page_table(rows: list[PageRow]) -> list[str]:
    """Page throughput rows: each page for a fixed time, rounds interleaved."""
    header = ["page", "gunicorn", "clients", "round", "requests", "req/s"]
    header += ["p50 ms", "p95 ms", "p99 ms", "max ms", "non-200", *CPU_HEADER]
    lines = [_row(header), _row(["---"] * len(header))]
    for row in rows:
        result = row.result
        cells = [f"`{row.page}`", row.config, str(row.clients), str(row.round)]
        cells += [f"{result.requests:,}", f"{result.rps:,.0f}", *_latency_cells(result)]
        cells += [str(result.not_ok + result.socket_errors), *_cpu_cells(result)]
        lines.append(_row(cells))
    return lines


def page_ratio(rows: list[PageRow], personal: str, reference: str) -> float:
    """Requests/s of the personalized page over the reference page, all rounds together."""

    def rate(page: str) -> float:
        chosen = [row.result for row in rows if row.page == page]
        return sum(r.requests for r in chosen) / sum(r.seconds for r in chosen)

    return rate(personal) / rate(reference)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def summary_lines(
    rows: list[ApiRow], pages: list[PageRow], best: str, target_clients: int
) -> list[str]:
    """The figures the issue asks about, each against its target."""
    lines = []
    for row in rows:
        paced_or_best = row.think_ms or row.config == best
        if row.endpoint == "home" and row.clients == target_clients and paced_or_best:
            p99, met = row.result.p99_ms, _verdict(row.result.p99_ms < TARGET_P99_MS)
            lines.append(
                f"- API p99 at {row.clients_label} clients, {row.phase} ({row.config}): "
                f"{p99:.1f} ms "
                f"(target < {TARGET_P99_MS:.0f} ms: {met}); "
                f"{row.result.rps:.0f} req/s, hit rate {row.result.hit_rate or 0:.0%}"
            )
    wrk = max((r.result.cores("wrk") for r in rows), default=0.0)
    lines.append(f"- wrk (one thread) used at most {wrk:.2f} cores of 2 ({wrk / 2:.0%})")
    if pages:
        personal, reference = pages[0].page, pages[1].page
        ratio = page_ratio(pages, personal, reference)
        met = _verdict(ratio >= TARGET_PAGE_RATIO)
        rounds = sorted({row.round for row in pages})
        each = [page_ratio([r for r in pages if r.round == n], personal, reference) for n in rounds]
        cpu = {
            page: sum(r.result.cpu_ms_per_request("gunicorn", "postgres") for r in chosen)
            / len(chosen)
            for page in (personal, reference)
            if (chosen := [r for r in pages if r.page == page])
        }
        lines.append(
            f"- personalized `{personal}` / non-personalized `{reference}` requests/s at "
            f"{pages[0].clients} clients: {ratio:.2f} (target >= {TARGET_PAGE_RATIO}: {met}); "
            f"per round {', '.join(f'{value:.2f}' for value in each)}; CPU per request "
            f"{cpu[personal]:.1f} vs {cpu[reference]:.1f} ms "
            f"(ratio {cpu[reference] / cpu[personal]:.2f})"
        )
    return lines


def refresh_lines(figures: list[dict[str, float]]) -> list[str]:
    """What the "after events" rows rest on: how soon the worker renders a new answer."""
    if not figures:
        return []
    lag_p50 = sorted(f["lag_p50_ms"] for f in figures)[len(figures) // 2]
    lag_max = max(f["lag_max_ms"] for f in figures)
    events = figures[0]["burst_events"]
    caught_up = [f["burst_caught_up_s"] for f in figures]
    missing = sum(f["burst_missing"] for f in figures)
    return [
        f"- refresh after an event (worker, solo pool): lag from the event's commit to its "
        f"rendered answer p50 {lag_p50:.0f} ms, max {lag_max:.0f} ms "
        f"({int(figures[0]['lag_samples'])} visitors one at a time, {len(figures)} runs); a "
        f"burst of {int(events)} events (one per user) rendered in "
        f"{min(caught_up):.1f}-{max(caught_up):.1f} s "
        f"({events / max(caught_up):.0f}-{events / min(caught_up):.0f} answers/s), "
        f"{int(missing)} not rendered before the timeout"
    ]


def results_write(
    path: Path, *, command: str, configs: list[ServerConfig], lines: list[str]
) -> None:
    """Replace the block between the serving markers (appending the section if absent)."""
    header = [
        f"Command: `{command}`  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {os.cpu_count()} cores shared by server, Postgres and wrk, "
        f"Python {platform.python_version()}  ",
        "gunicorn: " + ", ".join(c.name for c in configs) + " (webapp.gunicorn_conf, "
        f"DEBUG off, OMP/MKL/OpenBLAS 1 thread, {_cache_in_use()})  ",
        "CPU ms/req: gunicorn + Postgres CPU time per response. Other CPU columns: average "
        "cores busy during the row (busiest process: the gunicorn process that used most; "
        "other: the rest of the machine, i.e. work outside this benchmark). probe ms: a fixed "
        "pure-Python loop timed just before the row; the host slows this VM's CPUs by up to "
        "2x at times (not visible as steal), so compare rows with similar probes  ",
        "",
    ]
    block = "\n".join([BEGIN, *header, *lines, END])
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    path.write_text(text)


def _cache_in_use() -> str:
    """Which recommendation cache the servers used (REDIS_URL, as in production, or none)."""
    if os.environ.get("REDIS_URL"):
        return "recommendation cache in Redis (REDIS_URL) on this machine, shared by workers"
    return "LocMem recommendation cache per process (no REDIS_URL)"
