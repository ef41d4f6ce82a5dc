"""Render the home recommendations of recently active visitors into the serving cache."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from recommender.answers import answers_precompute, precompute_reaches_serving
from recommender.apis import MAX_K


class Command(BaseCommand):
    help = (
        "Precompute the home answer of the API for the most recently active visitors "
        "(done after every training by the worker)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, help="at most this many visitors")
        parser.add_argument("--k", type=int, default=10, help="items per answer (default 10)")

    def handle(self, *args: object, **options: object) -> None:
        if not precompute_reaches_serving():
            raise CommandError(
                "The recommendations cache is per process (no REDIS_URL): answers cached "
                "here would never reach the web processes."
            )
        limit = options["limit"]
        k = options["k"]
        assert limit is None or isinstance(limit, int)
        assert isinstance(k, int)
        if not 1 <= k <= MAX_K:
            raise CommandError(f"--k must be between 1 and {MAX_K} (the API's range), not {k}.")
        if limit is not None and limit < 0:
            raise CommandError(f"--limit must be 0 or more, not {limit}.")
        with tqdm(unit="visitor", disable=options.get("verbosity") == 0) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total + 1
                bar.update(1)

            report = answers_precompute(k=k, limit=limit, progress=progress)
        if report.skipped:
            self.stdout.write(f"Nothing precomputed: {report.skipped}.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Precomputed {report.answers} answers ({report.visitors} visitors and the "
                f"anonymous one; {report.degraded} from a fallback, kept briefly)."
            )
        )
