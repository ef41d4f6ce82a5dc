"""The side-by-side table of cached results (ours vs RecBole 1.2.1), for stdout and RESULTS.md."""

import os
import platform
import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BEGIN = "<!-- recbole:begin -->"
END = "<!-- recbole:end -->"
SECTION = "## Our models vs RecBole 1.2.1 on ML-100K"
INTRO = (
    "Our models and RecBole 1.2.1's on the same splits, written by "
    "`bench/recbole_compare.py` (RecBole runs in its own venv, `bench/recbole_venv.sh`). "
    "The block between the markers is rewritten from the cached results on every report."
)
COMMAND = (
    "nice -n 10 nohup .venv/bin/python bench/recbole_compare.py --seeds 2020 2021 2022 "
    "--splits random temporal > var/bench/recbole/run.out 2>&1 &"
)
REPORT_COMMAND = ".venv/bin/python bench/recbole_compare.py --report"
METRICS = ("ndcg@10", "recall@10", "hit@10", "mrr@10")
# Our model → its RecBole counterpart, for the ratio columns.
COUNTERPARTS = {
    "pop": "Pop",
    "itemknn": "ItemKNN",
    "ease": "EASE",
    "bpr": "BPR",
    "multvae": "MultiVAE",
}
CLEAR_WIN = 0.05
SPLIT_TITLES = {
    "random": "random split (RecBole RS+RO 8:1:1 per user, shuffled with the seed)",
    "temporal": "temporal split (leave-one-out by time; the seed only seeds the models)",
}


@dataclass(frozen=True)
class Row:
    """One (split, library, model) over the seeds that have a current result."""

    split: str
    library: str
    model: str
    results: Mapping[int, Mapping[str, Any]]  # seed → result

    def values(self, name: str, seeds: Sequence[int] | None = None) -> list[float]:
        """The metric over the given seeds (all by default)."""
        chosen = self.results if seeds is None else {s: self.results[s] for s in seeds}
        return [float(result[name]) for result in chosen.values()]

    def mean(self, name: str, seeds: Sequence[int] | None = None) -> float:
        """Mean of the metric over the seeds."""
        return statistics.fmean(self.values(name, seeds))


def mean_std(values: Sequence[float], digits: int) -> str:
    """ "m ± s" (sample std; no ± for one value)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def chosen_params(row: Row) -> str:
    """The chosen settings with how many seeds chose each."""
    counts = Counter(
        ", ".join(f"{key}={value}" for key, value in result["params"].items()) or "-"
        for result in row.results.values()
    )
    return "; ".join(
        f"{text} ({n})" if len(row.results) > 1 else text for text, n in counts.most_common()
    )


def build_rows(records: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Group current records by (split, library, model)."""
    grouped: dict[tuple[str, str, str], dict[int, Mapping[str, Any]]] = {}
    for record in records:
        key = (record["split"], record["library"], record["model"])
        grouped.setdefault(key, {})[int(record["seed"])] = record["result"]
    return [
        Row(split, library, model, results) for (split, library, model), results in grouped.items()
    ]


def ratio_cells(row: Row, by_model: Mapping[tuple[str, str], Row]) -> tuple[str, str]:
    """NDCG@10 change and train-time ratio of our model vs its RecBole counterpart, on the
    seeds both have."""
    other = (
        by_model.get(("recbole", COUNTERPARTS.get(row.model, "")))
        if row.library == "ours"
        else None
    )
    seeds = sorted(set(row.results) & set(other.results)) if other else []
    if other is None or not seeds:
        return "", ""
    change = row.mean("ndcg@10", seeds) / other.mean("ndcg@10", seeds) - 1
    time_ratio = row.mean("train_seconds", seeds) / max(other.mean("train_seconds", seeds), 1e-9)
    return f"{change:+.1%} vs {other.model}", f"{time_ratio:.2g}x"


def headline(rows: Sequence[Row]) -> str:
    """Best of ours against best of RecBole's on mean NDCG@10."""
    ours = [row for row in rows if row.library == "ours"]
    theirs = [row for row in rows if row.library == "recbole"]
    if not ours or not theirs:
        return "best ours vs best RecBole: not enough results yet"
    best_ours = max(ours, key=lambda row: row.mean("ndcg@10"))
    best_theirs = max(theirs, key=lambda row: row.mean("ndcg@10"))
    change = best_ours.mean("ndcg@10") / best_theirs.mean("ndcg@10") - 1
    mark = " ✓" if change >= CLEAR_WIN else ""
    return (
        f"**best ours {best_ours.model} {best_ours.mean('ndcg@10'):.4f} "
        f"vs best RecBole {best_theirs.model} {best_theirs.mean('ndcg@10'):.4f}: "
        f"{change:+.1%}{mark}** (NDCG@10, mean over {len(best_ours.results)} / "
        f"{len(best_theirs.results)} seeds)"
    )


