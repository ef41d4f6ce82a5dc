"""The synthetic world of bench/scale_bench.py: a catalog, visitors and an ALS model per role.

    DATABASE_URL=... ML_ARTIFACT_DIR=... .venv/bin/python bench/scale_data.py prepare
        --items 1000000 --out var/bench/scale/1000000
    DATABASE_URL=... ML_ARTIFACT_DIR=... .venv/bin/python bench/scale_data.py load

`prepare` fills a migrated, empty database: items by COPY, visitors with 5-20 views each
(COPY), item factors in clusters (one per 1,000 items) with popularity-like norms, in
shuffled column order (as training orders items by first interaction), saved through
`artifact_write` and promoted through the registry for home, similar and session;
then writes the request lines (`path<TAB>cookie`) that the wrk script replays.
`load` times what a web worker does before serving: read the artifacts, map external ids
to pks, and get the ANN index (built and saved with the artifact the first time).
Both print one JSON object on the last line of stdout.
"""

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROLES = ("home", "similar", "session")
FACTORS = 64
ITEMS_PER_CLUSTER = 1_000
CATEGORIES = 20
VIEWS_PER_VISITOR = (5, 20)
REQUEST_LINES = 20_000
COPY_CHUNK = 100_000
SEED = 20_261_201
ITEM_COLUMNS = (
    "external_id, title, description, category_id, attributes, list_price, currency, "
    "image_url, url, is_active, created_at, updated_at"
)
EVENT_COLUMNS = (
    "event_id, visitor_id, item_id, event_type, query, session_id, timestamp, placement, "
    "context, is_bot"
)
WORDS = ("red", "blue", "linen", "wool", "classic", "slim", "travel", "studio", "garden")


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")
    import django

    django.setup()


def external_id(n: int) -> str:
    return f"scale-{n:07d}"


def timed(started: float) -> float:
    return round(time.perf_counter() - started, 2)


# --- prepare --------------------------------------------------------------------------


@contextmanager
def copy_into(table: str, columns: str) -> Iterator[Any]:
    """A psycopg COPY ... FROM STDIN into `table`, in a transaction of its own."""
    from django.db import connection, transaction

    statement = f"COPY {table} ({columns}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        yield copy


def catalog_copy(items: int, now: datetime) -> None:
    """`items` active items in CATEGORIES categories, COPYed in chunks of COPY_CHUNK."""
    from webapp.models import Category

    categories = Category.objects.bulk_create(
        Category(name=f"Department {c}", slug=f"department-{c}") for c in range(CATEGORIES)
    )
    category_ids = [c.pk for c in categories]
    rng = np.random.default_rng(SEED)
    prices = np.round(rng.uniform(2, 300, items), 2)
    for start in range(0, items, COPY_CHUNK):
        with copy_into("webapp_item", ITEM_COLUMNS) as copy:
            for n in range(start, min(items, start + COPY_CHUNK)):
                stamp = now - timedelta(seconds=n)
                title = f"Item {n} {WORDS[n % len(WORDS)]} {WORDS[n // 7 % len(WORDS)]}"
                shown = (external_id(n), title, "", category_ids[n % CATEGORIES], "{}")
                copy.write_row((*shown, prices[n], "USD", "", "", True, stamp, stamp))


