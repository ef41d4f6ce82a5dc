"""Candidate retrieval at catalog scale: recommender.ann.ItemVectorIndex on synthetic vectors.

    nice -n 10 OMP_NUM_THREADS=1 .venv/bin/python bench/ann_bench.py [--sizes 10000 100000 1000000]
        [--dim 32] [--nprobe 32 64 128 256]

Items are clustered (one centre per 1,000 items) with lognormal norms, as popularity gives
trained embeddings. Queries are what a history yields, the mean of 10 items: "focused"
draws them from 1 to 3 clusters, "mixed" from anywhere (harder: the best inner products
spread over many lists). Per size it times the default index (exact below 50k items, faiss
IVF above) and, for comparison, exact search; latency is single-threaded k=100 on the
index loaded back with mmap, as serving loads it. Recall@100 is against exact search on
100 + 100 queries. A second table sweeps nprobe on the largest size.
"""

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recommender.ann import ItemVectorIndex, limit_threads  # noqa: E402

ITEMS_PER_CLUSTER = 1_000
HISTORY_LENGTH = 10
QUERIES_PER_KIND = 100
TIMED_SEARCHES = 500
WARMUP_SEARCHES = 50
K = 100


def synthetic_catalog(n: int, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, cluster labels): clustered item vectors with popularity-like norms."""
    clusters = max(10, n // ITEMS_PER_CLUSTER)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    labels = rng.integers(0, clusters, n)
    vectors = centres[labels] + 0.6 * rng.standard_normal((n, dim), dtype=np.float32)
    vectors *= rng.lognormal(0, 0.3, (n, 1)).astype(np.float32)
    return vectors, labels


def history_queries(
    vectors: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Focused and mixed query vectors, each the mean of a synthetic history."""
    by_cluster = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[by_cluster], np.arange(labels.max() + 2))

    def focused() -> np.ndarray:
        clusters = rng.choice(labels.max() + 1, rng.integers(1, 4), replace=False)
        pool = np.concatenate([by_cluster[starts[c] : starts[c + 1]] for c in clusters])
        return vectors[rng.choice(pool, HISTORY_LENGTH)].mean(axis=0)

    mixed = vectors[rng.integers(0, len(vectors), (QUERIES_PER_KIND, HISTORY_LENGTH))]
    return {
        "focused": np.stack([focused() for _ in range(QUERIES_PER_KIND)]),
        "mixed": mixed.mean(axis=1),
    }


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth, strict=True)])
    )


def latencies_ms(search: Callable[[np.ndarray], object], queries: np.ndarray) -> np.ndarray:
    """Per-call wall time of single-query searches, cycling through `queries`."""
    for query in queries[:WARMUP_SEARCHES]:
        search(query)
    timings = []
    for i in range(TIMED_SEARCHES):
        query = queries[i % len(queries)]
        started = time.perf_counter()
        search(query)
        timings.append(time.perf_counter() - started)
    return np.array(timings) * 1000


def directory_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir()) / 1e6


def measure(
    vectors: np.ndarray,
    queries: dict[str, np.ndarray],
    truth: dict[str, np.ndarray],
    workdir: Path,
    exact_below: int | None,
) -> dict[str, object]:
    """Build, save, load with mmap, then time and score one index variant."""
    started = time.perf_counter()
    if exact_below is None:
        built = ItemVectorIndex.from_vectors(vectors)
    else:
        built = ItemVectorIndex.from_vectors(vectors, exact_below=exact_below)
    build_s = time.perf_counter() - started
    built.save(workdir)
    index = ItemVectorIndex.load(workdir, mmap=True)
    every_query = np.vstack(list(queries.values()))
    timings = latencies_ms(lambda q: index.search(q, K), every_query)
    row: dict[str, object] = {
        "variant": "exact" if index.is_exact else f"ivf nprobe={index.nprobe}",
        "build_s": build_s,
        "mb": directory_mb(workdir),
        "p50": np.percentile(timings, 50),
        "p95": np.percentile(timings, 95),
        "p99": np.percentile(timings, 99),
    }
    for kind, kind_queries in queries.items():
        row[kind] = recall(index.search_batch(kind_queries, K)[0], truth[kind])
    return row


def nprobe_sweep(
    vectors: np.ndarray,
    queries: dict[str, np.ndarray],
    truth: dict[str, np.ndarray],
    nprobes: list[int],
) -> list[dict[str, object]]:
    """Latency and recall of the faiss variant as nprobe grows."""
    index = ItemVectorIndex.from_vectors(vectors, exact_below=1)
    every_query = np.vstack(list(queries.values()))
    rows = []
    for nprobe in nprobes:
        index.nprobe = nprobe
        timings = latencies_ms(lambda q: index.search(q, K), every_query)
        row: dict[str, object] = {
            "nprobe": nprobe,
            "p50": np.percentile(timings, 50),
            "p95": np.percentile(timings, 95),
        }
        for kind, kind_queries in queries.items():
            row[kind] = recall(index.search_batch(kind_queries, K)[0], truth[kind])
        rows.append(row)
    return rows


def print_main_table(rows: list[dict[str, object]]) -> None:
    print(
        f"{'items':>9} {'variant':<16} {'build s':>8} {'MB':>7} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'p99 ms':>7} {'R@100 focused':>13} {'R@100 mixed':>11}"
    )
    for r in rows:
        print(
            f"{r['items']:>9,} {r['variant']:<16} {r['build_s']:>8.2f} {r['mb']:>7.1f}"
            f" {r['p50']:>7.3f} {r['p95']:>7.3f} {r['p99']:>7.3f}"
            f" {r['focused']:>13.3f} {r['mixed']:>11.3f}"
        )


def print_sweep(n: int, rows: list[dict[str, object]]) -> None:
    print(f"\nnprobe sweep at {n:,} items")
    print(f"{'nprobe':>6} {'p50 ms':>7} {'p95 ms':>7} {'R@100 focused':>13} {'R@100 mixed':>11}")
    for r in rows:
        print(
            f"{r['nprobe']:>6} {r['p50']:>7.3f} {r['p95']:>7.3f}"
            f" {r['focused']:>13.3f} {r['mixed']:>11.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--nprobe", type=int, nargs="*", default=[32, 64, 128, 256])
    args = parser.parse_args()
    limit_threads(1)
    print(f"faiss {faiss.__version__}, numpy {np.__version__}, d={args.dim}, k={K}, 1 thread")
    rows, rng = [], np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            vectors, labels = synthetic_catalog(n, args.dim, rng)
            queries = history_queries(vectors, labels, rng)
            exact = ItemVectorIndex.from_vectors(vectors, exact_below=n + 1)
            truth = {kind: exact.search_batch(q, K)[0] for kind, q in queries.items()}
            variants = [None] if n < 50_000 else [None, n + 1]
            for exact_below in variants:
                workdir = Path(tmp) / f"{n}-{exact_below}"
                rows.append({"items": n, **measure(vectors, queries, truth, workdir, exact_below)})
        print_main_table(rows)
        if args.nprobe:
            print_sweep(n, nprobe_sweep(vectors, queries, truth, args.nprobe))


if __name__ == "__main__":
    main()
