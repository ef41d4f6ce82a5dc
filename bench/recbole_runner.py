"""Tune one RecBole 1.2.1 model on an exported split and test it once; runs in RecBole's venv.

    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 var/recbole-venv/bin/python bench/recbole_runner.py \
        --job job.json --out result.json

The job (JSON) names the model, the split folder (`<data_path>/<dataset>/<dataset>.
{train,valid,test}.inter`), the seed, the grid and a checkpoint folder. Every grid setting
is fit on train only with early stopping on validation NDCG@10; the best setting is then
evaluated on test once, with train and validation items excluded from the ranking. The
result JSON is written atomically. Imports neither Django nor the project's code.

A job with `"sequential": true` (bench/recbole_sequential.py) reads (history, next item)
benchmark files instead, and its validation and test rankings mask the user's seen items,
read from the interaction-per-row export of the same split (`seen_from`); the masks are
checked before fitting and audited on every ranked row (`protocol_checks`, `mask_audit`).
"""

import argparse
import itertools
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PARTS = ("train", "valid", "test")
KS = (10, 20)
SELECTION_METRIC = "ndcg@10"
TEST_METRICS = ("recall", "ndcg", "hit", "mrr")
DEFAULT_EPOCHS = 300


class NullWriter:
    """Stands in for tensorboard's SummaryWriter: RecBole's scalars are not written."""

    def add_scalar(self, *args: object, **kwargs: object) -> None:
        """Drop a scalar."""

    def add_hparams(self, *args: object, **kwargs: object) -> None:
        """Drop the hyper-parameters."""

    def close(self) -> None:
        """Nothing to close."""


def patch_recbole() -> None:
    """Silence tensorboard, and fix ItemCoverage in 1.2.1 (it calls `.cpu()` on an int)."""
    import copy

    import recbole.trainer.trainer as trainer_module  # type: ignore[import-not-found]
    from recbole.evaluator.collector import Collector  # type: ignore[import-not-found]

    def get_data_struct(self: Any) -> Any:
        data = self.data_struct._data_dict
        for key, value in data.items():
            data[key] = value.cpu() if hasattr(value, "cpu") else value
        returned = copy.deepcopy(self.data_struct)
        for key in ("rec.topk", "rec.meanrank", "rec.score", "rec.items", "data.label"):
            if key in self.data_struct:
                del self.data_struct[key]
        return returned

    trainer_module.get_tensorboard = lambda logger: NullWriter()
    Collector.get_data_struct = get_data_struct
    mask_seen_items_in_sequential_loaders()


def mask_seen_items_in_sequential_loaders() -> None:
    """Give RecBole's sequential full-sort batches a history index, like general models get.

    RecBole 1.2.1 masks nothing but the padding item when it ranks for a sequential model
    (`collate_fn` returns `None` as the history index). A loader given `seen_items`
    (internal user id → item id tensor) masks those items of each row's user, so that the
    ranking excludes what ours excludes: train items at validation, train + validation at test.
    """
    import torch  # type: ignore[import-not-found]
    from recbole.data.dataloader.general_dataloader import (  # type: ignore[import-not-found]
        FullSortEvalDataLoader,
    )

    collate = FullSortEvalDataLoader.collate_fn

    def collate_fn(self: Any, index: Any) -> Any:
        batch = collate(self, index)
        seen = getattr(self, "seen_items", None)
        if not self.is_sequential or seen is None:
            return batch
        interaction, _, positive_u, positive_i = batch
        items = [seen[uid] for uid in interaction[self.uid_field].tolist()]
        history_u = torch.cat([torch.full_like(row, i) for i, row in enumerate(items)])
        return interaction, (history_u, torch.cat(items)), positive_u, positive_i

    FullSortEvalDataLoader.collate_fn = collate_fn