def split_table(rows: Sequence[Row]) -> list[str]:
    """Markdown table of one split, best mean NDCG@10 first."""
    by_model = {(row.library, row.model): row for row in rows}
    lines = [
        "| model | library | seeds | NDCG@10 | Recall@10 | Hit@10 | MRR@10 | train s | peak RSS MB "
        "| NDCG@10 vs RecBole | train time ours/RecBole | chosen (seeds) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in sorted(rows, key=lambda row: -row.mean("ndcg@10")):
        ndcg_change, time_ratio = ratio_cells(row, by_model)
        cells = [
            row.model,
            "ours" if row.library == "ours" else "RecBole",
            ",".join(str(seed) for seed in sorted(row.results)),
            *(mean_std(row.values(name), 4) for name in METRICS),
            mean_std(row.values("train_seconds"), 2),
            mean_std(row.values("peak_rss_mb"), 0),
            ndcg_change,
            time_ratio,
            chosen_params(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def grid_text(grids: Mapping[str, Mapping[str, Sequence[Any]]]) -> str:
    """Grids as `model {name: [values]}`."""
    return "; ".join(
        f"{model} "
        + (", ".join(f"{key} {list(values)}" for key, values in grid.items()) or "(none)")
        for model, grid in grids.items()
    )


def checks_text(records: Sequence[Mapping[str, Any]]) -> str:
    """What RecBole's own data and masks were checked to be."""
    checks = [r["result"].get("protocol_checks") for r in records if r["library"] == "recbole"]
    done = [check for check in checks if check]
    if not done:
        return "Checks: no RecBole result yet."
    rows_ok = sum(1 for check in done if check["no_rows_dropped"])
    masks_ok = sum(1 for check in done if check["exclusion_ok"])
    return (
        f"Checks (every RecBole job): all exported rows loaded, no user or item dropped "
        f"in {rows_ok}/{len(done)} jobs; full-sort masks exactly the user's train items at "
        f"validation and train + validation items at test in {masks_ok}/{len(done)} jobs."
    )


def environment_text(records: Sequence[Mapping[str, Any]]) -> str:
    """Machine and the two environments' versions."""
    import numpy
    import scipy

    versions: Mapping[str, Any] = next(
        (r["result"]["versions"] for r in records if "versions" in r["result"]), {}
    )
    recbole = ", ".join(f"{name} {value}" for name, value in versions.items())
    return (
        f"Machine: {os.cpu_count()} cores (shared with other jobs, so seconds are noisy), "
        f"Python {platform.python_version()}, numpy {numpy.__version__}, scipy "
        f"{scipy.__version__}; RecBole venv: {recbole or 'n/a'}, CPU only"
    )


def render(
    records: Sequence[Mapping[str, Any]],
    stale: int,
    recbole_grids: Mapping[str, Mapping[str, Sequence[Any]]],
    our_grids: Mapping[str, Mapping[str, Sequence[Any]]],
) -> str:
    """The whole block: context, one headline and table per split, checks."""
    rows = build_rows(records)
    lines = [
        f"Command: `{COMMAND}`; report only: `{REPORT_COMMAND}`  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        environment_text(records) + "  ",
        "Protocol: both libraries read the same exported split (RecBole benchmark files "
        "`ml100k.{train,valid,test}.inter`, external ids, no filtering, every rating a "
        "positive); every setting is fit on train only and tuned on validation NDCG@10 "
        "(RecBole: early stopping on it, eval_step 1, stopping_step 10, at most 300 epochs); "
        "full ranking with train items masked at validation and train + validation items "
        "at test; test read once for the chosen setting. mean ± sample std over seeds. "
        "train s = fit of the chosen setting (RecBole: `trainer.fit`, including its "
        "per-epoch validation); peak RSS of the process that tuned the whole grid.  ",
        f"Grids (ours): {grid_text(our_grids)}.  ",
        f"Grids (RecBole): {grid_text(recbole_grids)}.",
    ]
    for split in SPLIT_TITLES:
        split_rows = [row for row in rows if row.split == split]
        if split_rows:
            lines += ["", f"### {SPLIT_TITLES[split]}", "", headline(split_rows), ""]
            lines += split_table(split_rows)
    lines += ["", checks_text(records)]
    if stale:
        lines.append(
            f"({stale} cached results are stale — code, grid or split changed — and left out.)"
        )
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    """The file with the marked block replaced, or the section appended when absent."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    wrapped = f"{BEGIN}\n{block}\n{END}"
    if pattern.search(text):
        return pattern.sub(lambda _: wrapped, text, count=1)
    return text.rstrip("\n") + f"\n\n{SECTION}\n\n{INTRO}\n\n{wrapped}\n"


def write_report(
    records: Sequence[Mapping[str, Any]],
    stale: int,
    recbole_grids: Mapping[str, Mapping[str, Sequence[Any]]],
    our_grids: Mapping[str, Mapping[str, Sequence[Any]]],
    results_file: Path,
) -> str:
    """Render the block, write it into `results_file` and return it."""
    block = render(records, stale, recbole_grids, our_grids)
    text = results_file.read_text(encoding="utf-8") if results_file.exists() else "# Benchmarks\n"
    temporary = results_file.with_name(f".{results_file.name}.tmp")
    temporary.write_text(replace_block(text, block), encoding="utf-8")
    temporary.replace(results_file)
    return block
