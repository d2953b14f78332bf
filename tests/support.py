"""Test support shared by test modules: where the repository and its test data are, copies of the real example,
sources and functions that kill the worker running them, what GitHub and the SARIF schema would refuse in a SARIF log,
what in Markdown made from a release GitHub would take for a link, a mention, HTML or a table cell,
`tsqa` run as a process of its own, hostile YAML, and views of processes from outside (their parent, their process
group; their peak memory is benchmarks/peaks.py's PeakSampler).
Functions a worker process runs live here: a spawned or fork-server worker imports this module by its name, and
cannot import a test module."""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from markdown_it import MarkdownIt
from nibabel.nifti1 import Nifti1Header
from peaks import group_statuses

from qa.source.base import Entry, MemberReader, ReleaseSource
from qa.source.fs import FolderSource

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"  # see tests/data/README.md for where each file came from
CLASS_MAPS = json.loads((DATA / "class-maps.json").read_text())
SARIF_SCHEMA = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())  # the OASIS standard's, see data/README


def class_list(key: str) -> list[str]:
    """A class map of tests/data/class-maps.json as a list in label order."""
    return [CLASS_MAPS[key][k] for k in sorted(CLASS_MAPS[key], key=int)]


def copy_example(example: Path, dest: Path, cases: list[str]) -> Path:
    """A writable release in `dest` whose cases are copies of the real example case, listed in meta.csv."""
    dest.mkdir(parents=True, exist_ok=True)
    header, row = (example / "meta.csv").read_bytes().split(b"\n")[:2]
    rows = [row.replace(b"s0000", case.encode()) for case in cases]
    (dest / "meta.csv").write_bytes(b"\n".join([header, *rows]) + b"\n")
    for case in cases:
        shutil.copytree(example / "s0000", dest / case, copy_function=shutil.copyfile)
    return dest


class KillingSource(FolderSource):
    """A folder whose files of one case kill the worker process that opens them: a crash injected through the source
    interface, as a segfault in a reader or the kernel's OOM killer would end a worker."""

    def __init__(self, root: Path, case: str) -> None:
        super().__init__(root)
        self.case = case

    def open(self, path: str) -> MemberReader:
        if path.startswith(f"{self.case}/") and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().open(path)


class CountingSource(FolderSource):
    """A folder that notes every file opened through it, in this process or a worker, as a line of a log file:
    what a test counts reads by."""

    def __init__(self, root: Path, log: Path) -> None:
        super().__init__(root)
        self.log = str(log)

    def open(self, path: str) -> MemberReader:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{path}\n".encode())
        finally:
            os.close(fd)
        return super().open(path)

    def opened(self) -> list[str]:
        """The files opened so far, one entry per open, and the log emptied."""
        try:
            lines = Path(self.log).read_text().splitlines()
        except FileNotFoundError:
            return []
        Path(self.log).write_text("")
        return lines


def sarif_problems(log: dict) -> list[str]:
    """Where a SARIF log breaks the 2.1.0 schema or GitHub's rules for code scanning."""
    validator = jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    problems = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(log)]
    for run in log["runs"]:
        rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
        for k, result in enumerate(run["results"]):
            if not result.get("locations"):
                problems.append(f"result {k} has no location")
            for loc in result.get("locations", []):
                physical = loc["physicalLocation"]
                if physical.get("region", {}).get("startLine", 1) < 1:
                    problems.append(f"result {k} has a line below 1")
                if physical["artifactLocation"]["uri"].startswith("/"):
                    problems.append(f"result {k} has an absolute path, not a URI")
            if result["ruleId"] not in rules or not result.get("partialFingerprints"):
                problems.append(f"result {k} has no rule or no fingerprint")
    return problems


# CommonMark with GFM's tables and strikethrough (markdown-it-py: rich's Markdown parser), raw HTML allowed as GitHub
# allows some; GitHub's @mentions, #references and bare-URL links are found in the text the parser leaves.
GFM = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
LINKED = re.compile(r"@\w|#\d|\w@\w|https?://|ftp://|www\.", re.IGNORECASE)
MARKUP = {"html_inline", "html_block", "link_open", "image", "em_open", "strong_open", "s_open"}


