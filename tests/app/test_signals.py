"""Stopping a check: SIGINT, SIGTERM and SIGKILL in the middle of a scan with two workers leave no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import parent_of, process_group

from qa.rules.spec import load_spec
from qa.synth.sample import make_sample

CASES = 150  # hard links to one case of 160^3 voxels: about 8 s of deep scanning with two workers
STOP_SECONDS = 3.0  # the workers stop within milliseconds; the rest is the main process's own exit
SCANNING_SECONDS = 0.5  # after both workers have started, by when they are scanning


def workers(main: int) -> list[int]:
    """The run's worker processes: the children of its fork server, grandchildren of the main process."""
    return [pid for pid in process_group(main) if pid != main and parent_of(pid) != main]


def link_copies(root: Path, case: str, count: int) -> None:
    """`count - 1` more cases in `root`, made of hard links to the files of `case`, each listed in meta.csv."""
    lines = (root / "meta.csv").read_bytes().split(b"\n")
    for number in range(1, count):
        copy = f"s{number:04d}"
        for path in (root / case).rglob("*"):
            target = root / copy / path.relative_to(root / case)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
        lines.insert(2, lines[1].replace(case.encode(), copy.encode()))
    (root / "meta.csv").write_bytes(b"\n".join(lines))


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sample = make_sample(tmp_path_factory.mktemp("signals") / "release", load_spec("totalsegmentator-v2"), cases=1,
                         shape=(160, 160, 160))
    link_copies(sample.root, sample.cases[0], CASES)
    return sample.root


@dataclass
class Stopped:
    returncode: int
    stderr: str
    seconds: float  # from the signal until no process of the run's process group was left


def stop_mid_scan(release: Path, out: Path, signum: int, whole_group: bool = False) -> Stopped:
    """Start `tsqa check --jobs 2` in a process group of its own, wait until both workers scan, send the signal (to the
    main process, or to the whole group as a terminal's Ctrl-C does) and time how long until the group is gone."""
    command = [sys.executable, "-P", "-m", "qa", "check", str(release), "--spec", "totalsegmentator-v2", "--subset",
               "--jobs", "2", "--quiet", "--out", str(out)]
    stderr = out.with_name("stderr.txt")
    with stderr.open("w") as log:  # a file, not a pipe: a worker left alive cannot hold the test up
        run = subprocess.Popen(command, start_new_session=True, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while len(workers(run.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(SCANNING_SECONDS)
        assert run.poll() is None and not (out / "report.json").exists(), "the scan ended before the signal"
        clock = time.monotonic()
        (os.killpg if whole_group else os.kill)(run.pid, signum)
        while process_group(run.pid) and time.monotonic() - clock < 60:
            time.sleep(0.005)
        seconds = time.monotonic() - clock
        return Stopped(run.wait(timeout=10), stderr.read_text(), seconds)
    finally:
        for pid in process_group(run.pid):
            os.kill(pid, signal.SIGKILL)
        run.wait()


@pytest.fixture
def stopped(release: Path, tmp_path: Path) -> Iterator:
    yield lambda signum, **options: stop_mid_scan(release, tmp_path / "out", signum, **options)


def test_sigterm_stops_the_workers_and_exits_143_in_one_line(stopped) -> None:
    result = stopped(signal.SIGTERM)
    assert result.seconds < STOP_SECONDS
    assert (result.returncode, result.stderr) == (143, "tsqa: terminated (SIGTERM)\n")


def test_ctrl_c_stops_the_workers_and_exits_130_in_one_line(stopped) -> None:
    result = stopped(signal.SIGINT, whole_group=True)
    assert result.seconds < STOP_SECONDS
    assert (result.returncode, result.stderr) == (130, "tsqa: interrupted (SIGINT)\n")


def test_sigint_to_the_main_process_alone_stops_the_workers_too(stopped) -> None:
    result = stopped(signal.SIGINT)
    assert result.seconds < STOP_SECONDS
    assert result.returncode == 130


def test_workers_die_with_a_main_process_killed_by_sigkill(stopped) -> None:
    result = stopped(signal.SIGKILL)
    assert result.seconds < STOP_SECONDS
    assert (result.returncode, result.stderr) == (-signal.SIGKILL, "")
