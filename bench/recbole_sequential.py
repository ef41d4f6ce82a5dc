"""RecBole 1.2.1's sequential models (SASRec, GRU4Rec, NextItNet) on our temporal split; resumable.

    nice -n 19 nohup .venv/bin/python bench/recbole_sequential.py --models SASRec \
        >> var/bench/recbole/sequential-SASRec.out 2>&1 &   # run (resumes), then report
    .venv/bin/python bench/recbole_sequential.py --report  # only the report

The temporal leave-one-out split (`ml.data.splits.temporal_split`) is exported as RecBole
sequential benchmark files (`bench.recbole_export.export_sequences`: train rows are every
train prefix and its next item, the validation row is the train history and the
validation item, the test row the train + validation history and the test item) next to
the interaction-per-row export of the same split. The runner (bench/recbole_runner.py, in
RecBole's venv) fits each model on train, early-stops on validation NDCG@10 with our
patience, masks the user's train items at validation and train + validation items at
test (RecBole masks none for sequential models), and reads test once. Each finished
(model, seed) lands in var/bench/recbole/sequential/; a killed run goes on from the last
validated epoch of the job that was in progress (the runner's `EpochResume`); runs with
different `--models` can go side by side. The report puts the results next to ours
(bench/sequential_bench.py's JSON, or its markdown table) in
bench/results_sequential_recbole.md.
"""

import argparse
import ast
import fcntl
import itertools
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.recbole_compare import (  # noqa: E402
    DATASET,
    LOG_DIR,
    OUTPUT,
    Job,
    Splits,
    digest,
    log,
    run_recbole,
    split_dir,
    stop_on_sigterm,
    write_json_atomically,
)
from bench.recbole_export import SEQUENCE_DATASET, export_sequences  # noqa: E402
from bench.sequential_bench import PATIENCE  # noqa: E402

MODELS = ("GRU4Rec", "SASRec", "NextItNet")  # cheapest per epoch first
# The same tuning budget as ours (bench/sequential_bench.py's QUICK_GRIDS): SASRec's width
# 64 or 128 chosen on validation, as ours is; NextItNet one setting (embedding 64, as
# ours); GRU4Rec, which has no counterpart of ours, RecBole's defaults.
GRIDS: Mapping[str, Mapping[str, Sequence[Any]]] = {
    "GRU4Rec": {},
    "SASRec": {"hidden_size": [64, 128]},
    "NextItNet": {},
}
OURS = {"SASRec": "sasrec", "NextItNet": "nextitnet"}
MAX_EPOCHS = 200  # a ceiling only: early stopping decides
THREADS = 1  # in the cache key: results of the runs so far (a speed knob: see --threads)
# RecBole stops once more than `stopping_step` validations in a row miss the best; ours
# once `PATIENCE` do. PATIENCE - 1 makes both stop after the same number of misses.
STOPPING_STEP = PATIENCE - 1
RUNNER_VERSION = 1  # bump when the sequential runner's protocol changes
SPLIT = "temporal"
RESULTS = OUTPUT / "sequential"
LOCK_FILE = OUTPUT / "sequential.lock"
OURS_JSON = ROOT / "var" / "bench" / "sequential" / "results.json"
OURS_MARKDOWN = ROOT / "bench" / "results_sequential.md"
REPORT_FILE = ROOT / "bench" / "results_sequential_recbole.md"
# One-off measurement (2026-11-29, torch threads 1, 8 training batches of 2048 rows each,
# RecBole's own train loader and model code): where a RecBole epoch goes.
EPOCH_PROFILE = (
    "Where RecBole's time goes (8 batches of 2048, threads 1): loading a batch 3-4 ms, "
    "forward + backward + step 5.4 s (SASRec), 1.6 s (GRU4Rec), 4.0 s (NextItNet); 48 "
    "batches an epoch, so about 260 / 75 / 190 s an epoch on a free core; full validation "
    "(943 users) 0.2-0.3 s. The cost is the model over RecBole's ~97k training prefixes "
    "(every train item after a user's first is a target of its own row of up to 50 items), "
    "where ours cuts each user's train sequence into windows of up to 50 items and predicts "
    "every position (each train item is a target once, with all items before it in its window)."
)


