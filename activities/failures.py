"""How an outside system's errors become Temporal failures.

Each vendor module has a classifier that returns the error itself when a retry may cure
it, or a non-retryable ``ApplicationError`` when none will; ``classified`` applies one to
what a block raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

E = TypeVar("E", bound=Exception)


@contextlib.contextmanager
def classified(kind: type[E], classify: Callable[[E], Exception]) -> Iterator[None]:
    """Raise what ``classify`` makes of an error of ``kind`` raised in the block: the
    error itself, as it was, when it stays retryable (never ``raise exc from exc``, a cause
    cycle the failure converter recurses on), else the failure it returns, caused by it."""
    try:
        yield
    except kind as exc:
        failure = classify(exc)
        if failure is exc:
            raise
        raise failure from exc
