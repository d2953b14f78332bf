"""Peak resident memory of a process group's processes, watched from outside through /proc while they run (Linux):
for the benchmarks, and for the tests of memory and of process groups (tests/support.py), which share this one reader.

tsqa's workers start from a fork server, which multiprocessing starts by fork and exec: Linux carries ru_maxrss across
exec, so RUSAGE_CHILDREN would report the launcher's memory at that moment for every worker. VmHWM does not. A process
is sampled until it exits, so the last few milliseconds of its peak may be missed; a peak that builds up is not."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


def group_statuses(pgid: int) -> dict[int, dict[str, str]]:
    """The status lines of each live process of a process group, each file read once: a pid read twice may have been
    reused by another process in between. A zombie (dead, not reaped yet) is not live."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            lines = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if lines.get("NSpgid", "").split()[-1:] == [str(pgid)] and not lines.get("State", "").strip().startswith("Z"):
            found[int(entry.name)] = lines
    return found


def _kib(status: dict[str, str], key: str) -> int:
    return int(status.get(key, "0 kB").split()[0])


class PeakSampler:
    """Watches a process group while it runs: every few milliseconds, the peak resident memory (VmHWM, KiB) of each of
    its processes by pid, and the most they held at one moment (the largest sum of their VmRSS over the samples)."""

    def __init__(self, pgid: int, every: float = 0.005) -> None:
        self.pgid, self.every = pgid, every
        self.peaks: dict[int, int] = {}
        self.together_kib = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.is_set():
            statuses = group_statuses(self.pgid)
            for pid, status in statuses.items():
                # VmHWM only grows, except across exec, which starts a process afresh: the last value is its peak. (A
                # child caught between fork and exec would otherwise keep its parent's peak.) A process that is exiting
                # has given up its memory and shows no VmHWM: its last value stands.
                if "VmHWM" in status:
                    self.peaks[pid] = _kib(status, "VmHWM")
            self.together_kib = max(self.together_kib, sum(_kib(status, "VmRSS") for status in statuses.values()))
            time.sleep(self.every)

    def largest_mib(self) -> float:
        """The largest peak of any one process, in MiB."""
        return max(self.peaks.values(), default=0) / 1024


@dataclass
class Watched:
    """A finished command, its pid, and what watching its process group found."""

    done: subprocess.CompletedProcess
    pid: int
    sampler: PeakSampler

    @property
    def main_mib(self) -> float:
        return self.sampler.peaks.get(self.pid, 0) / 1024

    @property
    def largest_other_mib(self) -> float:
        """The largest peak among the command's other processes (its workers), in MiB."""
        return max((kib for pid, kib in self.sampler.peaks.items() if pid != self.pid), default=0) / 1024


def run_watched(command: list[str], every: float = 0.005) -> Watched:
    """Runs the command in a process group of its own and samples the memory of each of its processes until it
    exits."""
    run = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakSampler(run.pid, every) as sampler:
        stdout, stderr = run.communicate()
    return Watched(subprocess.CompletedProcess(command, run.returncode, stdout, stderr), run.pid, sampler)
