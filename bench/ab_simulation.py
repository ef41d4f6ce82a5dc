"""The A/B simulation on MovieLens-100K, run twice: as is, and with a third of one
variant's exposures lost (a delivery bug the sample ratio mismatch check must catch).

    .venv/bin/python bench/ab_simulation.py [--users 943] [--seed 0] [--out bench/results_ab.md]

Writes into the database DATABASE_URL (or var/postgres/database_url) names, like
`manage.py simulate_ab` (experiment "simulate-ab-home", replaced on every run), and
writes a markdown table to the output file.
"""

import argparse
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DROP_SHARE = 0.33


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")
    os.environ["DEBUG"] = "false"  # DEBUG keeps every query in memory
    import django

    django.setup()


def run(users: int, seed: int, drop_share: float) -> dict[str, Any]:
    from django.conf import settings

    from webapp.experiments.simulation import SimulationConfig, simulation_run
    from webapp.services.movielens import movielens_wheel_download

    wheel = movielens_wheel_download(cache_dir=Path(settings.VAR_DIR) / "cache" / "wheels")
    config = SimulationConfig(users=users, seed=seed, drop_share=drop_share)
    return simulation_run(config=config, wheel=wheel).as_json()


def markdown(runs: list[tuple[str, dict[str, Any]]], users: int, seed: int) -> str:
    lines = [
        "# A/B simulation: trending vs the personalized model (`bench/ab_simulation.py`)",
        "",
        f"Command: `python bench/ab_simulation.py --users {users} --seed {seed}` "
        f"(= `python manage.py simulate_ab --users {users} --seed {seed} "
        f"[--drop-share {DROP_SHARE}] --json OUT`)  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, OMP threads "
        f"{os.environ.get('OMP_NUM_THREADS', 'default')}  ",
        "Data: MovieLens-100K; each replayed rater's newer half of ratings is held out "
        "(never trained on); EASE (reg 250) and trending are trained on the rest. A click "
        "is a shown item among the rater's held-out ratings of 4-5 stars; 10 items shown "
        "once per rater on `home_top_picks`. Metric: click-through rate (clicks / "
        "impressions), delta method over persons, Welch test; experiment configured 50/50.",
        "",
        "| run | variant | exposed | impressions | clicks | CTR [95 % CI] |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name, report in runs:
        for row in report["variants"]:
            low, high = row["rate_ci"]
            lines.append(
                f"| {name} | {row['name']} | {row['exposures']} | {row['impressions']} | "
                f"{row['conversions']} | {row['rate']:.4f} [{low:.4f}, {high:.4f}] |"
            )
    lines += [
        "",
        "| run | exposures lost | relative lift [95 % CI] | p-value (Holm) | "
        "P(beat control) | verdict | SRM p-value | SRM warning | seconds |",
        "| --- | ---: | --- | --- | ---: | --- | ---: | --- | ---: |",
    ]
    for name, report in runs:
        lift = report["lift"]
        low, high = lift["relative_ci"]
        lines.append(
            f"| {name} | {report['exposures_dropped']} | {lift['relative']:+.1%} "
            f"[{low:+.1%}, {high:+.1%}] | {report['p_value']:.2e} "
            f"({report['p_value_adjusted']:.2e}) | {report['prob_beat_control']:.4f} | "
            f"{report['verdict']} | {report['srm_p_value']:.2e} | "
            f"{'**yes**' if report['srm_warning'] else 'no'} | {report['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=943)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results_ab.md")
    args = parser.parse_args()
    django_setup()
    runs = [
        ("normal", run(args.users, args.seed, 0.0)),
        (f"drop {DROP_SHARE:g} of personalized", run(args.users, args.seed, DROP_SHARE)),
    ]
    text = markdown(runs, args.users, args.seed)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
