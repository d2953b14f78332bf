"""What a scan's worker processes run, and starting their fork server ahead of need."""

from __future__ import annotations

from qa.execute.pool import start_fork_server, stop_fork_server

# Imported once by the fork server, so that each worker starts without importing them again.
WORKER_MODULES = ("qa.scan.case", "qa.scan.stamp", "qa.source.fs", "qa.source.zip")


def prepare_workers() -> None:
    """Start the workers' fork server now: its imports then overlap with this process's own work."""
    start_fork_server(WORKER_MODULES)


def stop_workers() -> None:
    """Stop the workers' fork server, waiting for it: the run leaves no process behind."""
    stop_fork_server()