def item_factors(items: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(factors, cluster of each item): clustered vectors with lognormal norms."""
    clusters = max(10, items // ITEMS_PER_CLUSTER)
    centres = rng.standard_normal((clusters, FACTORS), dtype=np.float32)
    labels = rng.integers(0, clusters, items)
    factors = centres[labels]
    factors += 0.6 * rng.standard_normal((items, FACTORS), dtype=np.float32)
    factors *= (0.1 * rng.lognormal(0, 0.3, (items, 1))).astype(np.float32)
    return factors, labels


def visitors_with_views(
    visitors: int, labels: np.ndarray, rng: np.random.Generator, now: datetime
) -> tuple[list[Any], list[np.ndarray]]:
    """Visitors (consented) and the items each viewed: 5-20 items of one or two clusters."""
    from webapp.models import Item, Visitor

    created = Visitor.objects.bulk_create(Visitor(consent_given_at=now) for _ in range(visitors))
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(int(labels.max()) + 2))
    pks = Item.objects.order_by("pk").values_list("pk", flat=True)
    first_pk, last_pk = pks.first(), pks.last()
    # COPY numbered the items in order: the n-th item's pk is first_pk + n.
    assert first_pk is not None and last_pk == first_pk + len(labels) - 1, "pks not contiguous"
    clusters = int(labels.max()) + 1
    views: list[np.ndarray] = []
    with copy_into("webapp_interaction", EVENT_COLUMNS) as copy:
        for visitor in created:
            chosen = rng.choice(clusters, rng.integers(1, 3), replace=False)
            pool = np.concatenate([order[starts[c] : starts[c + 1]] for c in chosen])
            count = min(len(pool), int(rng.integers(*VIEWS_PER_VISITOR, endpoint=True)))
            seen = rng.choice(pool, count, replace=False)
            views.append(seen)
            for position, column in enumerate(seen):
                stamp = now - timedelta(days=3, minutes=10 * (len(seen) - position))
                row = (uuid.uuid4(), visitor.pk, first_pk + int(column), "view", "", "")
                copy.write_row((*row, stamp, "", "{}", False))
    return created, views


def models_register(
    factors: np.ndarray, visitors: list[Any], views: list[np.ndarray], now: datetime
) -> list[str]:
    """One ALS artifact per role, through artifact_write and the registry; their paths."""
    from django.conf import settings

    from ml.algorithms.als import ALS
    from ml.algorithms.fold_in import factor_gram
    from ml.services.artifacts import artifact_write
    from ml.services.registry import model_version_create, model_version_promote

    model = ALS(factors=FACTORS, regularization=0.1, alpha=1.0)
    model.n_users, model.n_items = len(visitors), len(factors)
    # Training orders columns by first interaction, not by pk: shuffle them likewise.
    columns = np.random.default_rng(SEED + 1).permutation(len(factors))
    model.item_factors = factors[columns]
    model.user_factors = np.stack([factors[seen].mean(axis=0) for seen in views])
    model.item_gram = factor_gram(factors)
    item_ids = [external_id(int(n)) for n in columns]
    user_ids = [str(visitor.pk) for visitor in visitors]
    paths = []
    for role in ROLES:
        path = f"{role}/scale-{len(factors)}-{now:%Y%m%d%H%M%S}"
        root = Path(settings.ML_ARTIFACT_DIR)
        artifact_write(
            root=root, relative_path=path, model=model, user_ids=user_ids, item_ids=item_ids
        )
        version = model_version_create(
            kind=model.name,
            role=role,
            hyperparameters=model.hyperparameters,
            dataset={"source": "bench/scale_data.py", "items": len(factors)},
            metrics={},
            artifact_path=path,
            trained_at=now,
            duration_seconds=0.0,
        )
        model_version_promote(version=version)
        paths.append(path)
    return paths


def request_lines(
    items: int, visitors: list[Any], rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """wrk request lines, `path<TAB>cookie`: item pages (random items) and home, per visitor."""
    from django.conf import settings

    from webapp.middleware import visitor_signed_token

    cookies = [
        f"{settings.CONSENT_COOKIE_NAME}=yes; "
        f"{settings.VISITOR_COOKIE_NAME}={visitor_signed_token(visitor)}"
        for visitor in visitors
    ]
    chosen = rng.integers(0, items, REQUEST_LINES)
    who = rng.integers(0, len(cookies), REQUEST_LINES)
    item_lines = [
        f"/api/recommendations/?placement=item&item={external_id(int(n))}&k=10\t{cookies[v]}"
        for n, v in zip(chosen, who, strict=True)
    ]
    home_lines = [f"/api/recommendations/?placement=home&k=10\t{cookie}" for cookie in cookies]
    return item_lines, home_lines


def prepare(items: int, visitors: int, out: Path) -> dict[str, Any]:
    from django.db import connection

    now = datetime.now(UTC)
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    catalog_copy(items, now)
    figures: dict[str, Any] = {"copy_items_s": timed(started)}
    started = time.perf_counter()
    factors, labels = item_factors(items, rng)
    people, views = visitors_with_views(visitors, labels, rng, now)
    figures["visitors_s"] = timed(started)
    started = time.perf_counter()
    figures["artifacts"] = models_register(factors, people, views, now)
    figures["register_s"] = timed(started)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    item_lines, home_lines = request_lines(items, people, rng)
    out.mkdir(parents=True, exist_ok=True)
    (out / "requests-item.txt").write_text("\n".join(item_lines) + "\n")
    (out / "requests-home.txt").write_text("\n".join(home_lines) + "\n")
    figures |= {"items": items, "visitors": visitors, "events": int(sum(map(len, views)))}
    return figures


# --- load -----------------------------------------------------------------------------


def load() -> dict[str, Any]:
    """Seconds a worker spends making the models servable; the first call builds the index."""
    from ml.selectors import model_version_active, model_version_artifact
    from recommender.active_models import ACTIVE_MODELS, item_pks_of, serving_warm_up

    home = model_version_active(role="home")
    assert home is not None, "no active home model: run prepare first"
    started = time.perf_counter()
    artifact = model_version_artifact(version=home)
    figures: dict[str, Any] = {"read_artifact_s": timed(started)}
    started = time.perf_counter()
    item_pks_of(artifact.item_ids)
    figures["item_pks_of_s"] = timed(started)
    from django.conf import settings

    from recommender.active_models import ANN_DIR

    folders = [Path(settings.ML_ARTIFACT_DIR) / path for path in _active_paths()]
    figures["ann_saved_before"] = [(folder / ANN_DIR).is_dir() for folder in folders]
    started = time.perf_counter()
    indexes = [ACTIVE_MODELS.get(role).vector_index() for role in ROLES]
    figures["first_load_all_roles_s"] = timed(started)  # builds and saves any missing index
    figures["ann"] = [None if index is None else f"ivf nprobe={index.nprobe}" for index in indexes]
    ACTIVE_MODELS.clear()
    started = time.perf_counter()
    serving_warm_up()
    figures["warm_up_s"] = timed(started)
    started = time.perf_counter()
    for role in ROLES:
        ACTIVE_MODELS.get(role).vector_index()
    figures["index_from_disk_all_roles_s"] = timed(started)
    return figures


def _active_paths() -> list[str]:
    from ml.selectors import model_version_active

    versions = [model_version_active(role=role) for role in ROLES]
    return [version.artifact_path for version in versions if version is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["prepare", "load"])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--visitors", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "scale")
    args = parser.parse_args()
    django_setup()
    figures = prepare(args.items, args.visitors, args.out) if args.step == "prepare" else load()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
