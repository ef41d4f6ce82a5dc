"""Our models against RecBole 1.2.1 on exactly the same ML-100K splits; resumable.

    bash bench/recbole_venv.sh                       # once: RecBole's own venv
    .venv/bin/python bench/recbole_compare.py [--seeds 2020 2021 2022] \
        [--splits random temporal] [--models ease EASE ...] [--only ours|recbole] \
        [--refresh [MODEL ...]] [--report]

Each split (random 8:1:1 per user with the seed, or temporal leave-one-out) is exported
as RecBole benchmark files under var/bench/recbole/data/<split>-<seed>/. Our models run
through `evaluate_isolated`, RecBole's through bench/recbole_runner.py in var/recbole-venv;
both fit on train only, tune on validation NDCG@10 and read test once. One JSON per
(library, model, split, seed) lands in var/bench/recbole/results/ and is reused while its
key (grid, model source, exported split) is unchanged, so a killed run resumes. Progress
goes to var/bench/recbole/progress.log; the report is printed at the end (or with
--report) and written between the markers in bench/RESULTS.md.
"""

import argparse
import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recbole_export import DATASET, export_split  # noqa: E402
from bench.recbole_report import write_report  # noqa: E402
from ml.algorithms.registry import algorithm_class  # noqa: E402
from ml.data.dataset import InteractionData  # noqa: E402
from ml.data.movielens import from_movielens_wheel  # noqa: E402
from ml.data.splits import Split, random_split, temporal_split  # noqa: E402
from ml.evaluation import isolated, metrics, protocol  # noqa: E402
from ml.evaluation.isolated import evaluate_isolated  # noqa: E402
from ml.evaluation.run_movielens import find_wheel  # noqa: E402

OUTPUT = ROOT / "var" / "bench" / "recbole"
DATA_DIR = OUTPUT / "data"
RESULTS_DIR = OUTPUT / "results"
LOG_DIR = OUTPUT / "logs"
CHECKPOINT_DIR = OUTPUT / "checkpoints"
PROGRESS_LOG = OUTPUT / "progress.log"
LOCK_FILE = OUTPUT / "run.lock"
RECBOLE_PYTHON = ROOT / "var" / "recbole-venv" / "bin" / "python"
RUNNER = ROOT / "bench" / "recbole_runner.py"
RUNNER_VERSION = 1  # bump when the runner's protocol changes, to rerun RecBole's results
SPLITS = ("random", "temporal")
DEFAULT_SEEDS = (2020, 2021, 2022)

# A small grid over each RecBole model's main hyper-parameter, around RecBole's default
# (EASE and ItemKNN: the same values as ours). Pop has nothing to tune.
RECBOLE_GRIDS: Mapping[str, Mapping[str, Sequence[Any]]] = {
    "Pop": {},
    "EASE": {"reg_weight": [50.0, 100.0, 250.0, 500.0, 750.0, 1000.0]},
    "ItemKNN": {"k": [20, 50, 100, 200, 400], "shrink": [0.0, 10.0, 50.0, 100.0]},
    "ADMMSLIM": {"lambda2": [100.0, 200.0, 500.0]},
    "MultiVAE": {"dropout_prob": [0.3, 0.5, 0.7]},
    "BPR": {"learning_rate": [0.0005, 0.001, 0.002]},
    "RecVAE": {"gamma": [0.0025, 0.005, 0.01]},  # the KL weight used (beta is unused)
    "LightGCN": {"n_layers": [1, 2, 3]},
}
# Cost tier of each model: every seed and split of a lower tier runs before a higher tier
# starts. 0: seconds to a minute or two per job; 1: minutes (MultiVAE ~10 min on 2 cores,
# and our iterative models); 2: RecBole's slow ones (BPR, RecVAE, LightGCN).
RECBOLE_TIERS = {"Pop": 0, "EASE": 0, "ItemKNN": 0, "ADMMSLIM": 0, "MultiVAE": 1}
OUR_TIERS = {"pop": 0, "ease": 0, "itemknn": 0}
SLOW_TIER = 2
DEFAULT_TIER = 1


