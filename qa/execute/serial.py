"""The serial executor: items one after another in this process; no isolation, no start-up cost."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from qa.execute.base import Cost, Executor, Outcome, R, T


class SerialExecutor(Executor):
    """One item at a time, so any budget holds; for library use and tests, where a crash may end the caller."""

    def map(self, fn: Callable[[T], R], items: Iterable[T], cost: Cost | None = None) -> Iterator[Outcome[T, R]]:
        for item in items:
            yield Outcome(item, fn(item))
