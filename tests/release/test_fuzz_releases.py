"""Fuzzing whole releases: a small sample broken in random ways (names of any bytes, markup and escape sequences,
FIFOs, links that loop, dangle or leave the release, truncated and flipped files, odd meta.csv ids, renamed cases),
checked with `tsqa check`. Every run must end, in time, with report.json and report.html, a report that reads back
as the Report model, findings whose text is safe to show, the exit code its verdict says, and the release untouched."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.app.cli import main
from qa.report.model import Report
from qa.rules.spec import load_spec
from qa.rules.text import is_safe
from qa.synth.sample import Sample, make_sample

SPEC = "totalsegmentator-v2"
SHAPE = (12, 10, 16)
RUN_SECONDS = 60
FUZZ = settings(max_examples=30, deadline=timedelta(seconds=RUN_SECONDS), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

FOLDERS = ["", "s0000", "s0001", "s0001/segmentations"]
TARGETS = ["meta.csv", "s0000/ct.nii.gz", "s0001/segmentations/liver.nii.gz", "s0001/segmentations/skull.nii.gz",
           "s0001/segmentations", "s0000"]
FILES = [t for t in TARGETS if "." in t]
ODD_NAMES = [b"s0002", b"s0001\n", b"s\xd9\xa0\xd9\xa0\xd9\xa0\xd9\xa3", b"[red]", b"\x1b[2J", b"meta.csv",
             b"ct.nii.gz", b"liver.nii.gz", b"._liver.nii.gz", b"notes_\xe9.txt", b"\xff\xfe.nii.gz", b" ", b"-"]
LINKS = ["loop", "dangling", "outside file", "outside fifo", "outside folder", "parent folder", "inside file"]
ODD_IDS = ["s0000[/red]", "s0000\x1b[2J", "s0000\n", "s\u0660\u0660\u0660\u0663", '"s0000;x"', "\ud800"]


def _file_name(raw: bytes) -> bytes:
    """Any bytes a file name can hold: no '/' or NUL, and not '.' or '..'."""
    name = raw.replace(b"/", b"_").replace(b"\0", b"_")
    return b"_" + name if name in (b".", b"..") else name


names = st.one_of(st.sampled_from(ODD_NAMES), st.binary(min_size=1, max_size=12).map(_file_name))
contents = st.one_of(st.sampled_from([b"", b"\x1f\x8b", b"\x1f\x8b\x08\x00" + bytes(20)]), st.binary(max_size=600))
operations = st.one_of(
    st.tuples(st.just("file"), st.sampled_from(FOLDERS), names, contents),
    st.tuples(st.just("fifo"), st.sampled_from(FOLDERS), names),
    st.tuples(st.just("link"), st.sampled_from(FOLDERS), names, st.sampled_from(LINKS)),
    st.tuples(st.just("replace by fifo"), st.sampled_from(TARGETS)),
    st.tuples(st.just("replace by link"), st.sampled_from(TARGETS), st.sampled_from(LINKS)),
    st.tuples(st.just("replace by folder"), st.sampled_from(FILES)),
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.sampled_from(FILES), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("meta id"), st.one_of(st.sampled_from(ODD_IDS), st.text(max_size=12))),
    st.tuples(st.just("rename case"), names),
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return make_sample(tmp_path_factory.mktemp("pristine") / "release", load_spec(SPEC), cases=2, shape=SHAPE)


@pytest.fixture
def hang_guard() -> Iterator[None]:
    """Fail instead of hanging: a check that blocks on a file is a bug, not a slow test."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the check did not end within {RUN_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _link(path: Path, kind: str, outside: Path) -> None:
    target = {"loop": path.name, "dangling": "gone", "outside file": outside / "secret.txt",
              "outside fifo": outside / "fifo", "outside folder": outside, "parent folder": "..",
              "inside file": "../meta.csv"}[kind]
    path.symlink_to(target)


def _apply(root: Path, outside: Path, operation: tuple) -> None:
    kind, *args = operation
    if kind in ("file", "fifo", "link"):
        folder, name = root / args[0], os.fsdecode(args[1])
        if not folder.is_dir() or (folder / name).exists() or (folder / name).is_symlink():
            return
        path = folder / name
        if kind == "file":
            path.write_bytes(args[2])
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            _link(path, args[2], outside)
        return
    if kind == "meta id":
        meta = root / "meta.csv"
        if meta.is_file() and not meta.is_symlink():
            meta.write_bytes(meta.read_bytes().replace(b"s0000;", args[0].encode("utf-8", "surrogatepass") + b";", 1))
        return
    if kind == "rename case":
        if (root / "s0000").is_dir() and not (root / os.fsdecode(args[0])).exists():
            (root / "s0000").rename(root / os.fsdecode(args[0]))
        return
    path = root / args[0]
    if not (path.exists() or path.is_symlink()):
        return
    if kind in ("truncate", "flip"):
        if not path.is_file() or path.is_symlink():
            return
        data = bytearray(path.read_bytes())
        if kind == "truncate":
            path.write_bytes(bytes(data[: int(len(data) * args[1])]))
        elif data:
            data[min(int(len(data) * args[1]), len(data) - 1)] ^= args[2]
            path.write_bytes(bytes(data))
        return
    _remove(path)
    if kind == "replace by fifo":
        os.mkfifo(path)
    elif kind == "replace by folder":
        path.mkdir()
    else:
        _link(path, args[1], outside)


def listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every name under root with its mode, size and modification time, links not followed."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            st_ = os.lstat(os.path.join(folder, name))
            found[os.path.relpath(os.path.join(folder, name), root)] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
    return found


@FUZZ
@given(broken=st.lists(operations, min_size=1, max_size=4), mode=st.sampled_from(["quick", "deep"]),
       detect=st.booleans())
def test_every_run_on_a_broken_release_ends_with_a_valid_report(
    pristine: Sample, tmp_path_factory: pytest.TempPathFactory, hang_guard: None, broken: list[tuple], mode: str,
    detect: bool
) -> None:
    work = tmp_path_factory.mktemp("fuzz")
    root, outside, out = work / "release", work / "outside", work / "out"
    shutil.copytree(pristine.root, root, symlinks=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("not part of the release\n")
    os.mkfifo(outside / "fifo")
    for operation in broken:
        _apply(root, outside, operation)
    before = listing(root)
    spec = [] if detect else ["--spec", SPEC]
    signal.alarm(RUN_SECONDS)
    code = main(["check", str(root), *spec, "--subset", "--mode", mode, "--jobs", "1", "--out", str(out), "--quiet"])
    signal.alarm(0)
    report = Report.model_validate_json((out / "report.json").read_bytes())
    (out / "report.html").read_text(encoding="utf-8")
    assert code == (0 if report.summary.passed else 1)
    assert report.summary.passed == (report.summary.by_severity["error"] == 0)
    assert all(is_safe(text) for f in report.findings for text in (f.path or "", f.case or "", f.message))
    assert listing(root) == before
    shutil.rmtree(work)