def cache_path(model: str, seed: int) -> Path:
    """Where one finished (model, seed) result lives."""
    return RESULTS / f"{SPLIT}-{seed}" / f"{model}.json"


def export(splits: Splits, seed: int) -> str:
    """Export the split both ways; the hash of the files RecBole reads."""
    split, rows_hash = splits.get(SPLIT, seed)
    sequences_hash = export_sequences(splits.data, split, split_dir(SPLIT, seed))
    return digest([rows_hash, sequences_hash])


def job_settings(seed: int, epochs: int, threads: int = THREADS) -> dict[str, Any]:
    """What the runner gets beyond the model: files, stopping, threads."""
    return {
        "dataset": SEQUENCE_DATASET,
        "sequential": True,
        "epochs": epochs,
        "stopping_step": STOPPING_STEP,
        "threads": threads,
        "seen_from": {"data_path": str(split_dir(SPLIT, seed)), "dataset": DATASET},
    }


def cache_key(model: str, data_hash: str, epochs: int = MAX_EPOCHS) -> dict[str, Any]:
    """What a cached result must match to be reused."""
    return {
        "grid": digest(GRIDS[model]),
        "runner": f"sequential-{RUNNER_VERSION}",
        "data": data_hash,
        "epochs": epochs,
        "stopping_step": STOPPING_STEP,
        "threads": THREADS,
    }


def run_one(
    model: str, seed: int, data_hash: str, refresh: bool, epochs: int, threads: int = THREADS
) -> None:
    """Run one model unless its result is cached under the current key."""
    job = Job("recbole", model, SPLIT, seed, 0)
    key = cache_key(model, data_hash, epochs)
    path = cache_path(model, seed)
    cached = read_record(path)
    if cached is not None and cached.get("key") == key and not refresh:
        log(f"[cached] sequential {job.label}")
        return
    log(f"[start] sequential {job.label}")
    started = time.perf_counter()
    try:
        settings = job_settings(seed, epochs, threads)
        result = run_recbole(job, {"grid": GRIDS[model], **settings})
    except Exception as error:  # one failing model must not stop the others
        log(f"[fail] sequential {job.label}: {type(error).__name__}: {error}")
        return
    seconds = time.perf_counter() - started
    record = {
        "library": "recbole",
        "model": model,
        "split": SPLIT,
        "seed": seed,
        "key": key,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "job_seconds": round(seconds, 1),
        "result": result,
    }
    write_json_atomically(path, record)
    log(
        f"[done] sequential {job.label}: ndcg@10={result['ndcg@10']:.4f} "
        f"epochs={result['epochs_run']} train_s={result['train_seconds']:.0f}"
    )


def read_record(path: Path) -> dict[str, Any] | None:
    """A cached record (None when absent or unreadable)."""
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record


def run(
    models: Sequence[str], seeds: Sequence[int], refresh: bool, epochs: int, threads: int = THREADS
) -> None:
    """Run every (model, seed) not cached. Each model holds its own lock, so two runs with
    different `--models` share the cores; the export is serialised by the script's lock."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    log(f"[run] sequential pid={os.getpid()} models={list(models)} seeds={list(seeds)}")
    splits = Splits()
    try:
        for seed in seeds:
            with holding(LOCK_FILE, wait=True):
                data_hash = export(splits, seed)
            for model in models:
                with holding(OUTPUT / f"sequential-{model}.lock", wait=False) as held:
                    if held:
                        run_one(model, seed, data_hash, refresh, epochs, threads)
                    else:
                        log(f"[skip] sequential {model}: another run holds its lock")
    except (SystemExit, KeyboardInterrupt):
        log("[run] sequential stopped; the job in progress resumes from its last epoch")
        raise
    log("[run] sequential finished")


@contextmanager
def holding(path: Path, wait: bool) -> Iterator[bool]:
    """Hold an exclusive lock on `path` (True), or, with wait=False, yield False if taken."""
    with path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        lock.write(str(os.getpid()))
        lock.flush()
        yield True


def current_records(seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Cached results whose key matches today's export and settings."""
    splits = Splits()
    records = []
    for seed in seeds:
        data_hash = export(splits, seed)
        for model in MODELS:
            record = read_record(cache_path(model, seed))
            if record is not None and record.get("key") == cache_key(model, data_hash):
                records.append(record)
    return records


