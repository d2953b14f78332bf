"""Output paths no check can write, given to `tsqa check` in a process of its own: refused before the scan with exit 2
and one line naming the option, no traceback, no report written and no folder made; a CI file that cannot be written
after the scan is one line and exit 2 too."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import finish, run_tsqa, start_tsqa

from qa.rules.spec import load_spec
from qa.synth.sample import Sample, make_sample

SPEC = "totalsegmentator-v2"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return make_sample(tmp_path_factory.mktemp("clean") / "release", load_spec(SPEC), cases=2, shape=(24, 20, 64))


def loop(path: Path) -> Path:
    path.symlink_to(path.name)
    return path


def plain_file(path: Path) -> Path:
    path.write_text("")
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


# each case: the option, how to make its value in a folder, and what the line says
CASES: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "junit naming a folder": ("--junit", lambda d: d, "is a folder, not a file"),
    "junit a fifo": ("--junit", lambda d: fifo(d / "junit.xml"), "is not a regular file"),
    "junit a link loop": ("--junit", lambda d: loop(d / "junit.xml"), "is a loop of symbolic links"),
    "junit in a missing folder": ("--junit", lambda d: d / "ci" / "junit.xml", "does not exist"),
    "sarif under a regular file": ("--sarif", lambda d: plain_file(d / "file") / "tsqa.sarif", "which is not a folder"),
    "sarif in /proc": ("--sarif", lambda d: Path("/proc/self/tsqa.sarif"), "is in /proc"),
    "write-baseline under a link loop": ("--write-baseline", lambda d: loop(d / "qa") / "b.json",
                                         "is a loop of symbolic links"),
    "write-baseline in /dev": ("--write-baseline", lambda d: Path("/dev/tsqa-baseline.json"), "is in /dev"),
    "out a link loop": ("--out", lambda d: loop(d / "report"), "is a loop of symbolic links"),
    "out in a missing folder": ("--out", lambda d: d / "build" / "qa", "does not exist"),
    "out under a regular file": ("--out", lambda d: plain_file(d / "file") / "qa", "which is not a folder"),
    "out in /proc": ("--out", lambda d: Path("/proc/self/qa"), "is in /proc"),
    "cache a file": ("--cache", lambda d: plain_file(d / "cache"), "exists and is not a folder"),
    "cache in a missing folder": ("--cache", lambda d: d / "cold" / "cache", "does not exist"),
    "TSQA_CACHE_DIR a link loop": ("TSQA_CACHE_DIR", lambda d: loop(d / "cache"), "is a loop of symbolic links"),
    "TSQA_CACHE_DIR under a regular file": ("TSQA_CACHE_DIR", lambda d: plain_file(d / "file") / "cache",
                                            "which is not a folder"),
}


@pytest.mark.parametrize("case", CASES)
def test_an_output_path_no_check_can_write_is_refused_before_the_scan(
    clean: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    option, make, says = CASES[case]
    target = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    given: list[str | Path] = [] if option == "TSQA_CACHE_DIR" else [option, target]
    if option == "TSQA_CACHE_DIR":
        monkeypatch.setenv("TSQA_CACHE_DIR", str(target))
    out = [] if option == "--out" else ["--out", tmp_path / "report"]
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    run = run_tsqa("check", clean.root, "--spec", SPEC, "--subset", "--jobs", "1", *out, *given)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    # one line, and not the 'tsqa: spec' line printed when the scan starts
    [line] = run.stderr.splitlines()
    assert line.startswith(f"tsqa: error: {option} ") and says in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no report, no folder made
    assert time.monotonic() - started < 30


def test_a_history_folder_that_is_a_link_loop_is_refused_before_the_scan(
    clean: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop(tmp_path / "reports")
    monkeypatch.chdir(tmp_path)
    run = run_tsqa("check", clean.root, "--spec", SPEC, "--subset", "--jobs", "1")
    assert run.returncode == 2 and run.stderr.splitlines() == [
        "tsqa: error: the reports folder reports is a loop of symbolic links"]


def test_a_junit_file_in_the_out_folder_the_run_makes_is_written(clean: Sample, tmp_path: Path) -> None:
    out = tmp_path / "qa-report"
    run = run_tsqa("check", clean.root, "--spec", SPEC, "--subset", "--jobs", "1", "--quiet", "--out", out,
                   "--junit", out / "junit.xml")
    assert run.returncode == 0, run.stderr
    assert {"junit.xml", "report.json", "report.html"} <= {p.name for p in out.iterdir()}


def test_a_junit_folder_gone_during_the_scan_is_one_line_and_exit_2(clean: Sample, tmp_path: Path) -> None:
    ci = tmp_path / "ci"
    ci.mkdir()
    process = start_tsqa("check", clean.root, "--spec", SPEC, "--subset", "--jobs", "1", "--mode", "deep",
                         "--out", tmp_path / "report", "--junit", ci / "junit.xml")
    assert process.stderr is not None
    first = process.stderr.readline().decode()
    assert first.startswith("tsqa: spec"), first  # printed once the outputs are checked, as the scan starts
    ci.rmdir()
    plain_file(ci)
    run = finish(process)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.splitlines()[-1] == f"tsqa: error: cannot write --junit {ci / 'junit.xml'}: Not a directory"
    assert (tmp_path / "report" / "report.json").is_file()


@pytest.mark.parametrize(("command", "says"), [
    ("baseline", "tsqa: error: --out {d} is a folder, not a file"),
    ("render", "cannot be made: its folder {d}/missing does not exist"),
])
def test_baseline_and_render_refuse_an_output_path_they_cannot_write(
    clean: Sample, tmp_path: Path, command: str, says: str
) -> None:
    report = tmp_path / "report"
    assert run_tsqa("check", clean.root, "--spec", SPEC, "--subset", "--jobs", "1", "--quiet", "--mode", "quick",
                    "--out", report).returncode == 0
    target = tmp_path if command == "baseline" else tmp_path / "missing" / "page"
    run = run_tsqa(command, report / "report.json", "--out", target)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    [line] = run.stderr.splitlines()
    assert says.format(d=tmp_path) in line and not (tmp_path / "missing").exists()
