"""The Dask executor: items run as tasks of a Dask distributed cluster (a scheduler's address, its scheduler file, or a
LocalCluster started on this machine), admitted within the budget from here; a task whose worker died twice is a
crash, as in the process pool."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Any

import dask
from distributed import Client, Future, KilledWorker, LocalCluster, as_completed
from distributed.comm.addressing import parse_address, parse_host_port

from qa.execute.base import Cost, Executor, ExecutorError, Outcome, R, T, TaskQueue
from qa.execute.pool import ATTEMPTS

CONNECT_SECONDS = 5
DEFAULT_PORT = 8786  # a Dask scheduler's


class ClusterError(ExecutorError):
    """The cluster cannot be used (its scheduler not reached, its workers unfit, the scheduler lost): one line."""


# A scheduler's address as Dask writes it: a protocol, a host name or IP address (IPv6 in brackets), maybe a port.
ADDRESS = re.compile(r"(?:tcp|tls|ws|wss|ucx)://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>[0-9]{1,5}))?")


def local_workers(scheduler: str) -> int | None:
    """N of `local:N`, the number of workers of a LocalCluster to start; None for any other scheduler."""
    if not scheduler.startswith("local:"):
        return None
    match = re.fullmatch(r"local:([1-9][0-9]{0,3})", scheduler)
    if match is None:
        raise ClusterError(f"--scheduler {scheduler}: local:N needs N, the number of workers, from 1 to 9999")
    return int(match[1])


def check_scheduler(scheduler: str) -> None:
    """ClusterError unless `scheduler` names a cluster the way dask_executor takes it: local:N, a scheduler file (.json)
    or an address like tcp://host:8786."""
    if local_workers(scheduler) is not None or scheduler.endswith(".json"):
        return
    match = ADDRESS.fullmatch(scheduler)
    if match is None or int(match["port"] or 0) > 65535:
        raise ClusterError(f"--scheduler {scheduler!r} is not a Dask scheduler address like tcp://host:8786, a "
                           "scheduler file (.json) or local:N")


class DaskExecutor(Executor):
    """Items run as tasks of the cluster a client is connected to, no more at once than the cluster has worker
    threads, so that a worker mostly holds only the task it runs, and the cases in flight stay within the budget, the
    cluster's workers together, as the pool's do. The scheduler decides where each task runs: while workers restart
    after a death it can queue a task on a busy worker, and if that worker dies the queued task is suspect too.

    The scheduler runs a task whose worker died once more, and gives it up as KilledWorker when the worker running
    it dies again: ATTEMPTS, when its `distributed.scheduler.allowed-failures` is ATTEMPTS - 1, as it is set for a
    LocalCluster (a scheduler started elsewhere keeps its own setting, 3 by default)."""

    def __init__(self, client: Client, budget: int | None = None) -> None:
        self.client, self.budget = client, budget

    def map(self, fn: Callable[[T], R], items: Iterable[T], cost: Cost | None = None) -> Iterator[Outcome[T, R]]:
        queue = TaskQueue(items, cost)
        running: dict[Future, tuple[T, int]] = {}
        done = as_completed(loop=self.client.loop)
        held = 0
        try:
            while True:
                held = self._submit(fn, queue, running, done, held)
                if not running:
                    return
                future = next(done)
                item, item_cost = running.pop(future)
                held -= item_cost
                yield _outcome(item, future)
        finally:
            if running:  # interrupted or abandoned: the scans in flight are not wanted any more
                with contextlib.suppress(Exception):
                    self.client.cancel(list(running), force=True)

    def _submit(self, fn: Callable[[T], R], queue: TaskQueue, running: dict[Future, tuple[T, int]], done: as_completed,
                held: int) -> int:
        """Submits items while a worker thread is free for each and they fit the budget; the new total of costs."""
        threads = max(1, sum(self.workers().values()))  # asked each time: workers die, restart, join and leave
        while len(running) < threads and (head := queue.peek()) is not None:
            if running and self.budget is not None and held + head.cost > self.budget:
                break
            task = queue.pop()
            future = self.client.submit(fn, task.item, pure=False)
            running[future] = (task.item, task.cost)
            done.add(future)
            held += task.cost
        return held

    def workers(self) -> dict[str, int]:
        """The cluster's workers now: each one's address and number of threads."""
        return self.client.nthreads()

    def on_workers(self, fn: Callable[..., R], *args: Any) -> dict[str, R]:
        """`fn(*args)` run now on every worker of the cluster, by worker address."""
        return self.client.run(fn, *args)