@dataclass(frozen=True)
class OurRun:
    """Our sequential_bench rows from one run, with what the run's command said."""

    label: str
    threads: str
    rows: Sequence[Mapping[str, Any]]


def our_run(command: str, machine: str, source: str, rows: Sequence[Mapping[str, Any]]) -> OurRun:
    """Label a run by its epoch ceiling (its command line) and threads (its machine line,
    which records the environment the run had)."""
    epochs = re.search(r"--epochs (\d+)", command)
    threads = re.search(r"OMP_NUM_THREADS=(\d+)", machine)
    ceiling = f"at most {epochs.group(1)} epochs" if epochs else "default epochs"
    return OurRun(f"ours ({ceiling}; {source})", threads.group(1) if threads else "?", rows)


def read_ours(json_path: Path = OURS_JSON, markdown: Path = OURS_MARKDOWN) -> list[OurRun]:
    """Our run: sequential_bench's --json output (var/, this machine), else the table it
    wrote to bench/results_sequential.md (committed)."""
    if json_path.is_file():
        payload = json.loads(json_path.read_text(encoding="utf-8"))
        context = payload["context"]
        command, machine = str(context.get("Command", "")), str(context.get("Machine", ""))
        return [our_run(command, machine, json_path.name, payload["rows"])]
    if markdown.is_file():
        text = markdown.read_text(encoding="utf-8")
        lines = text.splitlines()
        command = next((line for line in lines if line.startswith("Command:")), "")
        machine = next((line for line in lines if line.startswith("Machine:")), "")
        return [our_run(command, machine, markdown.name, parse_markdown_rows(text))]
    return []


MARKDOWN_COLUMNS = {
    "model": "model",
    "kind": "kind",
    "NDCG@10": "ndcg@10",
    "Recall@10": "recall@10",
    "valid NDCG@10": "valid_ndcg@10",
    "NDCG@10 history incl. valid": "history_ndcg@10",
    "Recall@10 history incl. valid": "history_recall@10",
    "train s (chosen)": "train_seconds",
    "best/run epochs": "epochs",
}


