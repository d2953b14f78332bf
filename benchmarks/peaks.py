"""Peak resident memory of a command's processes, watched from outside through /proc while it runs (Linux).

tsqa's workers start from a fork server, which multiprocessing starts by fork and exec: Linux carries ru_maxrss across
exec, so RUSAGE_CHILDREN would report the launcher's memory at that moment for every worker. VmHWM does not. A process
is sampled until it exits, so the last few milliseconds of its peak may be missed; a peak that builds up is not."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def _statuses(pgid: int) -> dict[int, dict[str, int]]:
    """The memory lines of each process of the group, each read at once with the group it is in (a pid read twice
    may have been reused by another process in between)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            lines = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if lines.get("NSpgid", "").split()[-1:] == [str(pgid)] and "VmHWM" in lines:
            found[int(entry.name)] = {key: int(lines[key].split()[0]) for key in ("VmHWM", "VmRSS")}
    return found


@dataclass
class Watched:
    """A finished command, its pid, each of its processes' peak resident memory (VmHWM, KiB) by pid, and the most
    its processes held at one moment (the largest sum of their VmRSS over the samples)."""

    done: subprocess.CompletedProcess
    pid: int
    peaks: dict[int, int] = field(default_factory=dict)
    together_kib: int = 0

    @property
    def main_mib(self) -> float:
        return self.peaks.get(self.pid, 0) / 1024

    @property
    def largest_other_mib(self) -> float:
        """The largest peak among the command's other processes (its workers), in MiB."""
        return max((kib for pid, kib in self.peaks.items() if pid != self.pid), default=0) / 1024


def run_watched(command: list[str], every: float = 0.005) -> Watched:
    """Runs the command in a process group of its own and samples the memory of each of its processes until it
    exits."""
    run = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched = Watched(subprocess.CompletedProcess(command, 0), run.pid)
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            statuses = _statuses(run.pid)
            for pid, status in statuses.items():
                # VmHWM only grows, except across exec, which starts a process afresh: the last value is its peak. (A
                # child caught between fork and exec would otherwise keep its parent's peak.)
                watched.peaks[pid] = status["VmHWM"]
            watched.together_kib = max(watched.together_kib, sum(status["VmRSS"] for status in statuses.values()))
            time.sleep(every)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, stderr = run.communicate()
    finished.set()
    watcher.join()
    watched.done = subprocess.CompletedProcess(command, run.returncode, stdout, stderr)
    return watched
