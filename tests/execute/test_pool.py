"""Executors: every item has an outcome; a worker that dies costs only its own item."""

from __future__ import annotations

import multiprocessing
import os
import signal

from qa.execute.pool import CRASH, PoolExecutor
from qa.execute.serial import SerialExecutor


def square_or_die(item: int) -> int:
    """Squares its item; item 13 kills the worker process running it (only in a worker, never the test itself)."""
    if item == 13 and multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item


def test_serial_executor_yields_results_in_order() -> None:
    assert [(o.item, o.result, o.crash) for o in SerialExecutor().map(square_or_die, [3, 1, 2])] == [
        (3, 9, None), (1, 1, None), (2, 4, None)]


def test_pool_yields_one_outcome_per_item() -> None:
    outcomes = list(PoolExecutor(2).map(square_or_die, list(range(10))))
    assert sorted((o.item, o.result) for o in outcomes) == [(i, i * i) for i in range(10)]


def test_a_killed_worker_costs_only_its_item() -> None:
    outcomes = {o.item: o for o in PoolExecutor(2).map(square_or_die, list(range(10, 20)))}
    assert sorted(outcomes) == list(range(10, 20))
    assert (outcomes[13].result, outcomes[13].crash) == (None, CRASH)
    assert all(outcomes[i].result == i * i for i in outcomes if i != 13)
