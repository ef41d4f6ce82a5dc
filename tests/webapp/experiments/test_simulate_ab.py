"""simulate_ab end to end on the real MovieLens-100K: the personalised model wins, and a
delivery bug that loses a third of one variant's exposures raises the SRM warning."""

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection

from webapp.experiments.models import Experiment, ExperimentStatus, Exposure
from webapp.experiments.selectors import experiments_cache_clear
from webapp.experiments.simulation import EXPERIMENT_KEY, visitor_key
from webapp.models import EventType, Interaction, Visitor
from webapp.services.movielens import movielens_wheel_download

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

WHEEL = Path(settings.VAR_DIR) / "cache" / "wheels" / "recbole-1.2.1-py3-none-any.whl"


@pytest.fixture(autouse=True)
def _fixed_visitor_ids(db: Any) -> None:
    """Assignment hashes "visitor:<pk>": fixed pks make each run the same run."""
    movielens_wheel_download(cache_dir=WHEEL.parent)  # as load_movielens does; cached
    cache.clear()
    experiments_cache_clear()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('webapp_visitor', 'id'), 5000000)")


def simulate(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "ab.json"
    call_command("simulate_ab", *args, "--json", str(out), stdout=None)
    return json.loads(out.read_text())


def test_personalized_wins_without_sample_ratio_mismatch(tmp_path: Path) -> None:
    simulate(tmp_path, "--users", "20", "--seed", "1")  # a previous run, replaced below

    report = simulate(tmp_path, "--users", "300")

    trending, personalized = report["variants"]
    assert (trending["name"], personalized["name"]) == ("trending", "personalized")
    assert trending["exposures"] + personalized["exposures"] == 300
    assert personalized["impressions"] == 10 * personalized["exposures"]
    assert personalized["rate"] > trending["rate"]
    assert report["lift"]["relative_ci"][0] > 0
    assert report["p_value"] < 0.05
    assert report["prob_beat_control"] > 0.95
    assert report["srm_warning"] is False and report["srm_p_value"] > 0.001
    # One experiment, stopped (never served), its 300 visitors, their events in the log.
    experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
    assert experiment.status == ExperimentStatus.STOPPED
    visitors = Visitor.objects.filter(key__in=[visitor_key(str(u)) for u in range(1, 944)])
    assert visitors.count() == 300
    assert Exposure.objects.filter(experiment=experiment).count() == 300
    clicks = Interaction.objects.filter(visitor__in=visitors, event_type=EventType.CLICK)
    assert clicks.count() == trending["conversions"] + personalized["conversions"]
    variants = {click.context["variants"][EXPERIMENT_KEY] for click in clicks}
    assert variants == {"trending", "personalized"}


def test_losing_a_third_of_one_variant_raises_the_srm_warning(tmp_path: Path) -> None:
    report = simulate(tmp_path, "--users", "943", "--drop-share", "0.33")

    trending, personalized = report["variants"]
    assigned = personalized["exposures"] + report["exposures_dropped"]
    assert report["exposures_dropped"] == int(assigned * 0.33)
    assert report["srm_warning"] is True and report["srm_p_value"] < 0.001
    weights = Experiment.objects.get(key=EXPERIMENT_KEY).variants.values_list("weight", flat=True)
    assert list(weights) == [50, 50]  # still configured 50/50
    assert personalized["rate"] > trending["rate"]
