"""The reports folder as a history of runs: reports/<spec id>/<release>/<UTC timestamp>/ per run, run.json in each,
and latest.json beside them pointing at the newest complete run."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from qa.output.files import Folder, opened
from qa.report.model import Mode, Report, Summary

LATEST = "latest.json"
RUN = "run.json"
REPORT = "report.json"
STAMP = "%Y%m%dT%H%M%SZ"
# A run folder: its UTC start in ISO 8601 basic format (no ':' so that every filesystem takes it), and '-2', '-3'...
# when runs of one release start in the same second.
RUN_NAME = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")
_SAFE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
FOLDER_CHARS, FOLDER_START = 120, 80  # well inside the 255 bytes a file name may have


class RunRecord(BaseModel):
    """What the history index needs of one run: small, so that the index never rereads every report."""

    tool: Literal["tsqa"] = "tsqa"
    run: str
    report: str = REPORT
    release: str
    spec_id: str
    mode: Mode
    subset: bool
    started: datetime
    version: str
    summary: Summary

    @classmethod
    def of(cls, report: Report, run: str) -> RunRecord:
        return cls(run=run, release=report.release, spec_id=report.spec_id, mode=report.mode, subset=report.subset,
                   started=report.started, version=report.version, summary=report.summary)


def folder_name(name: str) -> str:
    """A name as one safe folder name, a different one for each name: each UTF-8 byte outside [A-Za-z0-9._-] (and
    a leading '.') as ~XX, so '~' itself too, and '~~' for the empty name; past FOLDER_CHARS, a readable start, '~~'
    and a hash of the whole name ('~~' is in no name encoded otherwise). URLs carry these characters as they are."""
    data = name.encode("utf-8", "surrogatepass")  # lone surrogates as their own bytes: no two names share bytes
    encoded = "".join(chr(b) if b in _SAFE_BYTES and not (k == 0 and b == ord(".")) else f"~{b:02X}"
                      for k, b in enumerate(data)) or "~~"
    if len(encoded) <= FOLDER_CHARS:
        return encoded
    start = re.sub(r"~.?$", "", encoded[:FOLDER_START])
    return f"{start}~~{hashlib.sha256(data).hexdigest()[:32]}"


def release_name(release: str) -> str:
    """The folder name of a release in the history: the last part of its path, as folder_name makes it."""
    return folder_name(Path(release).name if release else "")


def release_dir(reports: Path, spec_id: str, release: str) -> Path:
    return reports / spec_id / release_name(release)


def new_run_dir(folder: Folder | Path, started: datetime) -> Path:
    """Create and return the folder of a new run of a release; a run never takes over another's folder."""
    stamp = started.astimezone(UTC).strftime(STAMP)
    with opened(folder) as release:
        for n in range(1, 10_000):
            name = stamp if n == 1 else f"{stamp}-{n}"
            try:
                release.mkdir(name)
            except FileExistsError:
                continue
            return release.path / name
    raise FileExistsError(f"no free run folder for {stamp} in {folder}")


def record_run(report: Report, run: Folder | Path, name: str | None = None) -> RunRecord:
    """Write run.json into a run's folder (a staging one, when `name` is the run's folder name); its record."""
    with opened(run) as folder:
        record = RunRecord.of(report, name or folder.path.name)
        folder.write(RUN, record.model_dump_json(indent=1))
        return record


def point_latest(run: Folder | Path, record: RunRecord) -> Path:
    """Point latest.json beside a finished run's folder at it; returns latest.json."""
    with opened(run) as folder, folder.parent() as release:
        return release.write(LATEST, record.model_dump_json(indent=1))


def _order(run: Path) -> tuple[str, int]:
    found = RUN_NAME.match(run.name)
    return (found.group(1), int(found.group(2) or 1)) if found else ("", 0)


def runs(folder: Path) -> list[Path]:
    """The finished runs of a release folder (those with a report.json), oldest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if RUN_NAME.match(p.name) and (p / REPORT).is_file()]
    return sorted(found, key=_order)


def read_record(path: Path) -> RunRecord | None:
    try:
        return RunRecord.model_validate_json(path.read_bytes())
    except (OSError, ValueError, ValidationError):
        return None


def latest_run(folder: Path) -> Path | None:
    """The run latest.json points at, or the newest finished run when the pointer is missing or stale."""
    record = read_record(folder / LATEST)
    if record is not None and RUN_NAME.match(record.run) and (folder / record.run / REPORT).is_file():
        return folder / record.run
    found = runs(folder)
    return found[-1] if found else None


def release_dirs(reports: Path) -> list[Path]:
    """Every release folder of the history (reports/<spec id>/<release>/ with at least one run)."""
    if not reports.is_dir():
        return []
    return sorted(p for spec in reports.iterdir() if spec.is_dir() for p in spec.iterdir() if runs(p))