def base_config(job: Mapping[str, Any], setting_dir: Path) -> dict[str, Any]:
    """RecBole settings shared by every grid setting: benchmark files, no filtering, CPU."""
    return {
        "data_path": job["data_path"],
        "benchmark_filename": list(PARTS),
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        # Nothing is dropped, deduplicated, thresholded or normalised: every row is a positive.
        "rm_dup_inter": None,
        "val_interval": None,
        "filter_inter_by_user_or_item": False,
        "user_inter_num_interval": None,
        "item_inter_num_interval": None,
        "threshold": None,
        "normalize_all": False,
        "normalize_field": None,
        "eval_args": {
            "split": {"RS": [0.8, 0.1, 0.1]},  # unused: benchmark files are the split
            "group_by": "user",
            "order": "RO",
            "mode": "full",
        },
        "metrics": ["Recall", "MRR", "NDCG", "Hit", "ItemCoverage"],
        "topk": list(KS),
        "valid_metric": "NDCG@10",
        "metric_decimal_place": 6,
        "epochs": job.get("epochs", DEFAULT_EPOCHS),
        "eval_step": 1,
        "stopping_step": job.get("stopping_step", 10),
        "seed": job["seed"],
        "reproducibility": True,
        "use_gpu": False,
        "device": "cpu",
        "worker": 0,
        "show_progress": False,
        "state": "ERROR",
        "checkpoint_dir": str(setting_dir),
        "save_dataset": False,
        "save_dataloaders": False,
        "log_wandb": False,
        **(sequential_config(job) if job.get("sequential") else {}),
    }


def sequential_config(job: Mapping[str, Any]) -> dict[str, Any]:
    """Settings for (history, next item) benchmark files: RecBole's sequential dataset
    takes `item_id_list` as given, remapped with `item_id`; ranking is over all items."""
    return {
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
        "alias_of_item_id": ["item_id_list"],
        "MAX_ITEM_LIST_LENGTH": job.get("max_history", 50),
        "train_neg_sample_args": None,  # cross-entropy over all items (RecBole's default loss)
        "eval_args": {
            "split": {"LS": "valid_and_test"},  # unused: benchmark files are the split
            "group_by": "user",
            "order": "TO",  # SequentialDataset.build insists on it
            "mode": "full",
        },
    }


