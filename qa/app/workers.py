"""What a scan's worker processes run, and starting their fork server ahead of need."""

from __future__ import annotations

from qa import __version__
from qa.execute.pool import start_fork_server, stop_fork_server
from qa.scan.facts import FACTS_VERSION
from qa.source.base import ReleaseSource

# Imported once by the fork server, so that each worker starts without importing them again.
WORKER_MODULES = ("qa.scan.case", "qa.scan.stamp", "qa.source.fs", "qa.source.zip")


def prepare_workers() -> None:
    """Start the workers' fork server now: its imports then overlap with this process's own work."""
    start_fork_server(WORKER_MODULES)


def stop_workers() -> None:
    """Stop the workers' fork server, waiting for it: the run leaves no process behind."""
    stop_fork_server()


def worker_version() -> str:
    """The tsqa a process runs, as far as its facts go: a cluster's workers must run the same."""
    return f"{__version__} (facts version {FACTS_VERSION})"


def unfit_worker(source: ReleaseSource, version: str, seen: bool) -> str | None:
    """Why this process cannot scan `source` for a run of tsqa `version` (a worker_version) whose own process `seen`
    entries at the release's root, or None: what each worker of a cluster is asked before a run."""
    if worker_version() != version:
        return f"runs tsqa {worker_version()}, not {version}: install the same tsqa on every worker"
    try:
        entries = source.entries("")
    except Exception as exc:  # a source that cannot even open its release there (an archive not found)
        return f"cannot read the release at {source.location}: {exc}"
    if seen and not entries:
        return f"finds nothing at {source.location}: the workers need the release at the same path (shared storage)"
    return None
