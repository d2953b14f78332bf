"""The Executor interface: a pure per-item function mapped over items, outcomes yielded as they complete."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Cost = Callable[[T], int]


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """What became of one item: the function's result, or why there is none (the process running it died)."""

    item: T
    result: R | None = None
    crash: str | None = None


class Executor(ABC):
    """Runs `fn` over items. `fn` must be picklable (a module-level function or a partial of one) and must not raise
    for bad input: an executor isolates crashes of the process, not exceptions of the function.

    An executor may have a budget (bytes of memory): then `cost(item)` says what an item holds while it runs, and
    items start only while the costs of the items in flight sum to at most the budget (an item alone always starts).
    Items are taken from the iterable lazily, when there is room for them."""

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Iterable[T], cost: Cost | None = None) -> Iterator[Outcome[T, R]]:
        """One outcome per item, in completion order."""


class ExecutorError(Exception):
    """The executor cannot run the items (a cluster not reached, unfit or lost): one line for a person."""
