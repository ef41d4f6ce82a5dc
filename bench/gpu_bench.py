"""GPU benchmark: both torch model families on ML-100K, timed, with the quality they reached.

    .venv/bin/python bench/gpu_bench.py [--device auto|cpu|cuda] [--epochs 25] [--steps 1000]
        [--models semantic_ids nextitnet sasrec]

On a shared CPU (smoke test, a few minutes):

    flock /tmp/bench.lock nice -n 5 env OMP_NUM_THREADS=2 .venv/bin/python bench/gpu_bench.py \
        --device cpu --epochs 1 --steps 50

One data set and split for all: ML-100K, temporal leave-one-out (`temporal_split`, as
bench/sequential_bench.py). The sequential models (NextItNet, SASRec; the quick settings
of `sequential_bench`) train for exactly `--epochs` epochs (no early stop, the weights of
the best validation epoch are kept) and report test NDCG@10 under the project's protocol
(train + validation items excluded). The semantic-ID quantizer (`SemanticIDs`, default
3 x 256 codes) trains for `--steps` full-batch steps and reports its codebook usage,
collision rate and reconstruction MSE against residual k-means of the same bits (as
bench/cold_start.py), plus the recommender's NDCG@10. Timings: the whole fit, the epochs
(steps) run, seconds per epoch between the first and the last epoch (so without set-up,
CUDA start-up and the first epoch, shown on its own), for a GPU that includes the
per-epoch validation. The defaults finish in well under 5 minutes on one GPU.
"""

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sequential_bench import QUICK_GRIDS, SEED  # noqa: E402
from ml.algorithms.base import HyperValue, Recommender  # noqa: E402
from ml.algorithms.registry import algorithm_class  # noqa: E402
from ml.algorithms.semantic_ids import SemanticIDs  # noqa: E402
from ml.algorithms.sequential import SequentialRecommender  # noqa: E402
from ml.algorithms.torch_training import resolve_device  # noqa: E402
from ml.data.dataset import InteractionData  # noqa: E402
from ml.data.movielens import from_movielens_wheel  # noqa: E402
from ml.data.splits import Split, temporal_split  # noqa: E402
from ml.evaluation.metrics import evaluate_full_ranking  # noqa: E402
from ml.evaluation.run_movielens import find_wheel  # noqa: E402

MODELS = ("semantic_ids", "nextitnet", "sasrec")
DEFAULT_EPOCHS = 25
DEFAULT_STEPS = 1000


@dataclass(frozen=True)
class Timing:
    """Seconds of a whole fit, epochs run, the first epoch's and the later ones' mean."""

    fit_seconds: float
    epochs: int
    first_epoch_seconds: float
    seconds_per_epoch: float


def model_settings(name: str, device: str, epochs: int, steps: int) -> dict[str, HyperValue]:
    """The benchmarked setting: sequential_bench's quick one for a fixed number of epochs,
    or the quantizer's defaults for a fixed number of steps."""
    common: dict[str, HyperValue] = {"device": device, "seed": SEED, "progress": False}
    if name == "semantic_ids":
        return {**common, "epochs": steps}
    quick = {key: values[0] for key, values in QUICK_GRIDS[name].items()}
    return {**common, **quick, "epochs": epochs, "patience": epochs}


def timed_fit(
    model: SemanticIDs | SequentialRecommender, split: Split, data: InteractionData
) -> Timing:
    """Fit on the train part (validation for the sequential models' best epoch), timed."""
    marks: list[float] = []
    model.on_epoch = lambda _epoch, _metrics: marks.append(time.perf_counter())
    started = time.perf_counter()
    model.fit(split.train, data=data, valid=split.valid)
    fit_seconds = time.perf_counter() - started
    if not marks:
        return Timing(fit_seconds, 0, float("nan"), float("nan"))
    later = (marks[-1] - marks[0]) / (len(marks) - 1) if len(marks) > 1 else float("nan")
    return Timing(fit_seconds, len(marks), marks[0] - started, later)


def quality(model: Recommender, split: Split) -> dict[str, Any]:
    """Test NDCG@10 under the protocol, and for the quantizer its code figures."""
    seen = split.train + split.valid
    figures: dict[str, Any] = {
        "ndcg@10": evaluate_full_ranking(model, split.test, seen, split.train).metrics["ndcg@10"]
    }
    if isinstance(model, SemanticIDs):
        report = model.evaluation_report()
        figures |= {
            "usage": "/".join(f"{usage:.2f}" for usage in report["codebook_usage"]),
            "collisions": report["collision_rate"],
            "mse": report["reconstruction_mse"],
            "kmeans_mse": report["baseline_reconstruction_mse"],
        }
    return figures


def run_model(
    name: str, split: Split, data: InteractionData, arguments: argparse.Namespace
) -> dict[str, Any]:
    """One model fitted and read once: its timings and quality."""
    settings = model_settings(name, arguments.device, arguments.epochs, arguments.steps)
    model = algorithm_class(name)(**settings)
    if not isinstance(model, SemanticIDs | SequentialRecommender):
        raise TypeError(f"{name} is not a torch model this benchmark times")
    timing = timed_fit(model, split, data)
    return {"model": name, "timing": timing, **quality(model, split)}


def environment(device: str) -> dict[str, str]:
    """The device that ran and the software versions."""
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        name = torch.cuda.get_device_name(resolved)
    else:
        name = f"CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    return {
        "device": f"{resolved} ({name})",
        "torch": torch.__version__,
        "CUDA": str(torch.version.cuda or "none (CPU build)"),
        "cuDNN": str(torch.backends.cudnn.version() or "none"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
    }


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The results as a markdown table."""
    lines = [
        "| model | fit s | epochs/steps | first epoch s | s/epoch after | NDCG@10 "
        "| codebook usage | collisions | MSE (k-means) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        timing: Timing = row["timing"]
        quantizer = (
            f"{row['usage']} | {row['collisions']:.4f} | {row['mse']:.4f} ({row['kmeans_mse']:.4f})"
            if "usage" in row
            else "- | - | -"
        )
        lines.append(
            f"| {row['model']} | {timing.fit_seconds:.1f} | {timing.epochs} "
            f"| {timing.first_epoch_seconds:.2f} | {timing.seconds_per_epoch:.4f} "
            f"| {row['ndcg@10']:.4f} | {quantizer} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="sequential models")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="quantizer steps")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    arguments = parser.parse_args(argv)
    if arguments.epochs < 1 or arguments.steps < 1:
        raise SystemExit("--epochs and --steps must be positive")
    started = time.perf_counter()
    data = from_movielens_wheel(find_wheel())
    split = temporal_split(data)
    for key, value in environment(arguments.device).items():
        print(f"{key}: {value}")
    print(
        f"data: ML-100K, {data.n_users} users, {data.n_items} items, "
        f"{data.n_interactions} interactions, temporal leave-one-out; seed {SEED}"
    )
    rows = []
    for name in arguments.models:
        rows.append(run_model(name, split, data, arguments))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
