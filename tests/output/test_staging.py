"""A run's files put in place whole: a reader of the report folder sees the previous run's report.json and report.html
or the new run's, never one of each, and a run that cannot write them (a full disk, a file too large) ends with one
line and exit 2, the previous pair left byte for byte. Checked with `tsqa check` in a process of its own, the write
failing for real: a size limit (RLIMIT_FSIZE) or a small tmpfs."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Run, finish

from qa.app.pipeline import open_output, run_check, write_outputs
from qa.report.model import Report
from qa.rules.spec import load_spec
from qa.source.fs import FolderSource
from qa.synth.sample import Sample, make_sample

SPEC = "totalsegmentator-v2"
SHAPE = (24, 20, 64)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """Two cases, one with a mismatched affine: a deep report with an evidence picture and figures."""
    return make_sample(tmp_path_factory.mktemp("faulty") / "release", load_spec(SPEC), cases=2,
                       faults=["GEOM_AFFINE_MISMATCH"], shape=SHAPE)


def check(root: Path, *options: str | Path, limit: int | None = None, cwd: Path | None = None) -> Run:
    """`tsqa check` deep on a subset, its files limited to `limit` bytes each when given (write() then fails with
    EFBIG, SIGXFSZ being ignored); no fact cache and no bytecode, which the limit would hit too."""
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = subprocess.Popen(
        [sys.executable, "-P", "-m", "qa", "check", str(root), "--spec", SPEC, "--subset", "--jobs", "1", "--quiet",
         "--fail-on", "never", "--no-cache", *map(str, options)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd=cwd,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, preexec_fn=None if limit is None else limited)
    return finish(process)


def pair(folder: Path) -> tuple[bytes, bytes]:
    return (folder / "report.json").read_bytes(), (folder / "report.html").read_bytes()


def assert_one_run(folder: Path) -> None:
    """report.json and report.html of one run: the page shows the start of the report beside it."""
    report = Report.model_validate_json((folder / "report.json").read_bytes())
    assert report.started.strftime("%Y-%m-%d %H:%M:%S") in (folder / "report.html").read_text(encoding="utf-8")


def assert_refused_write(run: Run, out: Path, reason: str) -> None:
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.splitlines() == [f"tsqa: error: cannot write the report into {out.resolve()}: {reason}; the "
                                       "previous report is unchanged"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tsqa-staging")]


def test_a_run_whose_page_cannot_be_written_leaves_the_previous_pair_as_it_was(faulty: Sample, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert check(faulty.root, "--out", out).returncode == 0
    before = pair(out)
    json_size, html_size = map(len, before)
    assert html_size > json_size * 1.2  # a limit between the two lets report.json be staged and stops the page
    failed = check(faulty.root, "--out", out, limit=(json_size + html_size) // 2)
    assert_refused_write(failed, out, "File too large")
    assert pair(out) == before
    assert_one_run(out)


def test_a_history_run_that_cannot_be_written_leaves_no_run_and_latest_json_unchanged(
    faulty: Sample, tmp_path: Path
) -> None:
    assert check(faulty.root, cwd=tmp_path).returncode == 0
    history = tmp_path / "reports" / SPEC / faulty.root.name
    [kept] = [p for p in history.iterdir() if p.is_dir()]
    latest = (history / "latest.json").read_bytes()
    json_size, html_size = map(len, pair(kept))
    failed = check(faulty.root, cwd=tmp_path, limit=(json_size + html_size) // 2)
    assert failed.returncode == 2 and "File too large; the previous report is unchanged" in failed.stderr
    assert len(failed.stderr.splitlines()) == 1 and "Traceback" not in failed.stderr
    assert [p.name for p in history.iterdir() if p.is_dir()] == [kept.name]
    assert (history / "latest.json").read_bytes() == latest


@contextlib.contextmanager
def tmpfs(folder: Path, size: int) -> Iterator[Path]:
    """A tmpfs of `size` bytes at `folder` (root only); the test is skipped where it cannot be mounted."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_exits_2_with_one_line_and_the_previous_report_byte_for_byte(
    faulty: Sample, tmp_path: Path
) -> None:
    assert check(faulty.root, "--out", tmp_path / "sized").returncode == 0
    size = sum(map(len, pair(tmp_path / "sized")))
    # room for one run's files, not for a second beside it
    with tmpfs(tmp_path / "disk", size * 3 // 2) as disk:
        out = disk / "out"
        assert check(faulty.root, "--out", out).returncode == 0
        before = pair(out)
        failed = check(faulty.root, "--out", out)
        assert_refused_write(failed, out, "No space left on device")
        assert pair(out) == before
        assert_one_run(out)


def test_a_run_replaces_the_folder_whole_and_keeps_what_tsqa_did_not_write(faulty: Sample, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "mine").mkdir(parents=True)
    (out / "mine" / "notes.txt").write_text("kept")
    (out / "junit.xml").write_text("<testsuites/>")
    (out / "latest").symlink_to("report.html")
    spec = load_spec(SPEC)
    report = run_check(faulty.root, spec, "test", subset=True)
    with open_output(out, faulty.root) as folder:
        before = os.stat(out).st_ino
        write_outputs(report, FolderSource(faulty.root), spec, folder)
        assert os.stat(out).st_ino != before and os.fstat(folder.fd).st_ino == os.stat(out).st_ino
    assert (out / "mine" / "notes.txt").read_text() == "kept" and (out / "junit.xml").read_text() == "<testsuites/>"
    assert os.readlink(out / "latest") == "report.html"
    assert {"report.json", "report.html", "evidence"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def hold_folder(folder: Path) -> subprocess.Popen:
    """A process that makes `folder` and holds its lock, as a run does with its staging folder, until it is killed."""
    script = ("import fcntl, os, sys, time; os.mkdir(sys.argv[1]); fd = os.open(sys.argv[1], os.O_RDONLY); "
              "fcntl.flock(fd, fcntl.LOCK_EX); print(flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"\n"
    return holder


def write_run(sample: Sample, out: Path) -> None:
    spec = load_spec(SPEC)
    report = run_check(sample.root, spec, "test", subset=True)
    with open_output(out, sample.root) as folder:
        write_outputs(report, FolderSource(sample.root), spec, folder)


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next_run(
        faulty: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qa.output.staging.ABANDONED_AFTER_S", 0.0)
    left = tmp_path / ".tsqa-staging-0badc0de"
    killed = hold_folder(left)
    killed.kill()
    killed.wait()
    write_run(faulty, tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_staging_folder_a_live_run_holds_is_left_alone(
        faulty: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qa.output.staging.ABANDONED_AFTER_S", 0.0)
    live = tmp_path / ".tsqa-staging-0badc0de"
    holder = hold_folder(live)
    try:
        write_run(faulty, tmp_path / "out")
        assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "out"]
    finally:
        holder.kill()
        holder.wait()
