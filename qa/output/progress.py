"""A progress bar on stderr for long scans (cases and files done, rate, time left); silent off a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[int, int, int], None]  # cases done, cases in all, files done


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    columns = (TextColumn("[bold]cases"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[files]:,} files"), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Bar(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("scan", total=None, files=0, rate="")

        def advance(done: int, total: int, files: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{files / elapsed:,.0f} files/s" if elapsed > 0 else ""
            bar.update(task, completed=done, total=total, files=files, rate=rate)

        yield advance
