"""Tune and evaluate each model in its own process, so its peak memory is its own."""

import multiprocessing
import resource
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

from ml.algorithms.base import HyperValue
from ml.data.dataset import InteractionData
from ml.data.splits import Split
from ml.evaluation.protocol import tune_and_evaluate


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _evaluate_one(
    model_name: str,
    grid: Mapping[str, Sequence[HyperValue]],
    split: Split,
    seed: int,
    data: InteractionData,
) -> dict[str, Any]:
    result = tune_and_evaluate(model_name, grid, split, seed, data=data)
    return {
        "model": model_name,
        **{name: round(float(value), 6) for name, value in result.test_metrics.items()},
        "params": dict(result.params),
        "valid_ndcg@10": round(float(result.valid_metrics["ndcg@10"]), 6),
        "train_seconds": round(result.train_seconds, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        **_model_report(result.model),
    }


def _model_report(model: object) -> dict[str, Any]:
    """Figures a model adds next to the ranking metrics (a quantizer's usage, MSE, ...)."""
    report = getattr(model, "evaluation_report", None)
    return dict(report()) if callable(report) else {}


def evaluate_isolated(
    models: Sequence[str],
    grids: Mapping[str, Mapping[str, Sequence[HyperValue]]],
    split: Split,
    seed: int,
    data: InteractionData,
) -> list[dict[str, Any]]:
    """One forked process per model (the data is shared, not copied or pickled); results
    in the order of `models`. A peak includes the dataset the parent had loaded."""
    context = multiprocessing.get_context("fork")
    results = []
    for name in models:
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_child, args=(sender, name, grids[name], split, seed, data), daemon=True
        )
        child.start()
        sender.close()
        try:
            outcome = receiver.recv()
        except EOFError:  # the child died without answering (killed, out of memory)
            outcome = None
        child.join()
        if not isinstance(outcome, dict) or "error" in outcome:
            raise RuntimeError(f"{name} failed: {outcome and outcome.get('error')}")
        results.append(outcome)
    return results


def _child(
    sender: Connection,
    model_name: str,
    grid: Mapping[str, Sequence[HyperValue]],
    split: Split,
    seed: int,
    data: InteractionData,
) -> None:
    try:
        sender.send(_evaluate_one(model_name, grid, split, seed, data))
    except Exception as error:  # reported to the parent, which raises it with the model
        sender.send({"error": f"{type(error).__name__}: {error}"})
    finally:
        sender.close()
