"""Sequential models (NextItNet, SASRec, TIGER) against order-blind ones (Pop, EASE) on ML-100K.

    flock /tmp/bench.lock env OMP_NUM_THREADS=2 .venv/bin/python bench/sequential_bench.py \
        [--device auto|cpu|cuda] [--models pop ease nextitnet sasrec tiger] [--epochs 25] \
        [--full-grid] [--output bench/results_sequential.md]

Temporal split (leave-one-out by time) and the project's protocol
(`ml.evaluation.protocol.tune_and_evaluate`): every grid setting is fit on the train part
only, the sequential models early-stop on validation NDCG@10, the setting with the best
validation NDCG@10 is kept and the test part is read once for it, with full ranking and
train + validation items excluded. Under that protocol a model's input at test time is
the train part, so a sequential model predicts the test item from a history that ends
one item (the validation one) before it. A second reading of the same chosen models
("history incl. valid") gives every model, order-blind ones too, the user's train items
plus the validation item as its input history (`score_history`, time order), which is
what serving does with a visitor's latest events. Prints a table and writes
bench/results_sequential.md.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.algorithms.base import HyperValue, Recommender, mask_items, top_k  # noqa: E402
from ml.data.dataset import InteractionData  # noqa: E402
from ml.data.movielens import from_movielens_wheel  # noqa: E402
from ml.data.splits import Split, temporal_split  # noqa: E402
from ml.evaluation.metrics import evaluate_full_ranking  # noqa: E402
from ml.evaluation.protocol import TuningResult, tune_and_evaluate  # noqa: E402
from ml.evaluation.run_movielens import GRIDS, find_wheel  # noqa: E402

RESULTS_FILE = ROOT / "bench" / "results_sequential.md"
SEED = 2020
SEQUENTIAL = ("nextitnet", "sasrec", "tiger")
ORDER_BLIND = ("pop", "ease")
TARGET_RATIO = 1.10
DEFAULT_EPOCHS = 25
PATIENCE = 5


# A small part of each registered sequential grid, so that a CPU run fits in about ten
# minutes (SASRec: both widths, chosen on validation); `--full-grid` tunes over the
# registered grids (for a GPU or a long run).
QUICK_GRIDS: Mapping[str, Mapping[str, Sequence[HyperValue]]] = {
    "nextitnet": {"dim": [64], "blocks": [4]},
    "sasrec": {"dim": [64, 128], "layers": [2]},
    "tiger": {"dim": [64], "max_length": [20]},
}


def bench_grids(
    epochs: int, device: str, full: bool
) -> dict[str, Mapping[str, Sequence[HyperValue]]]:
    """The registered grids (quick ones unless `full`), sequential ones capped at `epochs`."""
    grids: dict[str, Mapping[str, Sequence[HyperValue]]] = {}
    for name in (*ORDER_BLIND, *SEQUENTIAL):
        grid = dict(GRIDS[name])
        if name in SEQUENTIAL:
            grid |= {} if full else QUICK_GRIDS[name]
            grid |= {"epochs": [epochs], "patience": [PATIENCE], "device": [device]}
            grid["progress"] = [False]
        grids[name] = grid
    return grids


def history_items(data: InteractionData, split: Split) -> list[np.ndarray]:
    """Per user, train then validation items in time order: the input at test time."""
    valid_rows = split.valid_rows[
        np.lexsort(
            (
                data.row_order[split.valid_rows],
                data.timestamps[split.valid_rows],
                data.users[split.valid_rows],
            )
        )
    ]
    valid_of: dict[int, list[int]] = {}
    for row in valid_rows:
        valid_of.setdefault(int(data.users[row]), []).append(int(data.items[row]))
    return [
        np.concatenate([split.train_sequence(user), np.array(valid_of.get(user, []), np.int64)])
        for user in range(split.n_users)
    ]


class HistoryRanker:
    """Ranks with `score_history` of each user's given history (a `RankingModel`)."""

    def __init__(self, model: Recommender, histories: Sequence[np.ndarray]) -> None:
        self.model = model
        self.histories = histories

    def recommend(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-k per user from their history's scores, excluded items left out."""
        scores = np.stack([self._scores(int(user)) for user in users]).astype(np.float32)
        if exclude is not None:
            mask_items(scores, exclude[users])
        return top_k(scores, k)

    def _scores(self, user: int) -> np.ndarray:
        items = self.histories[user]
        if len(items) == 0:
            return np.zeros(self.model.n_items, dtype=np.float32)
        return self.model.score_history(items)


def run_model(
    name: str, grid: Mapping[str, Sequence[HyperValue]], split: Split, data: InteractionData
) -> dict[str, Any]:
    """Tune and test one model under the protocol, then re-read test with valid in history."""
    started = time.perf_counter()
    result: TuningResult = tune_and_evaluate(name, grid, split, SEED, data=data)
    tuning_seconds = time.perf_counter() - started
    seen = split.train + split.valid
    ranker = HistoryRanker(result.model, history_items(data, split))
    with_valid = evaluate_full_ranking(ranker, split.test, seen, split.train).metrics
    report = getattr(result.model, "report", None)
    chosen = {key: value for key, value in result.params.items() if key not in FIXED_KEYS}
    return {
        "model": name,
        "kind": "sequential" if name in SEQUENTIAL else "order-blind",
        "ndcg@10": result.test_metrics["ndcg@10"],
        "recall@10": result.test_metrics["recall@10"],
        "valid_ndcg@10": result.valid_metrics["ndcg@10"],
        "history_ndcg@10": with_valid["ndcg@10"],
        "history_recall@10": with_valid["recall@10"],
        "train_seconds": result.train_seconds,
        "tuning_seconds": tuning_seconds,
        "settings": len(result.trials),
        "epochs": f"{report.best_epoch}/{report.epochs_run}" if report is not None else "-",
        "params": ", ".join(f"{key}={value}" for key, value in chosen.items()) or "-",
    }


FIXED_KEYS = ("progress", "device", "patience")


def target_line(rows: Sequence[Mapping[str, Any]], metric: str, label: str) -> str:
    """Best sequential vs best order-blind model on `metric`, against the 1.10x target."""
    best: dict[str, Mapping[str, Any]] = {}
    for kind in ("sequential", "order-blind"):
        candidates = [row for row in rows if row["kind"] == kind]
        if not candidates:
            return f"{label}: needs a sequential and an order-blind model"
        best[kind] = max(candidates, key=lambda row: row[metric])
    ratio = best["sequential"][metric] / best["order-blind"][metric]
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    return (
        f"{label}: best sequential {best['sequential']['model']} {best['sequential'][metric]:.4f}"
        f" vs best order-blind {best['order-blind']['model']} {best['order-blind'][metric]:.4f}"
        f" = {ratio:.3f}x (target {TARGET_RATIO:.2f}x: {verdict})"
    )


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The results as a markdown table."""
    lines = [
        "| model | kind | NDCG@10 | Recall@10 | valid NDCG@10 | NDCG@10 history incl. valid "
        "| Recall@10 history incl. valid | train s (chosen) | tuning s (grid) | settings "
        "| best/run epochs | chosen |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['kind']} | {row['ndcg@10']:.4f} | {row['recall@10']:.4f} "
            f"| {row['valid_ndcg@10']:.4f} | {row['history_ndcg@10']:.4f} "
            f"| {row['history_recall@10']:.4f} | {row['train_seconds']:.1f} "
            f"| {row['tuning_seconds']:.1f} | {row['settings']} | {row['epochs']} "
            f"| {row['params']} |"
        )
    return "\n".join(lines)


def report(rows: Sequence[Mapping[str, Any]], context: Mapping[str, str]) -> str:
    """The markdown written to results_sequential.md."""
    header = [
        "# Sequential recommenders on ML-100K (temporal leave-one-out)",
        "",
        *(f"{key}: {value}  " for key, value in context.items()),
        "",
        target_line(rows, "ndcg@10", "**Protocol (test input = train part)**"),
        "",
        target_line(rows, "history_ndcg@10", "**History incl. valid (same chosen models)**"),
        "",
        table(rows),
        "",
    ]
    return "\n".join(header)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--models", nargs="+", default=[*ORDER_BLIND, *SEQUENTIAL])
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    parser.add_argument("--full-grid", action="store_true", help="the registered grids")
    parser.add_argument("--json", type=Path, help="also write the rows and context as JSON")
    arguments = parser.parse_args(argv)
    unknown = set(arguments.models) - {*ORDER_BLIND, *SEQUENTIAL}
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}")
    started = time.perf_counter()
    data = from_movielens_wheel(find_wheel())
    split = temporal_split(data)
    grids = bench_grids(arguments.epochs, arguments.device, arguments.full_grid)
    rows = []
    for name in arguments.models:
        rows.append(run_model(name, grids[name], split, data))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    context = {
        "Date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "Command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} "
        + " ".join([".venv/bin/python bench/sequential_bench.py", *sys.argv[1:]]),
        "Data": f"ML-100K, {data.n_users} users, {data.n_items} items, "
        f"{data.n_interactions} interactions; seed {SEED}",
        "Machine": f"{os.cpu_count()} cores (shared with other jobs, so seconds are noisy), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"device {arguments.device}",
        "Grids": "; ".join(
            f"{name} {dict(grid)}" for name, grid in grids.items() if name in arguments.models
        ),
        "Wall time": f"{time.perf_counter() - started:.0f} s in all",
    }
    text = report(rows, context)
    arguments.output.write_text(text, encoding="utf-8")
    if arguments.json:  # read by bench/recbole_sequential.py
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(
            json.dumps({"context": context, "rows": rows}, indent=2, default=float)
        )
    print(text)


if __name__ == "__main__":
    main()
