"""The `evaluate` command on a CSV file and on the database's interaction log."""

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.factories import InteractionFactory, ItemFactory, VisitorFactory
from webapp.models import EventType

METRICS = ("recall@10", "ndcg@10", "hit@10", "mrr@10", "coverage@10", "novelty@10")


def _write_csv(path: Path, users: int = 40, items: int = 30, per_user: int = 10) -> Path:
    rng = random.Random(7)
    lines = ["user,item,rating,timestamp"]
    stamp = 1000
    for user in range(users):
        for item in rng.sample(range(items), per_user):
            stamp += 1
            lines.append(f"u{user},i{item},{rng.randint(1, 5)},{stamp}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _check_report(report: dict, source: str, models: list[str]) -> None:
    assert report["protocol"]["source"] == source
    assert report["protocol"]["fit_on"] == "train"
    assert [row["model"] for row in report["results"]] == models
    for row in report["results"]:
        for metric in METRICS[:5]:
            assert 0.0 <= row[metric] <= 1.0
        assert row["train_seconds"] >= 0
        assert row["peak_rss_mb"] > 10


@pytest.mark.parametrize("split", ["random", "temporal"])
def test_evaluate_csv_writes_json(tmp_path: Path, split: str) -> None:
    csv_file = _write_csv(tmp_path / "interactions.csv")
    out = tmp_path / "report.json"

    call_command(
        "evaluate",
        "--source",
        "csv",
        "--interactions",
        str(csv_file),
        "--split",
        split,
        "--models",
        "pop,ease",
        "--json",
        str(out),
    )

    report = json.loads(out.read_text())
    _check_report(report, "csv", ["pop", "ease"])
    assert report["protocol"]["interactions"] == 400


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user,item\n", "no interaction rows"),
        ("user,item,colour\nu1,i1,red\n", "colour"),
        ("user,item,rating\nu1,i1,lots\n", "lots"),
    ],
)
def test_evaluate_csv_bad_input_is_a_clear_error(
    tmp_path: Path, content: str, message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(CommandError, match=message):
        call_command("evaluate", "--source", "csv", "--interactions", str(bad), "--models", "pop")


def test_evaluate_rejects_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="unknown models"):
        call_command("evaluate", "--source", "csv", "--interactions", "x.csv", "--models", "magic")


@pytest.mark.django_db
def test_evaluate_database_source(tmp_path: Path) -> None:
    rng = random.Random(3)
    items = ItemFactory.create_batch(25)
    start = timezone.now() - timedelta(days=30)
    for n in range(30):
        visitor = VisitorFactory.create()
        for k, item in enumerate(rng.sample(items, 8)):
            InteractionFactory.create(
                visitor=visitor,
                item=item,
                event_type=EventType.VIEW,
                timestamp=start + timedelta(hours=n * 10 + k),
            )
    InteractionFactory.create(event_type=EventType.VIEW, is_bot=True)
    out = tmp_path / "db.json"

    call_command("evaluate", "--source", "db", "--models", "pop,itemknn", "--json", str(out))

    report = json.loads(out.read_text())
    _check_report(report, "db", ["pop", "itemknn"])
    assert report["protocol"]["users"] == 30  # the bot's event is left out
    assert report["protocol"]["interactions"] == 240
