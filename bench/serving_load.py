"""Processes of the serving benchmark: gunicorn under test, wrk as the load, CPU accounting.

Standard library only (no Django): `bench/serving_bench.py` prepares the data and the
request files, this module starts the server, runs wrk over a request file and says what
it measured, including the CPU seconds of wrk, gunicorn, Postgres and the whole machine.
"""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = ROOT / "bench" / "serving_wrk.lua"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STARTUP_TIMEOUT_S = 180.0
WRK_TIMEOUT = "10s"  # slow cold requests count in the percentiles, not as socket errors
PROBE_LOOPS = 2_000_000  # about 0.25 s of pure Python on this machine when it is fast
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@dataclass(frozen=True)
class ServerConfig:
    """A gunicorn worker setup: sync workers when threads == 1, else gthread."""

    workers: int
    threads: int

    @property
    def name(self) -> str:
        if self.threads == 1:
            return f"{self.workers} sync"
        return f"{self.workers}x{self.threads} gthread"

    def arguments(self) -> list[str]:
        return ["--workers", str(self.workers), "--threads", str(self.threads)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


class Gunicorn:
    """gunicorn as `webapp/launcher.py` runs it, started fresh so its caches are empty."""

    def __init__(self, config: ServerConfig, env: dict[str, str], log_path: Path) -> None:
        self.config = config
        self.env = env | SINGLE_THREADED
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Gunicorn":
        command = [
            *("python", "-m", "gunicorn", "webapp.wsgi"),
            *("--config", "python:webapp.gunicorn_conf"),
            *("--bind", f"127.0.0.1:{self.port}", *self.config.arguments()),
        ]
        command[0] = str(ROOT / ".venv" / "bin" / "python")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        self._wait_until_warm()
        return self

    def _wait_until_warm(self) -> None:
        """Both workers have loaded the models (post_worker_init logs "serving warm")."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
            if self.log_path.read_text().count("serving warm") >= self.config.workers:
                return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn not warm after {STARTUP_TIMEOUT_S:.0f} s")

    def pids(self) -> list[int]:
        assert self.process is not None
        return [self.process.pid, *_children(self.process.pid)]

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def process_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


def postgres_backends(database: str) -> list[int]:
    """Postgres backends connected to `database` (their process title names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry.name))
    return found


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU seconds used by groups of processes (and the machine) between two points."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.before: dict[str, dict[int, int]] = {}
        self.machine_before = (0, 0)

    def start(self) -> None:
        self.before = {name: self._ticks(pids()) for name, pids in self.groups.items()}
        self.machine_before = machine_ticks()

    def seconds(self) -> dict[str, float]:
        used = {}
        for name, pids in self.groups.items():
            now, then = self._ticks(pids()), self.before[name]
            each = [ticks - then.get(pid, 0) for pid, ticks in now.items()]
            used[name] = sum(each) / CLOCK_TICKS
            used[f"{name}_busiest"] = max(each, default=0) / CLOCK_TICKS
        busy, _ = machine_ticks()
        used["machine"] = (busy - self.machine_before[0]) / CLOCK_TICKS
        return used

    @staticmethod
    def _ticks(pids: list[int]) -> dict[int, int]:
        return {pid: process_ticks(pid) for pid in pids}


def cpu_probe_ms() -> float:
    """Wall time of a fixed pure-Python loop: how fast this shared virtual machine is now.

    The host's other tenants slow the vCPUs by up to ~2x without it showing as steal time,
    so each row carries this figure (lower is faster) to compare rows taken at other times.
    """
    started = time.perf_counter()
    total = 0
    for value in range(PROBE_LOOPS):
        total += value * value
    return (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured (latencies in milliseconds, CPU in seconds)."""

    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    hits: int
    misses: int
    not_ok: int
    socket_errors: int
    cpu: dict[str, float]
    probe_ms: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def hit_rate(self) -> float | None:
        counted = self.hits + self.misses
        return self.hits / counted if counted else None

    def cpu_ms_per_request(self, *names: str) -> float:
        """CPU milliseconds the named groups spent per response."""
        total = sum(self.cpu.get(name, 0.0) for name in names)
        return 1000 * total / self.requests if self.requests else 0.0

    def cores(self, name: str) -> float:
        """Average cores the group kept busy during the run."""
        return self.cpu.get(name, 0.0) / self.seconds if self.seconds else 0.0


def wrk_run(
    *,
    url: str,
    request_file: Path,
    connections: int,
    quota: int,
    seconds: float,
    meter: CpuMeter,
    think_ms: float = 0.0,
) -> LoadResult:
    """Run wrk (one thread) until `quota` responses arrive, or for `seconds` when quota is 0.

    `think_ms` > 0: each client pauses that long on average before each request.
    """
    duration = 3600 if quota else max(1, round(seconds))
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", WRK_TIMEOUT]
    command += ["-s", str(WRK_SCRIPT), url, "--", str(request_file), str(quota), str(think_ms)]
    probe = cpu_probe_ms()
    meter.start()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    values: dict[str, float] = {}
    for line in process.stdout:
        if line.strip() == "bench quota":
            process.send_signal(signal.SIGINT)  # ends the run; done() still reports
        elif line.startswith("bench "):
            _, key, value = line.split()
            values[key] = float(value)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = meter.seconds() | {"wrk": usage.ru_utime + usage.ru_stime}
    if process.returncode != 0 or "requests" not in values:
        raise RuntimeError(f"wrk failed ({process.returncode}): {' '.join(command)}")
    return _result(values, cpu, probe)


def _result(values: dict[str, float], cpu: dict[str, float], probe: float) -> LoadResult:
    return LoadResult(
        requests=int(values["requests"]),
        seconds=values["duration_us"] / 1e6,
        p50_ms=values["p50_us"] / 1e3,
        p95_ms=values["p95_us"] / 1e3,
        p99_ms=values["p99_us"] / 1e3,
        max_ms=values["max_us"] / 1e3,
        hits=int(values["hits"]),
        misses=int(values["misses"]),
        not_ok=int(values["not_ok"]),
        socket_errors=int(values["socket_errors"]),
        cpu=cpu,
        probe_ms=probe,
    )
