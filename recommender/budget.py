"""The latency budget of one recommendation request.

Synchronous Python cannot be interrupted, so the budget is checked between stages:
once it is spent, the sections not computed yet are served from the trending list.
Database reads of the serving path run under a Postgres `statement_timeout`.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction

# Attribute of the connection: the open timeout scopes, innermost last, as
# (milliseconds, set with SET LOCAL inside a transaction).
SCOPES = "_serving_statement_timeout_scopes"


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
    """Run the enclosed queries under a Postgres statement_timeout.

    Outside a transaction (a web request) the timeout is set on the session and reset on
    the way out: two statements, no transaction, and a timed-out query leaves the
    connection usable. Scopes nest: an inner one inside an outer session-level scope
    adds nothing (the outer timeout already applies), so a miss of the serving path
    pays for one scope, not one per query. Inside a transaction (tests, ATOMIC_REQUESTS)
    each scope is a savepoint with SET LOCAL, so a timeout rolls back only its own reads.
    """
    ms = max(1, int(milliseconds))
    scopes = _scopes()
    if connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = %s", [ms])
            scopes.append((ms, True))
            try:
                yield
            finally:
                scopes.pop()
            # Inside an outer transaction (a savepoint) SET LOCAL would outlive this block.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = DEFAULT")
        return
    if scopes:  # an enclosing session-level scope already applies
        scopes.append(scopes[-1])
        try:
            yield
        finally:
            scopes.pop()
        return
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = %s", [ms])
    scopes.append((ms, False))
    try:
        yield
    finally:
        scopes.pop()
        if connection.connection is not None and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = DEFAULT")


@contextmanager
def statement_timeout_lifted() -> Iterator[None]:
    """Run the enclosed queries without the serving timeout of an enclosing scope.

    For the shared lists (trending, popular) that a request computes when no process has
    them yet: a heavy aggregate over the whole log must not fail for the serving budget.
    """
    scopes = _scopes()
    if not scopes:
        yield
        return
    ms, local = scopes[-1]
    scope = "LOCAL " if local else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SET {scope}statement_timeout = DEFAULT")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SET {scope}statement_timeout = %s", [ms])


def _scopes() -> list[tuple[int, bool]]:
    """The open scopes of this thread's connection (the proxy forwards attributes)."""
    scopes: list[tuple[int, bool]] | None = getattr(connection, SCOPES, None)
    if scopes is None:
        scopes = []
        setattr(connection, SCOPES, scopes)
    return scopes
