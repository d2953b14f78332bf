"""The serial executor: items one after another in this process; no isolation, no start-up cost."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from qa.execute.base import Executor, Outcome, R, T


class SerialExecutor(Executor):
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[Outcome[T, R]]:
        for item in items:
            yield Outcome(item, fn(item))
