"""A progress bar on stderr for long scans (cases and files done, rate, time left); silent off a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[int, int, int], None]  # cases done, cases in all, files done
ChecksumProgress = Callable[[int, int], None]  # bytes of the archive hashed, bytes in all


class _Advance:
    """The bar's updaters: called with the cases' progress; `checksum` takes the archive's hashing progress, shown on
    a line of its own from its first call."""

    def __init__(self, cases: Progress, checksum: ChecksumProgress) -> None:
        self.cases, self.checksum = cases, checksum

    def __call__(self, done: int, total: int, files: int) -> None:
        self.cases(done, total, files)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[_Advance | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        TaskID,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
               TaskProgressColumn(), TextColumn("{task.fields[detail]}"), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Bar(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("cases", total=None, count="", detail="", rate="")

        def elapsed(task_id: TaskID) -> float:
            return next(t for t in bar.tasks if t.id == task_id).elapsed or 0.0

        def advance(done: int, total: int, files: int) -> None:
            seconds = elapsed(task)
            rate = f"{files / seconds:,.0f} files/s" if seconds > 0 else ""
            bar.update(task, completed=done, total=total, count=f"{done}/{total}", detail=f"{files:,} files",
                       rate=rate)

        hashing: list[TaskID] = []

        def checksum(done: int, total: int) -> None:
            if not hashing:
                hashing.append(bar.add_task("md5", total=total, count="", detail="", rate=""))
            seconds = elapsed(hashing[0])
            rate = f"{done / seconds / 1e6:,.0f} MB/s" if seconds > 0 else ""
            bar.update(hashing[0], completed=done, total=total, count=f"{done / 1e9:.1f}/{total / 1e9:.1f} GB",
                       rate=rate)

        yield _Advance(advance, checksum)
