"""The Executor interface: a pure per-item function mapped over items, outcomes yielded as they complete."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

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


@dataclass(frozen=True)
class Task:
    """An item in line, its cost, and which attempt at running it this is."""

    item: Any
    cost: int
    attempt: int = 1


class TaskQueue:
    """Items in order, each costed once when first looked at, with items to run again ahead of new ones."""

    def __init__(self, items: Iterable[Any], cost: Cost | None) -> None:
        self.items, self.cost = iter(items), cost
        self.ahead: deque[Task] = deque()

    def peek(self) -> Task | None:
        if not self.ahead:
            item = next(self.items, _END)
            if item is _END:
                return None
            self.ahead.append(Task(item, 0 if self.cost is None else self.cost(item)))
        return self.ahead[0]

    def pop(self) -> Task:
        return self.ahead.popleft()

    def again(self, task: Task) -> None:
        """A task whose worker died running it: first in line, one attempt more."""
        self.ahead.appendleft(replace(task, attempt=task.attempt + 1))

    def back(self, tasks: list[Task]) -> None:
        """Tasks sent to a worker that died before it began them: back in line, in their order, as they were."""
        self.ahead.extendleft(reversed(tasks))


_END = object()
