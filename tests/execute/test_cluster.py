"""The Dask executor on a real LocalCluster: every item has an outcome; a worker killed twice under an item costs only
that item; items start within the budget; abandoning the map cancels its tasks; clusters it cannot use are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import logged_run, meet, square_or_die, worker_pid

from qa.execute.cluster import ClusterError, DaskExecutor, dask_executor, local_workers
from qa.execute.pool import ATTEMPTS

pytestmark = pytest.mark.usefixtures("deadline")  # a task the cluster never ends fails its test


@pytest.fixture(scope="module")
def cluster() -> Iterator[DaskExecutor]:
    """A LocalCluster of two single-threaded worker processes, shared by this module's tests."""
    with dask_executor("local:2") as executor:
        yield executor


def test_dask_yields_one_outcome_per_item(cluster: DaskExecutor) -> None:
    outcomes = list(cluster.map(square_or_die, list(range(10))))
    assert sorted((o.item, o.result, o.crash) for o in outcomes) == [(i, i * i, None) for i in range(10)]


def test_a_local_cluster_has_the_asked_single_threaded_workers(cluster: DaskExecutor) -> None:
    assert sorted(cluster.workers().values()) == [1, 1]


def test_an_item_that_kills_its_worker_twice_is_a_crash_and_costs_no_other_item(cluster: DaskExecutor) -> None:
    outcomes = {o.item: o for o in cluster.map(square_or_die, list(range(10, 20)))}
    assert sorted(outcomes) == list(range(10, 20))
    assert outcomes[13].result is None
    assert outcomes[13].crash == f"the worker process died {ATTEMPTS} times running it (Dask workers lost)"
    assert all(outcomes[i].result == i * i and outcomes[i].crash is None for i in outcomes if i != 13)


def test_the_killed_item_ran_as_often_as_the_pool_runs_it(cluster: DaskExecutor, tmp_path: Path) -> None:
    list(cluster.map(logged_run, [(13, str(tmp_path))]))
    assert len((tmp_path / "13.log").read_text().split()) == ATTEMPTS


def test_items_start_only_while_their_costs_fit_the_budget(cluster: DaskExecutor, tmp_path: Path) -> None:
    items = [(n, str(tmp_path)) for n in range(6)]
    outcomes = DaskExecutor(cluster.client, budget=10).map(logged_run, items, cost=lambda item: 6)
    spans = sorted((o.result[1], o.result[2]) for o in outcomes)
    assert len(spans) == 6
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


def test_items_that_fit_together_run_together(cluster: DaskExecutor, tmp_path: Path) -> None:
    items = [(n, str(tmp_path)) for n in range(2)]
    outcomes = DaskExecutor(cluster.client, budget=10).map(meet, items, cost=lambda item: 5)
    assert [o.result for o in outcomes] == [True, True]


def test_an_item_costing_more_than_the_budget_runs_alone(cluster: DaskExecutor) -> None:
    outcomes = DaskExecutor(cluster.client, budget=10).map(square_or_die, [1, 2, 3], cost=lambda item: 50)
    assert sorted(o.result for o in outcomes) == [1, 4, 9]


def test_no_more_items_run_at_once_than_the_cluster_has_threads(cluster: DaskExecutor, tmp_path: Path) -> None:
    items = [(n, str(tmp_path)) for n in range(6)]
    spans = sorted((o.result[1], o.result[2]) for o in cluster.map(logged_run, items))
    assert max(sum(start <= moment < end for start, end in spans) for moment, _ in spans) == 2


def test_abandoning_the_map_cancels_its_tasks(cluster: DaskExecutor) -> None:
    outcomes = cluster.map(worker_pid, [0.0, 30.0, 30.0])
    next(outcomes)
    outcomes.close()
    deadline = time.monotonic() + 5
    while any(cluster.client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(cluster.client.processing().values())


@pytest.mark.parametrize("scheduler", ["local:0", "local:two", "local:"])
def test_a_local_cluster_needs_a_positive_number_of_workers(scheduler: str) -> None:
    with pytest.raises(ClusterError, match="local:N needs N"):
        local_workers(scheduler)


def test_an_unreachable_scheduler_is_refused_in_one_line() -> None:
    with pytest.raises(ClusterError, match=r"^cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9: ") as error:
        with dask_executor("tcp://127.0.0.1:9"):
            pass
    assert "\n" not in str(error.value)


def test_a_missing_scheduler_file_is_refused_at_once(tmp_path: Path) -> None:
    clock = time.monotonic()
    with pytest.raises(ClusterError, match="cannot read the Dask scheduler file"):
        with dask_executor(str(tmp_path / "scheduler.json")):
            pass
    assert time.monotonic() - clock < 1.0