def markdown_problems(text: str) -> list[str]:
    """What in Markdown (tsqa's, with a hostile release's names in it) GitHub would render as a link, a mention, an
    issue reference, HTML or emphasis, and the table rows whose number of cells is not their table's."""
    problems = []
    for token in GFM.parse(text):
        for t in token.children or [token]:
            if t.type in MARKUP or (t.type == "text" and LINKED.search(t.content)):
                problems.append(f"{t.type} {t.content!r} in {token.content!r}")
    lines = text.splitlines()
    for k, rule in enumerate(lines):
        if k > 0 and re.fullmatch(r"\|( ?-+:? \|)+", rule):
            # A row is a table's header only above a rule of as many cells as it has.
            for row in itertools.takewhile(lambda r: r.startswith("|"), lines[k + 1:]):
                if not any(t.type == "table_open" for t in GFM.parse(f"{row}\n{rule}\n")):
                    problems.append(f"table row {row!r} has not the cells of {lines[k - 1]!r}")
    return problems


@dataclass(frozen=True)
class Run:
    """A finished `tsqa` process: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_tsqa(*args: str | Path, timeout: float = 120) -> Run:
    """`python -m qa ARGS` in a session of its own: it must finish within `timeout` seconds (a hang fails the test)
    and leave no process of its session behind."""
    return finish(start_tsqa(*args), timeout)


def start_tsqa(*args: str | Path) -> subprocess.Popen:
    # -P: the tsqa that is installed, as the console script runs it, not a source tree in the current folder
    return subprocess.Popen([sys.executable, "-P", "-m", "qa", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


def finish(process: subprocess.Popen, timeout: float = 120) -> Run:
    """Wait for a process start_tsqa started, as run_tsqa does."""
    with process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise AssertionError(f"{process.args} did not finish in {timeout} s") from None
    # multiprocessing's resource tracker ends when it reads the end of its pipe, just after the process it served
    left = session_members(process.pid)
    deadline = time.monotonic() + 2
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = session_members(process.pid)
    assert left == [], f"processes left behind: {left}"
    return Run(process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def session_members(session: int) -> list[int]:
    """The live processes of a session (the session id is its leader's pid); zombies are dead and not counted."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while it was listed
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def without_cut_organs(findings: list) -> list:
    """Findings but LABEL_TRUNCATED: a sample's field of view cuts some of the phantom's organs, as a real scan's
    does, so these infos come with every deep check of a sample and say nothing about what a test made."""
    return [f for f in findings if (f["code"] if isinstance(f, dict) else f.code) != "LABEL_TRUNCATED"]


def read_meta_csv(source: ReleaseSource) -> bytes:
    """meta.csv through a source: for a worker process to call, which imports this module by its name, as a spawned
    process cannot import a test module."""
    return source.read("meta.csv", 1 << 20)


class KillOnceSource(FolderSource):
    """A folder whose files of one case kill the first worker process that opens them (a `marker` file remembers it):
    a death that was not the case's doing."""

    def __init__(self, root: Path, case: str, marker: Path) -> None:
        super().__init__(root)
        self.case, self.marker = case, marker

    def open(self, path: str) -> MemberReader:
        if path.startswith(f"{self.case}/") and multiprocessing.parent_process() is not None:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().open(path)


def square_or_die(item: int) -> int:
    """Squares its item; item 13 kills the worker process running it (only in a worker, never the test itself)."""
    if item == 13 and multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item


def logged_run(item: tuple[int, str]) -> tuple[int, float, float]:
    """Runs item (n, log folder): appends a line to the folder's n.log, sleeps a little, and returns (n, start, end) on
    the system-wide monotonic clock; n == 13 kills its worker, at every attempt."""
    n, folder = item
    start = time.monotonic()
    with open(Path(folder) / f"{n}.log", "a") as log:
        log.write(f"{os.getpid()}\n")
    if n == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return n, start, time.monotonic()


def meet(item: tuple[int, str]) -> bool:
    """Runs item (n, folder): marks that it started, then waits (10 s at most) for another item to have started too;
    whether it met one, i.e. whether two items ran at the same time."""
    n, folder = item
    (Path(folder) / f"{n}.started").touch()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if len(list(Path(folder).glob("*.started"))) >= 2:
            return True
        time.sleep(0.01)
    return False


def worker_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a dead process its parent has not reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError):
        return None


def process_group(pgid: int) -> list[int]:
    """The live processes of a process group."""
    return sorted(group_statuses(pgid))


ZERO_UNIT = 1 << 20  # uncompressed bytes per repeated deflate block of zeros