def _outcome(item: T, future: Future) -> Outcome:
    """What became of an item, its future released: a result kept by the cluster after it was fetched would be computed
    again if its worker died."""
    try:
        return _read(item, future)
    finally:
        future.release()


def _read(item: T, future: Future) -> Outcome:
    """The item's result, fetched from the worker that holds it; a result lost with its worker before it was fetched is
    computed again meanwhile, so the future's state is not trusted before fetching."""
    try:
        return Outcome(item, future.result())
    except CancelledError:
        raise ClusterError("the Dask scheduler cancelled the scans in flight: it was lost or restarted") from None
    except KilledWorker as error:
        return Outcome(item, crash=f"the worker process died {error.allowed_failures + 1} times running it (Dask "
                                   "workers lost)")
    except Exception as error:  # what the function raised in the worker, or could not be sent back
        return Outcome(item, crash=f"the worker raised {type(error).__name__}: {error}")


@contextlib.contextmanager
def dask_executor(scheduler: str, budget: int | None = None, preload: Sequence[str] = ()) -> Iterator[DaskExecutor]:
    """An executor on the cluster named by `scheduler`: `local:N` (a LocalCluster of N single-threaded worker processes
    on this machine, which import the `preload` modules as they start; shut down on leaving), a scheduler file (JSON,
    as `dask scheduler --scheduler-file` writes it), or a scheduler's address (tcp://host:8786). ClusterError when it
    cannot be reached."""
    workers = local_workers(scheduler)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet())
        stack.enter_context(dask.config.set({"distributed.scheduler.allowed-failures": ATTEMPTS - 1}))
        if workers is not None:
            client = stack.enter_context(_local_cluster(workers, preload))
        else:
            client = stack.enter_context(_connect(scheduler))
            try:
                client.wait_for_workers(1, timeout=CONNECT_SECONDS)
            except TimeoutError:
                raise ClusterError(f"the Dask scheduler at {scheduler} has no workers (none joined within "
                                   f"{CONNECT_SECONDS} s)") from None
        yield DaskExecutor(client, budget)


@contextlib.contextmanager
def _local_cluster(workers: int, preload: Sequence[str]) -> Iterator[Client]:
    """A client of a LocalCluster of `workers` single-threaded worker processes, closed on leaving; each worker process
    runs this module's dask_setup as it starts, a worker that replaces a dead one too. Left by an exception (an
    interrupted run), the worker processes are killed first: closing waits for the scans they are running."""
    # the scheduler serves HTTP whatever its dashboard: on any free port of this machine, not on 8787 or its warning
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL, preload=[__name__, *preload])
    # a nanny whose worker process died restarts it, but a nanny can close too (its worker lost while it restarted):
    # the cluster then starts another, so that it keeps its workers however many die
    cluster.adapt(minimum=workers, maximum=workers)
    with cluster, Client(cluster) as client:
        try:
            yield client
        except BaseException:
            for nanny in list(cluster.workers.values()):
                with contextlib.suppress(TypeError, ProcessLookupError):  # TypeError: no process (pid None)
                    os.kill(nanny.pid, signal.SIGKILL)
            raise


def dask_setup(worker: object) -> None:
    """Run by each worker process of a LocalCluster as it starts (a Dask preload): SIGINT ignored, since Ctrl-C reaches
    the whole process group and only the main process acts on it, shutting the cluster down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _connect(scheduler: str) -> Client:
    address = _address_in(Path(scheduler)) if scheduler.endswith(".json") else scheduler
    try:
        _probe(address)
        return Client(address, timeout=CONNECT_SECONDS)
    except (OSError, ValueError, TypeError) as exc:  # TimeoutError is an OSError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {reason}") from None


def _probe(address: str) -> None:
    """OSError at once when nothing listens at a TCP address: Dask's client would try again until its timeout."""
    protocol, location = parse_address(address)
    if protocol in ("tcp", "tls", "ws", "wss"):
        with socket.create_connection(parse_host_port(location, default_port=DEFAULT_PORT), timeout=CONNECT_SECONDS):
            pass


def _address_in(file: Path) -> str:
    """The scheduler's address in its scheduler file, read here: Dask's client would wait for a missing one forever."""
    try:
        address = json.loads(file.read_text())["address"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClusterError(f"cannot read the Dask scheduler file {file}: {exc}") from None
    if not isinstance(address, str):
        raise ClusterError(f"the Dask scheduler file {file} has no address")
    return address


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Dask's log lines kept off the console while tsqa owns it (its progress bar, its one-line errors): what they
    tell (a lost worker, a task given up) reaches the report as the case's outcome."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
