"""Test support shared by test modules: where the repository and its test data are, copies of the real example, a
source that kills the worker reading one case, what GitHub and the SARIF schema would refuse in a SARIF log, and
`tsqa` run as a process of its own."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema

from qa.source.base import MemberReader, ReleaseSource
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
