"""A check on a Dask cluster: its executor, whose workers are asked before any scan whether they can do the scans."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from qa.app.workers import WORKER_MODULES, unfit_worker, worker_version
from qa.execute.cluster import ClusterError, DaskExecutor, check_scheduler, dask_executor
from qa.source.base import ReleaseSource

__all__ = ["ask_workers", "check_scheduler", "cluster_executor"]


@contextlib.contextmanager
def cluster_executor(scheduler: str, source: ReleaseSource, max_memory: int, quiet: bool) -> Iterator[DaskExecutor]:
    """The executor of the cluster `scheduler` names (see dask_executor), the cases in flight on all its workers within
    `max_memory`; ClusterError, before any scan, when it cannot be reached or a worker runs another tsqa or cannot
    read the release where this process reads it. Unless `quiet`, one line on stderr names the cluster's workers."""
    with dask_executor(scheduler, max_memory, preload=WORKER_MODULES) as executor:
        ask_workers(executor, source)
        if not quiet:
            workers = executor.workers()
            print(f"tsqa: Dask cluster {scheduler}: {len(workers)} workers, {sum(workers.values())} threads",
                  file=sys.stderr)
        yield executor


def ask_workers(executor: DaskExecutor, source: ReleaseSource) -> None:
    """ClusterError unless every worker of the cluster runs this tsqa and reads the release where this process does."""
    try:
        answers = executor.on_workers(unfit_worker, source, worker_version(), bool(source.entries("")))
    except Exception as exc:  # a worker that cannot even unpickle the question: no tsqa there, or a broken one
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise ClusterError(f"the Dask workers cannot run tsqa: {type(exc).__name__}: {reason}") from None
    for address, problem in sorted(answers.items()):
        if problem is not None:
            raise ClusterError(f"Dask worker {address} {problem}")