def parse_markdown_rows(text: str) -> list[dict[str, Any]]:
    """The rows of sequential_bench's table, with its JSON's keys (numbers as floats)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if not lines:
        return []
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = dict(
            zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True)
        )
        row: dict[str, Any] = {}
        for column, key in MARKDOWN_COLUMNS.items():
            value = cells.get(column, "")
            row[key] = float(value) if re.fullmatch(r"-?\d+(\.\d+)?", value) else value
        rows.append(row)
    return rows


def seconds_to_reach(epoch_log: Sequence[Mapping[str, float]], target: float) -> str:
    """Train + validation seconds until validation NDCG@10 first reached `target`."""
    total = 0.0
    for epoch, entry in enumerate(epoch_log, start=1):
        total += entry["train_s"] + entry.get("valid_s", 0.0)
        if entry.get("valid_ndcg@10", -1.0) >= target:
            return f"{total:.0f} (epoch {epoch})"
    return f"not reached in {len(epoch_log)} epochs"


def recbole_line(record: Mapping[str, Any], ours: Sequence[Mapping[str, Any]]) -> str:
    """One table row of a RecBole result."""
    result = record["result"]
    epochs = result.get("epoch_log", [])
    train_each = sum(e["train_s"] for e in epochs) / max(len(epochs), 1)
    valid_each = sum(e.get("valid_s", 0.0) for e in epochs) / max(len(epochs), 1)
    best_ours = max((float(row["valid_ndcg@10"]) for row in ours), default=None)
    reach = seconds_to_reach(epochs, best_ours) if best_ours is not None else "-"
    return (
        f"| {record['model']} | RecBole 1.2.1 | train + valid | {result['ndcg@10']:.4f} "
        f"| {result['recall@10']:.4f} | {result['valid_ndcg@10']:.4f} "
        f"| {result['train_seconds']:.0f} | {train_each:.1f} / {valid_each:.2f} "
        f"| {result.get('kept_epoch', '?')}/{result['epochs_run']} | {reach} "
        f"| {result.get('torch_threads', '?')} |"
    )


def progress(model: str, seed: int = 2020) -> str:
    """Where an unfinished RecBole fit stands, from its runner log (epochs of each grid
    setting, kept across resumed runs), or that it has not started."""
    path = LOG_DIR / f"recbole-{SPLIT}-{seed}-{model}.log"
    if not path.is_file():
        return "not run yet"
    epochs_of: dict[int, list[dict[str, float]]] = {0: []}
    current, finished = 0, set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("epoch ") and ": {" in line:
            epochs_of.setdefault(current, []).append(ast.literal_eval(line.split(": ", 1)[1]))
        elif line.startswith("setting ") and line.endswith(" fit starts"):
            current = int(line.split()[1])
            epochs_of[current] = []
        elif line.startswith("setting ") and " valid ndcg@10=" in line:
            finished.add(current)
            current += 1
    parts = []
    for index, epochs in sorted(epochs_of.items()):
        if not epochs:
            continue
        best = max(epochs, key=lambda entry: entry.get("valid_ndcg@10", -1.0))
        cpu = [entry["train_cpu_s"] for entry in epochs if "train_cpu_s" in entry]
        label = parameter_label(model, index) if GRIDS[model] else "RecBole's defaults"
        parts.append(
            f"setting {index} ({label}): {'done' if index in finished else 'running'}, "
            f"{len(epochs)} epochs, best valid NDCG@10 "
            f"{best.get('valid_ndcg@10', float('nan')):.4f} (epoch {epochs.index(best) + 1}), "
            f"{sum(entry['train_s'] for entry in epochs):.0f} s wall"
            + (f", {sum(cpu) / len(cpu):.0f} CPU s an epoch" if cpu else "")
        )
    return "in progress: " + "; ".join(parts) if parts else "started, no epoch done yet"


def parameter_label(model: str, index: int) -> str:
    """`name=value` of the grid setting `index` (in the runner's order)."""
    grid = GRIDS[model]
    values = list(itertools.product(*grid.values()))[index]
    return ", ".join(f"{name}={value}" for name, value in zip(grid, values, strict=True))


def our_lines(row: Mapping[str, Any], run: OurRun) -> list[str]:
    """Our model's two readings: the one matching RecBole's test input, and the protocol one."""
    epochs = str(row.get("epochs", "-"))
    ran = epochs.split("/")[-1]
    seconds = float(row["train_seconds"])
    each = f"{seconds / float(ran):.1f} (incl. valid)" if ran.isdigit() else "-"
    common = f"| {seconds:.0f} | {each} | {epochs} | - | {run.threads} |"
    return [
        f"| {row['model']} | {run.label} | train + valid | **{float(row['history_ndcg@10']):.4f}** "
        f"| {float(row['history_recall@10']):.4f} | {float(row['valid_ndcg@10']):.4f} " + common,
        f"| {row['model']} | {run.label} | train (protocol row) | {float(row['ndcg@10']):.4f} "
        f"| {float(row['recall@10']):.4f} | {float(row['valid_ndcg@10']):.4f} " + common,
    ]


def checks_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The protocol checks and mask audit each RecBole job recorded."""
    lines = []
    for record in records:
        result = record["result"]
        checks = result.get("protocol_checks") or {}
        audit = result.get("mask_audit", {})
        lines.append(
            f"- {record['model']}: rows loaded = rows exported: {checks.get('no_rows_dropped')}; "
            f"histories, targets and masks match the split: {checks.get('protocol_ok')}; "
            + "; ".join(
                f"{phase}: {counts['rows_masked_exactly']}/{counts['rows']} ranked rows had "
                f"exactly the seen items (+ padding) at -inf, "
                f"{counts['targets_masked']} targets masked"
                for phase, counts in audit.items()
            )
        )
    return lines


def render(records: Sequence[Mapping[str, Any]], our_runs: Sequence[OurRun]) -> str:
    """The markdown report."""
    lines = [
        "# Sequential models: ours vs RecBole 1.2.1 (ML-100K, temporal leave-one-out)",
        "",
        f"Report: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `.venv/bin/python "
        "bench/recbole_sequential.py --report`; RecBole runs: `nice -n 19 nohup .venv/bin/python "
        "bench/recbole_sequential.py --models <Model> >> var/bench/recbole/sequential-<Model>.out "
        "2>&1 &`, one per model side by side, each going on from its last validated epoch when "
        "restarted; ours: bench/sequential_bench.py (its --json output when present, else its "
        "table in bench/results_sequential.md).  ",
        "Split: per user, last interaction (by time, ties by file row order) for test, the one "
        "before for validation, the rest train; the same rows on both sides (checked below).  ",
        "Input history at test: RecBole's convention is train + validation items; ours is "
        "shown both ways, and the bold row (ours, train + valid) is the one to compare. At "
        "validation both sides use the train history. Ranking is over all items with the "
        "user's train items masked at validation and train + validation items at test (a "
        "patch of RecBole's sequential full-sort loader; stock RecBole masks none).  ",
        f"Stopping: validation NDCG@10 each epoch, stop after {PATIENCE} epochs in a row "
        f"without a new best (RecBole stopping_step {STOPPING_STEP}), RecBole at most "
        f"{MAX_EPOCHS} epochs; test read once with the kept weights.  ",
        "Settings: the same budget on both sides: SASRec's width (RecBole hidden_size, "
        "ours dim) 64 or 128, chosen on validation; NextItNet one setting (embedding 64); "
        "GRU4Rec one. Otherwise RecBole's defaults (SASRec 2 layers, 2 heads, dropout 0.5; "
        "GRU4Rec embedding 64, hidden 128; NextItNet 5 blocks; lr 0.001, train batch "
        "2048, CE loss over all items, MAX_ITEM_LIST_LENGTH 50) and ours (SASRec 2 layers, "
        "1 head, dropout 0.2; NextItNet 4 blocks; max length 50).  ",
        "Seconds: train s = fit incl. per-epoch validation; s/epoch = train / validation; "
        "'s to reach ours' = RecBole's train + validation seconds until its validation "
        "NDCG@10 first reached the best validation NDCG@10 of our model's rows above (for "
        "GRU4Rec, which has no counterpart, of any of our sequential models). Cores "
        "are shared with other jobs, so seconds are noisy; RecBole ran with torch threads 1 "
        "at nice 15-19 (CPU s an epoch, where shown, is what an epoch cost), ours with the "
        "threads shown.",
        "",
        EPOCH_PROFILE,
        "",
        "| model | library | test input | NDCG@10 | Recall@10 | valid NDCG@10 | train s "
        "| s/epoch train / valid | epochs kept/run | s to reach ours (valid) | threads |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model in MODELS:
        ours = []
        for run in our_runs:
            for row in run.rows:
                if row["model"] == OURS.get(model):
                    lines += our_lines(row, run)
                    ours.append(row)
        if not ours:  # no counterpart (GRU4Rec): our best sequential model is the bar
            ours = [row for run in our_runs for row in run.rows if row["model"] in OURS.values()]
        record = next((r for r in records if r["model"] == model), None)
        if record is None:
            lines.append(
                f"| {model} | RecBole 1.2.1 | train + valid | {progress(model)} | | | | | | | |"
            )
        else:
            lines.append(recbole_line(record, ours))
    lines += ["", "Checks recorded by the runner:", "", *checks_lines(records), ""]
    return "\n".join(lines)


def report(seeds: Sequence[int], output: Path) -> str:
    """Write and return the report of whatever is cached."""
    text = render(current_records(seeds), read_ours())
    output.write_text(text, encoding="utf-8")
    return text


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[2020])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--refresh", action="store_true", help="recompute cached results")
    parser.add_argument("--report", action="store_true", help="only write the report")
    parser.add_argument(
        "--epochs", type=int, default=MAX_EPOCHS, help="ceiling (a smoke test; not reported)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=THREADS,
        help="torch threads of the runner (speed only; a resumed fit may change it, e.g. "
        "when a core frees up; the result records what it ran with last)",
    )
    parser.add_argument("--output", type=Path, default=REPORT_FILE)
    arguments = parser.parse_args(argv)
    if not arguments.report:
        run(
            arguments.models,
            arguments.seeds,
            arguments.refresh,
            arguments.epochs,
            arguments.threads,
        )
    print(report(arguments.seeds, arguments.output))


if __name__ == "__main__":
    main()
