"""Executors: every item has an outcome; a worker that dies costs only its own item, run once more; items start
within the budget; workers do not outlive the map."""

from __future__ import annotations

import time
from pathlib import Path

from support import alive, logged_run, meet, square_or_die, worker_pid

from qa.execute.pool import ATTEMPTS, PoolExecutor
from qa.execute.serial import SerialExecutor


def test_serial_executor_yields_results_in_order() -> None:
    assert [(o.item, o.result, o.crash) for o in SerialExecutor().map(square_or_die, [3, 1, 2])] == [
        (3, 9, None), (1, 1, None), (2, 4, None)]


def test_pool_yields_one_outcome_per_item() -> None:
    outcomes = list(PoolExecutor(2).map(square_or_die, list(range(10))))
    assert sorted((o.item, o.result) for o in outcomes) == [(i, i * i) for i in range(10)]


def test_a_killed_worker_costs_only_its_item() -> None:
    outcomes = {o.item: o for o in PoolExecutor(2).map(square_or_die, list(range(10, 20)))}
    assert sorted(outcomes) == list(range(10, 20))
    assert outcomes[13].result is None
    assert outcomes[13].crash == f"the worker process died {ATTEMPTS} times running it (killed by SIGKILL)"
    assert all(outcomes[i].result == i * i for i in outcomes if i != 13)


def test_one_job_runs_in_a_worker_process_too() -> None:
    [outcome] = PoolExecutor(1).map(square_or_die, [13])
    assert outcome.crash is not None  # the test process survived: the item ran elsewhere


def test_only_the_item_whose_worker_died_runs_again(tmp_path: Path) -> None:
    items = [(n, str(tmp_path)) for n in range(10, 18)]
    list(PoolExecutor(2).map(logged_run, items))
    runs = {n: len((tmp_path / f"{n}.log").read_text().split()) for n in range(10, 18)}
    assert runs == {n: ATTEMPTS if n == 13 else 1 for n in range(10, 18)}


def test_items_start_only_while_their_costs_fit_the_budget(tmp_path: Path) -> None:
    items = [(n, str(tmp_path)) for n in range(6)]
    outcomes = PoolExecutor(2, budget=10).map(logged_run, items, cost=lambda item: 6)
    spans = sorted((o.result[1], o.result[2]) for o in outcomes)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


def test_items_that_fit_together_run_together(tmp_path: Path) -> None:
    items = [(n, str(tmp_path)) for n in range(2)]
    outcomes = PoolExecutor(2, budget=10).map(meet, items, cost=lambda item: 5)
    assert [o.result for o in outcomes] == [True, True]


def test_an_item_costing_more_than_the_budget_runs_alone() -> None:
    outcomes = list(PoolExecutor(2, budget=10).map(square_or_die, [1, 2, 3], cost=lambda item: 50))
    assert sorted(o.result for o in outcomes) == [1, 4, 9]


def test_abandoning_the_map_kills_its_workers_at_once() -> None:
    outcomes = PoolExecutor(2).map(worker_pid, [0.0, 30.0, 30.0])
    first = next(outcomes)
    clock = time.monotonic()
    outcomes.close()
    assert time.monotonic() - clock < 2.0
    assert not alive(first.result)