@dataclass(frozen=True)
class Job:
    """One (library, model, split, seed) result to compute or reuse."""

    library: str  # "ours" or "recbole"
    model: str
    split: str
    seed: int
    tier: int

    @property
    def label(self) -> str:
        """How progress lines name the job."""
        return f"{self.library} {self.model} {self.split} seed={self.seed}"

    @property
    def cache_path(self) -> Path:
        """Where the job's result JSON lives."""
        return RESULTS_DIR / self.library / f"{self.split}-{self.seed}" / f"{self.model}.json"


def our_grids() -> Mapping[str, Mapping[str, Sequence[Any]]]:
    """Our models' grids, read from run_movielens at run time (the lead adds models there)."""
    from ml.evaluation.run_movielens import GRIDS

    return GRIDS


def plan_jobs(
    seeds: Sequence[int], splits: Sequence[str], models: Sequence[str] | None, only: str | None
) -> list[Job]:
    """The jobs in run order: cheap tiers first for all seeds, then the slow ones."""
    candidates = []
    if only != "recbole":
        candidates += [("ours", name, OUR_TIERS.get(name, DEFAULT_TIER)) for name in our_grids()]
    if only != "ours":
        candidates += [
            ("recbole", name, RECBOLE_TIERS.get(name, SLOW_TIER)) for name in RECBOLE_GRIDS
        ]
    if models:
        unknown = set(models) - {name for _, name, _ in candidates}
        if unknown:
            raise SystemExit(
                f"unknown models {sorted(unknown)}; known: {[n for _, n, _ in candidates]}"
            )
        candidates = [entry for entry in candidates if entry[1] in models]
    jobs = [
        Job(library, name, split, seed, tier)
        for tier in sorted({tier for _, _, tier in candidates})
        for seed in seeds
        for split in splits
        for library, name, entry_tier in candidates
        if entry_tier == tier
    ]
    return jobs


def digest(payload: object) -> str:
    """Short stable hash of a JSON-serialisable value."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _ml_algorithm_modules(module: ModuleType) -> set[ModuleType]:
    """The module and the `ml.algorithms` modules whose names it imports."""
    found = {module}
    for value in vars(module).values():
        owner = (
            value if inspect.ismodule(value) else sys.modules.get(getattr(value, "__module__", ""))
        )
        if owner is not None and owner.__name__.startswith("ml.algorithms."):
            found.add(owner)
    return found


@cache
def our_source_hash(model: str) -> str:
    """Hash of the model's source (its module and the ml.algorithms modules it uses) and of
    the evaluation code, so that a change to any of them reruns the model."""
    model_module = sys.modules[algorithm_class(model).__module__]
    modules = _ml_algorithm_modules(model_module) | {protocol, metrics, isolated}
    files = sorted({inspect.getsourcefile(module) or "" for module in modules})
    return digest(
        {Path(path).relative_to(ROOT).as_posix(): Path(path).read_text() for path in files}
    )


def hash_sources_now(jobs: Sequence[Job]) -> None:
    """Hash our models' sources at start, while the files match the code this process
    imported (they may be edited while a long run goes on)."""
    for model in sorted({job.model for job in jobs if job.library == "ours"}):
        with contextlib.suppress(KeyError):  # reported when its job comes up
            our_source_hash(model)


def cache_key(job: Job, data_hash: str) -> dict[str, str]:
    """What a cached result must match to be reused."""
    if job.library == "ours":
        grid = our_grids()[job.model]
        return {"grid": digest(grid), "source": our_source_hash(job.model), "data": data_hash}
    grid = RECBOLE_GRIDS[job.model]
    return {"grid": digest(grid), "runner": str(RUNNER_VERSION), "data": data_hash}


def read_cached(job: Job) -> dict[str, Any] | None:
    """The cached record of a job, or None when absent or unreadable."""
    try:
        record: dict[str, Any] = json.loads(job.cache_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record


def write_json_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def log(message: str) -> None:
    """A timestamped progress line, on stdout and appended to progress.log."""
    line = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} {message}"
    print(line, flush=True)
    PROGRESS_LOG.parent.mkdir(parents=True, exist_ok=True)
    with PROGRESS_LOG.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


class Splits:
    """ML-100K and its splits, built and exported once per (split, seed)."""

    def __init__(self) -> None:
        self._data: InteractionData | None = None
        self._built: dict[tuple[str, int], tuple[Split, str]] = {}

    @property
    def data(self) -> InteractionData:
        """The dataset, read from the recbole wheel on first use."""
        if self._data is None:
            self._data = from_movielens_wheel(find_wheel())
        return self._data

    def get(self, split: str, seed: int) -> tuple[Split, str]:
        """The split and the hash of its exported files."""
        if (split, seed) not in self._built:
            built = (
                random_split(self.data, seed=seed)
                if split == "random"
                else temporal_split(self.data)
            )
            data_hash = export_split(self.data, built, split_dir(split, seed))
            self._built[split, seed] = (built, data_hash)
        return self._built[split, seed]


def split_dir(split: str, seed: int) -> Path:
    """RecBole's data_path for one split: the dataset folder lies inside it."""
    return DATA_DIR / f"{split}-{seed}"


