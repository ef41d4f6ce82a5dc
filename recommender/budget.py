"""The latency budget of one recommendation request.

Synchronous Python cannot be interrupted, so the budget is checked between stages:
once it is spent, the sections not computed yet are served from the trending list.
Database reads of the serving path run under a Postgres `statement_timeout`.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


class Budget:
    """A deadline in milliseconds from construction."""

    def __init__(self, milliseconds: float) -> None:
        self.milliseconds = milliseconds
        self._start = time.perf_counter()

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._start) * 1000.0

    @property
    def remaining_ms(self) -> float:
        return self.milliseconds - self.elapsed_ms

    def exceeded(self) -> bool:
        return self.remaining_ms <= 0


@contextmanager
def statement_timeout(milliseconds: float) -> Iterator[None]:
    """Run the enclosed queries in a transaction whose statements time out."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = %s", [max(1, int(milliseconds))])
        yield
        # Inside an outer transaction (a savepoint) SET LOCAL would outlive this block.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = DEFAULT")
