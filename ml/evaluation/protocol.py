"""Pick hyper-parameters on validation, fit on train only, and read the test part once.

Validation ranks exclude train items; test ranks exclude train and validation items,
as RecBole's full-sort evaluation does.
"""

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ml.algorithms.base import HyperValue, Recommender
from ml.algorithms.registry import algorithm_class
from ml.data.dataset import InteractionData
from ml.data.splits import Split
from ml.evaluation.metrics import DEFAULT_KS, evaluate_full_ranking

SELECTION_METRIC = "ndcg@10"


@dataclass(frozen=True)
class Trial:
    """One hyper-parameter setting with its validation score and fit time."""

    params: Mapping[str, HyperValue]
    valid_score: float
    train_seconds: float


@dataclass(frozen=True, eq=False)
class TuningResult:
    """The chosen setting of one algorithm, its test metrics and the fitted model."""

    model_name: str
    params: Mapping[str, HyperValue]
    valid_metrics: Mapping[str, float]
    test_metrics: Mapping[str, float]
    train_seconds: float
    trials: tuple[Trial, ...]
    model: Recommender = field(repr=False)


def parameter_grid(grid: Mapping[str, Sequence[HyperValue]]) -> list[dict[str, HyperValue]]:
    """Every combination of the grid's values (one empty setting for an empty grid)."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def tune_and_evaluate(
    model_name: str,
    grid: Mapping[str, Sequence[HyperValue]],
    split: Split,
    seed: int = 2020,
    *,
    data: InteractionData | None = None,
    ks: Sequence[int] = DEFAULT_KS,
) -> TuningResult:
    """Fit every grid setting on train, keep the best validation NDCG@10, test it once."""
    if split.valid.nnz == 0:
        raise ValueError("the split has no validation interactions to tune on")
    trials: list[Trial] = []
    best: tuple[Trial, Recommender, Mapping[str, float]] | None = None
    for params in parameter_grid(grid):
        model, seconds = _fit_timed(model_name, params, split, seed, data)
        valid = evaluate_full_ranking(model, split.valid, split.train, split.train, ks=ks)
        trial = Trial(params, valid.metrics[SELECTION_METRIC], seconds)
        trials.append(trial)
        if best is None or trial.valid_score > best[0].valid_score:
            best = (trial, model, valid.metrics)
    if best is None:
        raise ValueError("the grid has no settings")
    chosen, model, valid_metrics = best
    seen = split.train + split.valid
    test = evaluate_full_ranking(model, split.test, seen, split.train, ks=ks)
    return TuningResult(
        model_name=model_name,
        params=chosen.params,
        valid_metrics=valid_metrics,
        test_metrics=test.metrics,
        train_seconds=chosen.train_seconds,
        trials=tuple(trials),
        model=model,
    )


def _fit_timed(
    model_name: str,
    params: Mapping[str, HyperValue],
    split: Split,
    seed: int,
    data: InteractionData | None,
) -> tuple[Recommender, float]:
    """A model fit on the train part only, and the seconds the fit took."""
    model_class = algorithm_class(model_name)
    arguments = {"seed": seed, **params} if model_class.uses_seed else dict(params)
    model = model_class(**arguments)
    started = time.perf_counter()
    model.fit(split.train, data=data, valid=split.valid)
    return model, time.perf_counter() - started
