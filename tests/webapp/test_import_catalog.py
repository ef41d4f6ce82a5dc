"""`manage.py import_catalog`: CSV / JSONL / JSON feeds, per-row errors, dry run, idempotence."""

import csv
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import ItemFactory
from webapp.models import Category, Item

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def run_import(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_catalog", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing_import(*args: str) -> tuple[CommandError, str, str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_catalog", *args, stdout=out, stderr=err)
    return caught.value, out.getvalue(), err.getvalue()


def test_good_csv_imports_every_row() -> None:
    out, err = run_import(str(FIXTURES / "catalog_good.csv"))

    assert "created: 3, updated: 0, rejected: 0" in out
    assert err == ""
    film = Item.objects.select_related("category__parent").get(external_id="film-1")
    assert film.title == "The Grand Budapest Hotel"
    assert film.list_price == Decimal("12.99")
    assert film.currency == "USD"
    assert film.attributes == {"director": "Wes Anderson", "year": "2014"}
    assert film.category is not None and film.category.parent is not None
    assert (film.category.parent.name, film.category.name) == ("Movies", "Comedy")
    assert Item.objects.get(external_id="film-2").description.endswith("in Los Angeles.")
    paddington = Item.objects.get(external_id="film-3")
    assert paddington.is_active is False
    assert paddington.attributes == {"director": "Paul King"}
    assert paddington.list_price == Decimal("7.00")
    assert Category.objects.count() == 3


def test_reimport_updates_without_duplicates() -> None:
    run_import(str(FIXTURES / "catalog_good.csv"))
    before = {i.external_id: i.updated_at for i in Item.objects.all()}

    out, _ = run_import(str(FIXTURES / "catalog_good.csv"))

    assert "created: 0, updated: 3, rejected: 0" in out
    assert Item.objects.count() == 3
    assert Category.objects.count() == 3
    assert all(i.updated_at > before[i.external_id] for i in Item.objects.all())


def test_bad_rows_are_reported_by_line_and_good_rows_imported(tmp_path: Path) -> None:
    report = tmp_path / "report.csv"

    error, out, err = run_failing_import(
        str(FIXTURES / "catalog_bad_rows.csv"), "--report", str(report)
    )

    assert error.returncode == 2
    assert "created: 2, updated: 0, rejected: 4" in out
    lines = err.splitlines()
    assert "line 3: list_price: Ensure this value is greater than or equal to 0." in lines
    assert any(line.startswith("line 5: currency: ") for line in lines)
    assert "line 6: external_id: This field is required." in lines
    assert "line 7: image_url: Enter a valid http(s) URL." in lines
    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["good-1", "good-2"]
    with report.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["location"], r["field"]) for r in rows] == [
        ("line 3", "list_price"),
        ("line 5", "currency"),
        ("line 6", "external_id"),
        ("line 7", "image_url"),
    ]
    assert rows[0]["external_id"] == "bad-price"


def test_unknown_column_stops_before_importing_anything() -> None:
    error, _, _ = run_failing_import(str(FIXTURES / "catalog_unknown_column.csv"))

    assert "Unknown column(s): 'colour'" in str(error)
    assert error.returncode == 1
    assert not Item.objects.exists()


def test_jsonl_feed_imports_good_lines_and_reports_bad_ones() -> None:
    error, out, err = run_failing_import(str(FIXTURES / "catalog_feed.jsonl"))

    assert error.returncode == 2
    assert "created: 2, updated: 0, rejected: 1" in out
    assert "line 4: title: This field may not be blank." in err
    assert "line 4: list_price: Ensure that there are no more than 2 decimal places." in err
    dune = Item.objects.select_related("category").get(external_id="feed-1")
    assert dune.list_price == Decimal("19.99")
    assert dune.currency == "GBP"
    assert dune.attributes == {"author": "Frank Herbert", "pages": 412, "weight_kg": 0.35}
    assert dune.category is not None and dune.category.slug == "books-science-fiction"
    assert Item.objects.get(external_id="feed-2").category == dune.category


def test_json_array_feed() -> None:
    out, _ = run_import(str(FIXTURES / "catalog_feed.json"))

    assert "created: 2, updated: 0, rejected: 0" in out
    assert Item.objects.get(external_id="arr-1").currency == "USD"
    assert Item.objects.get(external_id="arr-2").is_active is False


def test_dry_run_writes_nothing_but_counts() -> None:
    ItemFactory(external_id="film-2")

    out, _ = run_import(str(FIXTURES / "catalog_good.csv"), "--dry-run")

    assert "created: 2, updated: 1, rejected: 0" in out
    assert "Dry run" in out
    assert list(Item.objects.values_list("external_id", flat=True)) == ["film-2"]
    assert Category.objects.count() == 1  # the factory's own


def test_format_flag_overrides_the_extension(tmp_path: Path) -> None:
    feed = tmp_path / "feed.txt"
    feed.write_text('{"external_id": "t-1", "title": "Text"}\n')

    out, _ = run_import(str(feed), "--format", "jsonl")

    assert "created: 1" in out


def test_duplicate_ids_in_one_file_are_rejected_after_the_first(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("external_id,title\nd-1,First\nd-1,Second\n")

    _, _, err = run_failing_import(str(feed))

    assert "line 3: external_id: duplicate of line 2" in err
    assert Item.objects.get(external_id="d-1").title == "First"


def test_rows_with_extra_cells_are_rejected(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("external_id,title\nok,Fine\n\nextra,Too many,cells\n")

    _, _, err = run_failing_import(str(feed))

    assert "line 4: row: has more cells than the header" in err
    assert list(Item.objects.values_list("external_id", flat=True)) == ["ok"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("latin1.csv", (FIXTURES / "catalog_latin1.csv").read_bytes(), "not UTF-8"),
        ("empty.csv", b"", "empty"),
        ("quote.csv", b'external_id,title\nx,"never closed\n', "Not a readable CSV"),
        ("no-title.csv", b"external_id\nx\n", "Missing required column(s): title"),
        ("broken.json", b'[{"external_id": "x", ', "Not valid JSON"),
        ("object.json", b'{"external_id": "x", "title": "y"}', "array"),
        ("broken.jsonl", b'{"external_id": "x", "title": "y"}\nnope\n', "line 2: not valid"),
        ("unknown.jsonl", b'{"external_id": "x", "title": "y", "colour": 1}\n', "colour"),
        ("feed.xml", b"<feed/>", "--format"),
    ],
)
def test_unreadable_files_fail_with_nothing_written(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    feed = tmp_path / name
    feed.write_bytes(content)

    error, _, _ = run_failing_import(str(feed))

    assert message in str(error)
    assert error.returncode == 1
    assert not Item.objects.exists()


def test_missing_file_is_a_command_error(tmp_path: Path) -> None:
    error, _, _ = run_failing_import(str(tmp_path / "missing.csv"))

    assert "Cannot read" in str(error)