def run_ours(job: Job, splits: Splits) -> dict[str, Any]:
    """Tune and test one of our models in its own process."""
    split, _ = splits.get(job.split, job.seed)
    grids = our_grids()
    result = evaluate_isolated([job.model], grids, split, job.seed, splits.data)[0]
    return {**result, "grid": grids[job.model]}


def run_recbole(job: Job, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Tune and test one RecBole model through the runner in RecBole's venv (`extra`
    overrides or adds job settings, e.g. for sequential models)."""
    if not RECBOLE_PYTHON.exists():
        raise RuntimeError(f"no RecBole venv at {RECBOLE_PYTHON}; run: bash bench/recbole_venv.sh")
    name = f"{job.split}-{job.seed}-{job.model}"
    job_file = OUTPUT / "jobs" / f"{name}.json"
    out_file = OUTPUT / "jobs" / f"{name}.result.json"
    out_file.unlink(missing_ok=True)
    checkpoint_dir = CHECKPOINT_DIR / name
    spec = {
        "model": job.model,
        "dataset": DATASET,
        "data_path": str(split_dir(job.split, job.seed)),
        "seed": job.seed,
        "grid": RECBOLE_GRIDS.get(job.model, {}),
        "checkpoint_dir": str(checkpoint_dir),
        **(extra or {}),
    }
    write_json_atomically(job_file, spec)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        "PYTHONWARNINGS": "ignore",
    }
    command = [str(RECBOLE_PYTHON), str(RUNNER), "--job", str(job_file), "--out", str(out_file)]
    with (LOG_DIR / f"recbole-{name}.log").open("a", encoding="utf-8") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=OUTPUT, env=environment
        )
        try:
            code = process.wait()
        finally:
            if process.poll() is None:  # we are being stopped: do not leave the runner behind
                process.terminate()
                process.wait()
    # A stopped runner leaves its checkpoints (and resume state) for the next run to go on from.
    if code == 0:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    if code != 0 or not out_file.exists():
        raise RuntimeError(f"runner exited {code}; see {LOG_DIR / f'recbole-{name}.log'}")
    result: dict[str, Any] = json.loads(out_file.read_text(encoding="utf-8"))
    out_file.unlink()
    return result


def run_job(job: Job, splits: Splits, refresh: bool) -> None:
    """Compute one job unless a result with the same key is cached."""
    try:
        key = cache_key(job, splits.get(job.split, job.seed)[1])
    except Exception as error:  # e.g. a model in GRIDS that the registry does not know yet
        log(f"[fail] {job.label}: {type(error).__name__}: {error}")
        return
    cached = read_cached(job)
    if cached is not None and cached.get("key") == key and not refresh:
        log(f"[cached] {job.label}")
        return
    log(f"[start] {job.label}")
    started = time.perf_counter()
    try:
        result = run_ours(job, splits) if job.library == "ours" else run_recbole(job)
    except Exception as error:  # one failing model must not stop the others
        log(f"[fail] {job.label}: {type(error).__name__}: {error}")
        return
    seconds = time.perf_counter() - started
    record = {
        "library": job.library,
        "model": job.model,
        "split": job.split,
        "seed": job.seed,
        "key": key,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "job_seconds": round(seconds, 1),
        "result": result,
    }
    write_json_atomically(job.cache_path, record)
    log(
        f"[done] {job.label}: ndcg@10={result['ndcg@10']:.4f} params={result['params']} "
        f"train_s={result['train_seconds']:.1f} job_s={seconds:.0f}"
    )


def cached_records(splits: Splits) -> tuple[list[dict[str, Any]], int]:
    """Every cached result whose key is still current, and how many are stale."""
    current, stale = [], 0
    for path in sorted(RESULTS_DIR.glob("*/*/*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        grids = our_grids() if record["library"] == "ours" else RECBOLE_GRIDS
        if record["model"] not in grids or record["split"] not in SPLITS:
            stale += 1
            continue
        job = Job(record["library"], record["model"], record["split"], int(record["seed"]), 0)
        try:
            key = cache_key(job, splits.get(job.split, job.seed)[1])
        except KeyError:  # a model the registry no longer knows
            key = None
        if record.get("key") == key:
            current.append(record)
        else:
            stale += 1
    return current, stale


def should_refresh(job: Job, refresh: Sequence[str] | None) -> bool:
    """--refresh alone refreshes every job; with names, the jobs of those models/libraries."""
    if refresh is None:
        return False
    return not refresh or job.model in refresh or job.library in refresh


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit so the running child is stopped on the way out."""
    raise SystemExit(128 + signum)