def parameter_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (one empty setting for an empty grid)."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def read_part_tokens(dataset_dir: Path, dataset: str, part: str) -> dict[str, set[str]]:
    """User token → item tokens of one exported file."""
    pairs: dict[str, set[str]] = {}
    with open(dataset_dir / f"{dataset}.{part}.inter", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            user, item = line.rstrip("\n").split("\t")[:2]
            pairs.setdefault(user, set()).add(item)
    return pairs


def check_protocol(job: Mapping[str, Any], dataset: Any, loaders: Sequence[Any]) -> dict[str, Any]:
    """Check that RecBole kept every exported row and masks what the protocol says.

    Validation ranking must exclude exactly the user's train items and test ranking exactly
    train + validation items (RecBole's `history_item` of the full-sort loaders).
    """
    dataset_dir = Path(job["data_path"]) / job["dataset"]
    files = {part: read_part_tokens(dataset_dir, job["dataset"], part) for part in PARTS}
    rows = {part: sum(map(len, files[part].values())) for part in PARTS}
    loaded = {
        part: len(loader._dataset.inter_feat) for part, loader in zip(PARTS, loaders, strict=True)
    }
    user_tokens = dataset.field2id_token[dataset.uid_field]
    item_tokens = dataset.field2id_token[dataset.iid_field]
    exclusions = {}
    for part, loader, expected_from in (
        ("valid", loaders[1], ("train",)),
        ("test", loaders[2], ("train", "valid")),
    ):
        mismatched = 0
        for uid in loader.uid_list.tolist():
            user = user_tokens[uid]
            expected = set().union(*(files[name].get(user, set()) for name in expected_from))
            history = {item_tokens[i] for i in loader.uid2history_item[uid].tolist()}
            mismatched += history != expected
        exclusions[part] = {
            "users": len(loader.uid_list),
            "mismatched": mismatched,
            "excludes": "+".join(expected_from),
        }
    all_users = set().union(*(set(files[part]) for part in PARTS))
    all_items = set().union(*(items for part in PARTS for items in files[part].values()))
    return {
        "rows_in_files": rows,
        "rows_loaded": loaded,
        "no_rows_dropped": rows == loaded,
        "users": {"files": len(all_users), "recbole": dataset.user_num - 1},
        "items": {"files": len(all_items), "recbole": dataset.item_num - 1},
        "exclusion": exclusions,
        "exclusion_ok": all(entry["mismatched"] == 0 for entry in exclusions.values()),
    }


def seen_items(job: Mapping[str, Any]) -> dict[str, dict[str, set[str]]]:
    """User token → item tokens to exclude when ranking for each part: train items at
    validation, train + validation items at test (read from the interaction-per-row export
    of the same split, `job["seen_from"]`)."""
    source = job["seen_from"]
    dataset_dir = Path(source["data_path"]) / source["dataset"]
    files = {part: read_part_tokens(dataset_dir, source["dataset"], part) for part in PARTS}
    test = {user: items | files["valid"].get(user, set()) for user, items in files["train"].items()}
    return {
        "valid": files["train"],
        "test": test,
        "targets_valid": files["valid"],
        "targets_test": files["test"],
    }


def attach_seen_items(dataset: Any, loaders: Sequence[Any], seen: Mapping[str, Any]) -> None:
    """Give the validation and test loaders their users' seen items as internal ids."""
    import torch  # type: ignore[import-not-found]

    user_ids = dataset.field2token_id[dataset.uid_field]
    item_ids = dataset.field2token_id[dataset.iid_field]
    for part, loader in (("valid", loaders[1]), ("test", loaders[2])):
        loader.seen_items = {
            user_ids[user]: torch.tensor(sorted(item_ids[item] for item in items))
            for user, items in seen[part].items()
            if user in user_ids
        }


def check_sequence_protocol(
    job: Mapping[str, Any], dataset: Any, loaders: Sequence[Any], seen: Mapping[str, Any]
) -> dict[str, Any]:
    """Check the sequential files as RecBole loaded them against the split.

    Every exported row is loaded; a validation row's history holds only train items and its
    target is the user's validation item; a test row's history holds only train +
    validation items and its target is the test item; each row's mask is exactly the
    user's seen items (what `collate_fn` will exclude) and never its target.
    """
    user_tokens = dataset.field2id_token[dataset.uid_field]
    item_tokens = dataset.field2id_token[dataset.iid_field]
    dataset_dir = Path(job["data_path"]) / job["dataset"]
    checks: dict[str, Any] = {"rows": {}}
    for part, loader in zip(PARTS, loaders, strict=True):
        with open(dataset_dir / f"{job['dataset']}.{part}.inter", encoding="utf-8") as handle:
            in_file = sum(1 for _ in handle) - 1
        checks["rows"][part] = {"file": in_file, "loaded": len(loader._dataset.inter_feat)}
    list_field = dataset.item_id_list_field
    for part, loader in (("valid", loaders[1]), ("test", loaders[2])):
        feat = loader._dataset.inter_feat
        bad_history = bad_target = bad_mask = 0
        for row in range(len(feat)):
            uid = int(feat[dataset.uid_field][row])
            user = user_tokens[uid]
            length = int(feat[dataset.item_list_length_field][row])
            history = {item_tokens[i] for i in feat[list_field][row][:length].tolist()}
            target = item_tokens[int(feat[dataset.iid_field][row])]
            expected = seen[part].get(user, set())
            bad_history += not history <= expected
            bad_target += target not in seen[f"targets_{part}"].get(user, set())
            masked = {item_tokens[i] for i in loader.seen_items[uid].tolist()}
            bad_mask += masked != expected or target in masked
        checks[part] = {
            "rows": len(feat),
            "history_outside_seen": bad_history,
            "target_not_the_split_item": bad_target,
            "mask_not_seen_items": bad_mask,
            "masks": "train" if part == "valid" else "train+valid",
        }
    checks["no_rows_dropped"] = all(v["file"] == v["loaded"] for v in checks["rows"].values())
    checks["protocol_ok"] = checks["no_rows_dropped"] and all(
        checks[part][name] == 0
        for part in ("valid", "test")
        for name in ("history_outside_seen", "target_not_the_split_item", "mask_not_seen_items")
    )
    return checks


class MaskAudit:
    """Counts, over every ranked row, whether exactly the seen items (and the padding item)
    scored -inf and the target did not: the masking as the trainer applied it."""

    def __init__(self) -> None:
        self.phase = "valid"
        self.counts: dict[str, dict[str, int]] = {}

    def wrap(self, trainer: Any) -> None:
        """Route the trainer's full-sort batches through `audit`."""
        evaluate_batch = trainer._full_sort_batch_eval

        def audited(batched_data: Any) -> Any:
            result = evaluate_batch(batched_data)
            self.audit(batched_data[1], result[1], result[3])
            return result

        trainer._full_sort_batch_eval = audited

    def audit(self, history_index: Any, scores: Any, targets: Any) -> None:
        """Compare the -inf cells of each row with the history index the loader gave."""
        import torch  # type: ignore[import-not-found]

        counts = self.counts.setdefault(
            self.phase, {"rows": 0, "rows_masked_exactly": 0, "targets_masked": 0}
        )
        expected = torch.zeros_like(scores, dtype=torch.bool)
        expected[:, 0] = True
        if history_index is not None:
            expected[history_index] = True
        masked = torch.isneginf(scores)
        counts["rows"] += len(scores)
        counts["rows_masked_exactly"] += int((masked == expected).all(dim=1).sum())
        rows = torch.arange(len(scores))
        counts["targets_masked"] += int(masked[rows, targets.cpu()].sum())


class EpochResume:
    """Lets a killed fit continue after its last validated epoch instead of starting over.

    After every validation the trainer's whole state (weights, optimizer, early-stopping
    counters, the train loader's shuffling generator, the RNGs, the curves so far) is
    written atomically to `resume.pth` in the setting's folder, next to the best weights
    RecBole saves itself. A later run of the same job and setting loads it and goes on
    with the next epoch, so a 4-hour fit can be completed across sittings; its training
    seconds add up over the runs. A state written for another job or setting is ignored.
    """

    def __init__(self, setting_dir: Path, job: Mapping[str, Any], params: Mapping[str, Any]):
        self.path = setting_dir / "resume.pth"
        spec = {key: value for key, value in job.items() if key != "threads"}
        self.identity = json.dumps({"job": spec, "params": params}, sort_keys=True, default=str)

    def save(
        self, trainer: Any, train_loader: Any, epoch: int, progress: Mapping[str, Any]
    ) -> None:
        """Write the state after `epoch` (0-based) has been validated."""
        import random

        import numpy
        import torch  # type: ignore[import-not-found]

        state = {
            "identity": self.identity,
            "epoch": epoch,
            "cur_step": trainer.cur_step,
            "best_valid_score": trainer.best_valid_score,
            "best_valid_result": trainer.best_valid_result,
            "saved_model_file": trainer.saved_model_file,
            "train_loss_dict": dict(trainer.train_loss_dict),
            "state_dict": trainer.model.state_dict(),
            "optimizer": trainer.optimizer.state_dict(),
            "generator": train_loader.generator.get_state(),
            "rng": (torch.get_rng_state(), numpy.random.get_state(), random.getstate()),
            "progress": dict(progress),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        torch.save(state, temporary, pickle_protocol=4)
        os.replace(temporary, self.path)

    def restore(self, trainer: Any, train_loader: Any) -> dict[str, Any] | None:
        """Load a state of this job and setting into `trainer`; its progress, or None."""
        import random

        import numpy
        import torch  # type: ignore[import-not-found]

        if not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        if state.get("identity") != self.identity or not Path(state["saved_model_file"]).exists():
            print(f"ignoring {self.path}: another job or no best weights", file=sys.stderr)
            return None
        trainer.start_epoch = state["epoch"] + 1
        trainer.cur_step = state["cur_step"]
        trainer.best_valid_score = state["best_valid_score"]
        trainer.best_valid_result = state["best_valid_result"]
        trainer.saved_model_file = state["saved_model_file"]
        trainer.train_loss_dict.update(state["train_loss_dict"])
        trainer.model.load_state_dict(state["state_dict"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        train_loader.generator.set_state(state["generator"])
        torch_rng, numpy_rng, python_rng = state["rng"]
        torch.set_rng_state(torch_rng)
        numpy.random.set_state(numpy_rng)
        random.setstate(python_rng)
        return {**state["progress"], "best_valid_result": state["best_valid_result"]}


def fit_setting(
    job: Mapping[str, Any], params: Mapping[str, Any], index: int, verify: bool
) -> dict[str, Any]:
    """Fit one setting on train with early stopping on validation; keep what testing needs."""
    from recbole.config import Config  # type: ignore[import-not-found]
    from recbole.data import create_dataset, data_preparation  # type: ignore[import-not-found]
    from recbole.utils import get_model, get_trainer, init_seed  # type: ignore[import-not-found]

    setting_dir = Path(job["checkpoint_dir"]) / f"setting-{index}"
    config_dict = {**base_config(job, setting_dir), **params}
    config = Config(model=job["model"], dataset=job["dataset"], config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    loaders = data_preparation(config, dataset)
    if job.get("sequential"):
        seen = seen_items(job)
        attach_seen_items(dataset, loaders, seen)
        checks = check_sequence_protocol(job, dataset, loaders, seen) if verify else None
    else:
        checks = check_protocol(job, dataset, loaders) if verify else None
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, loaders[0]._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    audit = MaskAudit()
    audit.wrap(trainer)
    epoch_seconds = 0.0
    epoch_log: list[dict[str, float]] = []
    train_epoch, valid_epoch = trainer._train_epoch, trainer._valid_epoch

    def timed_epoch(*args: Any, **kwargs: Any) -> Any:
        # Wall seconds, and this process's CPU seconds: on a shared or paused machine the
        # CPU time is what the epoch cost (with torch threads 1, one core's worth).
        nonlocal epoch_seconds
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            return train_epoch(*args, **kwargs)
        finally:
            seconds = time.perf_counter() - started
            epoch_seconds += seconds
            cpu = time.process_time() - cpu_started
            epoch_log.append({"train_s": round(seconds, 3), "train_cpu_s": round(cpu, 3)})

    def timed_valid(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        score, result = valid_epoch(*args, **kwargs)
        seconds = time.perf_counter() - started
        epoch_log[-1] |= {"valid_s": round(seconds, 3), "valid_ndcg@10": round(float(score), 6)}
        print(f"epoch {len(epoch_log)}: {epoch_log[-1]}", file=sys.stderr, flush=True)
        return score, result

    trainer._train_epoch, trainer._valid_epoch = timed_epoch, timed_valid
    valid_curve: list[float] = []
    resume = EpochResume(setting_dir, job, params)
    earlier = resume.restore(trainer, loaders[0])
    if earlier is not None:
        valid_curve, epoch_log[:] = earlier["valid_curve"], earlier["epoch_log"]
        epoch_seconds = earlier["epoch_seconds"]
        print(f"resumed after epoch {len(valid_curve)}", file=sys.stderr, flush=True)
    else:  # read by bench/recbole_sequential.py's progress(): earlier epochs no longer count
        print(f"setting {index} fit starts", file=sys.stderr, flush=True)
    seconds_before = earlier["train_seconds"] if earlier is not None else 0.0
    started = time.perf_counter()

    def after_validation(epoch: int, score: float) -> None:
        valid_curve.append(float(score))
        resume.save(
            trainer,
            loaders[0],
            epoch,
            {
                "valid_curve": valid_curve,
                "epoch_log": epoch_log,
                "epoch_seconds": epoch_seconds,
                "train_seconds": seconds_before + time.perf_counter() - started,
            },
        )

    finished = trainer.cur_step > trainer.stopping_step or trainer.start_epoch >= trainer.epochs
    if earlier is not None and finished:  # killed after its last validation: nothing to train
        best_score, best_result = trainer.best_valid_score, trainer.best_valid_result
    else:
        best_score, best_result = trainer.fit(
            loaders[0],
            loaders[1],
            verbose=False,
            saved=True,
            show_progress=False,
            callback_fn=after_validation,
        )
    seconds = seconds_before + time.perf_counter() - started
    best_epoch = max(range(len(valid_curve)), key=valid_curve.__getitem__) if valid_curve else 0
    # 1-based epoch whose weights RecBole keeps: the last of equal bests (`>=` in early_stopping)
    kept_epoch = (
        max(range(len(valid_curve)), key=lambda i: (valid_curve[i], i)) + 1 if valid_curve else 0
    )
    return {
        "params": dict(params),
        "valid": {key: float(value) for key, value in (best_result or {}).items()},
        "valid_ndcg@10": float(best_score),
        "train_seconds": seconds,
        "epoch_seconds": epoch_seconds,
        "epochs_run": len(trainer.train_loss_dict),
        "best_epoch": best_epoch,
        "kept_epoch": kept_epoch,
        "epoch_log": epoch_log,
        "audit": audit,
        "checks": checks,
        "trainer": trainer,
        "test_loader": loaders[2],
        "setting_dir": setting_dir,
    }


def run_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """Tune over the grid on validation NDCG@10, then evaluate the chosen setting on test once."""
    import torch  # type: ignore[import-not-found]

    patch_recbole()
    if "threads" in job:
        torch.set_num_threads(int(job["threads"]))
    trials = []
    best: dict[str, Any] | None = None
    checks = None
    for index, params in enumerate(parameter_grid(job["grid"])):
        trial = fit_setting(job, params, index, verify=index == 0)
        checks = checks or trial["checks"]
        print(
            f"setting {index}: {params} valid ndcg@10={trial['valid_ndcg@10']:.4f} "
            f"epochs={trial['epochs_run']} fit_s={trial['train_seconds']:.1f}",
            file=sys.stderr,
            flush=True,
        )
        trials.append(
            {
                key: trial[key]
                for key in (
                    "params",
                    "valid_ndcg@10",
                    "train_seconds",
                    "epoch_seconds",
                    "epochs_run",
                    "best_epoch",
                    "kept_epoch",
                )
            }
        )
        if best is None or trial["valid_ndcg@10"] > best["valid_ndcg@10"]:
            if best is not None:
                shutil.rmtree(best["setting_dir"], ignore_errors=True)
            best = trial
        else:
            shutil.rmtree(trial["setting_dir"], ignore_errors=True)
    if best is None:
        raise ValueError("the grid has no settings")
    best["audit"].phase = "test"
    test = best["trainer"].evaluate(best["test_loader"], load_best_model=True, show_progress=False)
    shutil.rmtree(job["checkpoint_dir"], ignore_errors=True)
    metrics = {f"{name}@{k}": float(test[f"{name}@{k}"]) for name in TEST_METRICS for k in KS}
    # RecBole divides by item_num, which counts its [PAD] item; ours divides by real items.
    item_num = best["test_loader"]._dataset.item_num
    for k in KS:
        if f"itemcoverage@{k}" in test:
            metrics[f"itemcoverage@{k}"] = float(test[f"itemcoverage@{k}"])
            metrics[f"coverage@{k}"] = float(test[f"itemcoverage@{k}"]) * item_num / (item_num - 1)
    return {
        "model": job["model"],
        **{name: round(value, 6) for name, value in metrics.items()},
        "params": best["params"],
        "valid_ndcg@10": round(best["valid_ndcg@10"], 6),
        "valid_metrics": {key: round(value, 6) for key, value in best["valid"].items()},
        "train_seconds": round(best["train_seconds"], 3),
        "epoch_seconds": round(best["epoch_seconds"], 3),
        "epochs_run": best["epochs_run"],
        "best_epoch": best["best_epoch"],
        "kept_epoch": best["kept_epoch"],
        "epoch_log": best["epoch_log"],
        "mask_audit": best["audit"].counts,
        "trials": trials,
        "grid": job["grid"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "protocol_checks": checks,
        "versions": {
            "torch": torch.__version__,
            "recbole": _recbole_version(),
            "python": sys.version.split()[0],
        },
        "torch_threads": torch.get_num_threads(),
    }


def _recbole_version() -> str:
    import recbole  # type: ignore[import-not-found]

    return str(recbole.__version__)


def write_json_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: read the job, run it, write the result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", type=Path, required=True, help="job JSON")
    parser.add_argument("--out", type=Path, required=True, help="result JSON")
    arguments = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config reads `--key=value` options from sys.argv
    job = json.loads(arguments.job.read_text(encoding="utf-8"))
    write_json_atomically(arguments.out, run_job(job))


if __name__ == "__main__":
    main()
