"""The job database (SQLite in WAL mode): checks queued, running and done, and the UI's sign-in sessions.

The web process and the worker process each open their own connections; every state change is one UPDATE guarded by
the state it leaves, so two processes never both move a job."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

State = Literal["queued", "running", "finished", "failed", "cancelled"]
DONE: tuple[State, ...] = ("finished", "failed", "cancelled")
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    spec TEXT,
    mode TEXT NOT NULL,
    subset INTEGER NOT NULL,
    submitted_by TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    phase TEXT,
    cases_done INTEGER NOT NULL DEFAULT 0,
    cases_total INTEGER,
    files INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    cancel INTEGER NOT NULL DEFAULT 0,
    spec_id TEXT,
    verdict TEXT,
    counts TEXT,
    run TEXT,
    previous TEXT,
    diff TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS jobs_root_state ON jobs (root, state);
CREATE TABLE IF NOT EXISTS sessions (
    key_sha256 TEXT PRIMARY KEY,
    token_name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires TEXT NOT NULL
);
"""


def now() -> datetime:
    return datetime.now(UTC)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True)
class Job:
    """One check as the database holds it."""

    seq: int
    id: str
    root: str
    path: str
    spec: str | None
    mode: str
    subset: bool
    submitted_by: str
    state: State
    submitted: datetime
    started: datetime | None
    finished: datetime | None
    phase: str | None
    cases_done: int
    cases_total: int | None
    files: int
    pid: int | None
    cancel: bool
    spec_id: str | None
    verdict: str | None
    counts: dict | None
    run: str | None
    previous: str | None
    diff: dict | None
    reason: str | None

    @classmethod
    def of(cls, row: sqlite3.Row) -> Job:
        data = dict(row)
        for key in ("submitted", "started", "finished"):
            data[key] = _time(data[key])
        for key in ("counts", "diff"):
            data[key] = None if data[key] is None else json.loads(data[key])
        data["subset"], data["cancel"] = bool(data["subset"]), bool(data["cancel"])
        return cls(**data)


@dataclass(frozen=True)
class Session:
    token_name: str
    token_sha256: str
    csrf: str


class JobStore:
    """The database at `path`; each call opens its own connection, so a store is safe in threads and after a fork."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            if db.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
                raise OSError(f"{path}: SQLite cannot use write-ahead logging here")
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db
        finally:
            db.close()

    def submit(self, root: str, path: str, spec: str | None, mode: str, subset: bool, submitted_by: str) -> Job:
        job_id = uuid.uuid4().hex
        with self._connect() as db:
            db.execute("INSERT INTO jobs (id, root, path, spec, mode, subset, submitted_by, state, submitted) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                       (job_id, root, path, spec, mode, int(subset), submitted_by, now().isoformat()))
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job.of(row)

    def jobs(self, root: str | None = None, states: tuple[State, ...] | None = None, limit: int = 200) -> list[Job]:
        """Newest first."""
        query, args = "SELECT * FROM jobs WHERE 1", []
        if root is not None:
            query, args = query + " AND root = ?", [*args, root]
        if states:
            query += f" AND state IN ({','.join('?' * len(states))})"
            args += list(states)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
        return [Job.of(r) for r in rows]

    def claim(self, busy_roots: set[str] | None = None) -> Job | None:
        """The oldest queued job of a root with no running job, moved to running; None when there is none."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                running = {r[0] for r in db.execute("SELECT root FROM jobs WHERE state = 'running'")}
                skip = running | (busy_roots or set())
                row = next((r for r in db.execute("SELECT id, root FROM jobs WHERE state = 'queued' ORDER BY seq")
                            if r["root"] not in skip), None)
                if row is not None:
                    db.execute("UPDATE jobs SET state = 'running', started = ?, phase = 'starting' WHERE id = ?",
                               (now().isoformat(), row["id"]))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return None if row is None else self.get(row["id"])

    def _update(self, job_id: str, states: tuple[State, ...], **values: object) -> bool:
        """Set columns of a job that is in one of `states`; False when it is not (another process moved it)."""
        sets = ", ".join(f"{key} = ?" for key in values)
        marks = ",".join("?" * len(states))
        with self._connect() as db:
            cursor = db.execute(f"UPDATE jobs SET {sets} WHERE id = ? AND state IN ({marks})",
                                (*values.values(), job_id, *states))
        return cursor.rowcount == 1

    def started(self, job_id: str, pid: int) -> bool:
        return self._update(job_id, ("running",), pid=pid)

    def progress(self, job_id: str, phase: str, cases_done: int, cases_total: int | None, files: int) -> bool:
        return self._update(job_id, ("running",), phase=phase, cases_done=cases_done, cases_total=cases_total,
                            files=files)

    def finish(self, job_id: str, spec_id: str, verdict: str, counts: dict, run: str, previous: str | None,
               diff: dict | None) -> bool:
        return self._update(job_id, ("running",), state="finished", finished=now().isoformat(), phase="done",
                            spec_id=spec_id, verdict=verdict, counts=json.dumps(counts), run=run, previous=previous,
                            diff=None if diff is None else json.dumps(diff))

    def fail(self, job_id: str, reason: str, states: tuple[State, ...] = ("queued", "running")) -> bool:
        return self._update(job_id, states, state="failed", finished=now().isoformat(), reason=reason)

    def cancel(self, job_id: str) -> State | None:
        """Cancel a queued job at once, or ask the worker to stop a running one; the job's state after, or None when
        it is done already."""
        if self._update(job_id, ("queued",), state="cancelled", finished=now().isoformat(),
                        reason="cancelled before it started"):
            return "cancelled"
        if self._update(job_id, ("running",), cancel=1):
            return "running"
        return None

    def cancelled(self, job_id: str) -> bool:
        return self._update(job_id, ("running",), state="cancelled", finished=now().isoformat(),
                            reason="cancelled while it ran")

    def fail_interrupted(self, reason: str) -> list[str]:
        """Mark every running job failed (the worker that ran it is gone); their ids."""
        with self._connect() as db:
            rows = db.execute("UPDATE jobs SET state = 'failed', finished = ?, reason = ? WHERE state = 'running' "
                              "RETURNING id", (now().isoformat(), reason)).fetchall()
        return [r[0] for r in rows]

    def previous_finished(self, job: Job, spec_id: str) -> Job | None:
        """The last finished check before `job` of the same root, path and spec."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE root = ? AND path = ? AND spec_id = ? AND state = 'finished' "
                             "AND seq < ? ORDER BY seq DESC LIMIT 1", (job.root, job.path, spec_id, job.seq)).fetchone()
        return None if row is None else Job.of(row)

    def add_session(self, key_sha256: str, token_name: str, token_sha256: str, csrf: str, hours: float) -> None:
        expires = (now() + timedelta(hours=hours)).isoformat()
        with self._connect() as db:
            db.execute("DELETE FROM sessions WHERE expires < ?", (now().isoformat(),))
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (key_sha256, token_name, token_sha256, csrf,
                                                                       expires))

    def session(self, key_sha256: str) -> Session | None:
        with self._connect() as db:
            row = db.execute("SELECT token_name, token_sha256, csrf FROM sessions WHERE key_sha256 = ? AND expires > ?",
                             (key_sha256, now().isoformat())).fetchone()
        return None if row is None else Session(*row)

    def drop_session(self, key_sha256: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM sessions WHERE key_sha256 = ?", (key_sha256,))