def write_zeros_nifti(path: Path, shape: tuple[int, ...], dtype: str, affine: np.ndarray, ones: int = 0,
                      garbage_after: int | None = None) -> None:
    """A gzip NIfTI-1 of `shape` whose voxels are all 0 but the first `ones` (1), written in milliseconds whatever its
    size: one deflate block of zeros, ended by a full flush so that it can be repeated, stands for each megabyte.
    Its trailer (CRC32 and length) is right. With `garbage_after`, the deflate data is cut after that many
    compressed bytes and random bytes follow, up to the length the whole would have had: the header and trailer
    still promise the whole volume."""
    header = Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_sform(affine, code=2)
    header["vox_offset"] = 352
    head = header.binaryblock + b"\0" * 4
    itemsize = np.dtype(dtype).itemsize
    data_bytes = int(np.prod(shape, dtype=object)) * itemsize
    first = np.zeros(min(data_bytes, max(ZERO_UNIT, ones * itemsize)), dtype=np.uint8)
    first.view(dtype)[:ones] = 1
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = [deflater.compress(head + first.tobytes()) + deflater.flush(zlib.Z_FULL_FLUSH)]
    crc = zlib.crc32(head + first.tobytes())
    zeros = bytes(ZERO_UNIT)
    units, rest = divmod(data_bytes - first.size, ZERO_UNIT)
    if units:
        unit = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
        body.append(unit * units)
        for _ in range(units):
            crc = zlib.crc32(zeros, crc)
    body.append(deflater.compress(bytes(rest)) + deflater.flush(zlib.Z_FINISH))
    crc = zlib.crc32(bytes(rest), crc)
    deflate = b"".join(body)
    if garbage_after is not None:
        deflate = deflate[:garbage_after] + np.random.default_rng(0).bytes(len(deflate) - garbage_after)
    trailer = struct.pack("<II", crc, (len(head) + data_bytes) % (1 << 32))
    path.write_bytes(b"\x1f\x8b\x08\x00\0\0\0\0\x00\xff" + deflate + trailer)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Debian's chromium, headless, through Playwright's sync API; skipped where either is missing, but CI (which
    installs both) fails instead."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.is_file():
        missing = "the playwright package" if sync_playwright is None else str(CHROMIUM)
        if os.environ.get("CI"):
            pytest.fail(f"the browser test needs {missing}; .ci/run and the test extra install it")
        pytest.skip(f"{missing} is not installed (apt-get install chromium; pip install -e '.[browser]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class BlindSource(FolderSource):
    """A folder that worker processes cannot see, as on a cluster node without the release's shared file system."""

    def entries(self, folder: str) -> list[Entry]:
        return [] if multiprocessing.parent_process() is not None else super().entries(folder)


def run_tsqa_read_only(folder: Path, *args: str | Path, timeout: float = 120) -> Run:
    """`tsqa ARGS` (as run_tsqa) with `folder` read-only to it for real: made so by its permission bits for a user,
    and for root, whom permission bits do not stop, by a read-only bind mount in a mount namespace of its own."""
    command = [sys.executable, "-P", "-m", "qa", *map(str, args)]
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    else:
        remount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", remount, str(folder), *command]
    return finish(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True),
                  timeout)

YAML_LEVELS = 50_000


def nested_list() -> str:
    return "[" * YAML_LEVELS + "]" * YAML_LEVELS


def nested_mapping() -> str:
    return "{a: " * YAML_LEVELS + "1" + "}" * YAML_LEVELS


def billion_laughs() -> str:
    """Ten levels of nine aliases each: 9**10 nodes once expanded, from a few hundred bytes."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 9) + "]" for k in range(1, 10)]
    return "\n".join(lines) + "\n"


def chained_merge_keys() -> str:
    """10,000 mappings, each merging the one before: PyYAML flattens them in quadratic time."""
    lines = ["m0: &m0 {k0: 0}"] + [f"m{k}: &m{k} {{<<: *m{k - 1}, k{k}: {k}}}" for k in range(1, 10_000)]
    return "\n".join(lines) + "\n"


# YAML that a naive reader recurses on, or builds billions of nodes from, or spends minutes on.
HOSTILE_YAML = {"nested_list": nested_list, "nested_mapping": nested_mapping, "billion_laughs": billion_laughs,
                "chained_merge_keys": chained_merge_keys}


def report_data(path: Path) -> dict:
    """A report.json read through the model, as plain data in report schema 2's shape (findings a list of objects,
    a case's labels an object per class), for tests that look into it."""
    from qa.report.model import Report

    return Report.model_validate_json(path.read_bytes()).model_dump()
