"""The process-pool executor: items in worker processes, so that a worker that crashes costs only its own item."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from qa.execute.base import Executor, Outcome, R, T

# Items queued per worker: enough to keep workers busy, few enough that a crash only puts these under suspicion.
QUEUE_PER_JOB = 4
CRASH = "the worker process died (crash or killed)"


class PoolExecutor(Executor):
    """`jobs` worker processes. When one dies, the items that were in flight are run again one process each, so that
    only the culprit is lost."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[Outcome[T, R]]:
        pending = deque(items)
        while pending:
            inflight: dict[Future, T] = {}
            try:
                with ProcessPoolExecutor(max_workers=self.jobs) as pool:
                    while pending or inflight:
                        while pending and len(inflight) < self.jobs * QUEUE_PER_JOB:
                            item = pending.popleft()
                            inflight[pool.submit(fn, item)] = item
                        done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                        for future in done:
                            result = future.result()
                            yield Outcome(inflight.pop(future), result)
            except BrokenProcessPool:
                for item in inflight.values():
                    yield _isolated(fn, item)


def _isolated(fn: Callable[[T], R], item: T) -> Outcome[T, R]:
    """One item in a process of its own, so that a crash is pinned on it."""
    with ProcessPoolExecutor(max_workers=1) as pool:
        try:
            return Outcome(item, pool.submit(fn, item).result())
        except BrokenProcessPool:
            return Outcome(item, crash=CRASH)