def run(arguments: argparse.Namespace) -> None:
    """Run every job not cached yet, holding the run lock so two runs never overlap."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another run holds {LOCK_FILE}") from None
        lock.write(str(os.getpid()))
        lock.flush()
        signal.signal(signal.SIGTERM, stop_on_sigterm)
        jobs = plan_jobs(arguments.seeds, arguments.splits, arguments.models, arguments.only)
        log(f"[run] pid={os.getpid()} {len(jobs)} jobs: {' '.join(sys.argv[1:]) or '(defaults)'}")
        hash_sources_now(jobs)
        splits = Splits()
        try:
            for job in jobs:
                run_job(job, splits, should_refresh(job, arguments.refresh))
        except (SystemExit, KeyboardInterrupt):
            log("[run] stopped; the job in progress is not cached, a new run resumes there")
            raise
        log("[run] finished")


def report(results_file: Path) -> None:
    """Print the table of whatever is cached and rewrite the block in the results file."""
    records, stale = cached_records(Splits())
    print(write_report(records, stale, RECBOLE_GRIDS, our_grids(), results_file))


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    parser.add_argument("--models", nargs="+", help="ours (e.g. ease) and/or RecBole's (e.g. EASE)")
    parser.add_argument("--only", choices=("ours", "recbole"))
    parser.add_argument(
        "--refresh",
        nargs="*",
        metavar="MODEL",
        help="recompute cached results (of these models/libraries)",
    )
    parser.add_argument("--report", action="store_true", help="only print and write the report")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    arguments = parse_arguments(argv)
    if not arguments.report:
        run(arguments)
    report(arguments.results)


if __name__ == "__main__":
    main()
