"""The Executor interface: a pure per-item function mapped over items, outcomes yielded as they complete."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """What became of one item: the function's result, or why there is none (the process running it died)."""

    item: T
    result: R | None = None
    crash: str | None = None


class Executor(ABC):
    """Runs `fn` over items. `fn` must be picklable (a module-level function or a partial of one) and must not raise
    for bad input: an executor isolates crashes of the process, not exceptions of the function."""

    @abstractmethod
    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[Outcome[T, R]]:
        """One outcome per item, in completion order."""
