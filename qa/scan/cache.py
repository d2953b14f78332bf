"""The fact cache: each case's facts kept in SQLite under its stamp, per release, so that a re-run scans what changed.

One SQLite file in WAL mode (readers never wait; one writer at a time, others wait up to BUSY_MS), written only by
the process that runs the check, one transaction per batch of cases. A case's entry is data (qa.scan.entry: JSON
validated into the facts' own types), never code: an entry that is damaged, foreign or of another format is a miss,
said once. A file that is not such a database, or of another format or FACTS_VERSION, is started anew with a
one-line notice; a cache that is only busy (another run writing it) or read-only is never removed: the run waits,
then goes on without storing. The cache can make a run slower, never its answer wrong."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.scan.case import Layout, ScanMode
from qa.scan.entry import decode
from qa.scan.facts import FACTS_VERSION, CaseFacts

CACHE_FORMAT = 2  # 2: entries are qa.scan.entry's JSON (1 held pickles)
# PRAGMA user_version of a cache file: its format and the facts' version, so that either change starts it anew.
USER_VERSION = CACHE_FORMAT * 1000 + FACTS_VERSION
DB_NAME = "facts.sqlite"
DEFAULT_MAX_BYTES = 2 << 30
BUSY_MS = 60_000
# Cases written per transaction: few commits, and another run waiting for the lock never waits long.
BATCH_CASES = 64
BATCH_SECONDS = 2.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (id INTEGER PRIMARY KEY, location BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS cases (
    release INTEGER NOT NULL, name BLOB NOT NULL, layout BLOB NOT NULL, mode TEXT NOT NULL, stamp BLOB NOT NULL,
    facts BLOB NOT NULL, bytes INTEGER NOT NULL, used REAL NOT NULL, files INTEGER NOT NULL,
    PRIMARY KEY (release, name));
CREATE INDEX IF NOT EXISTS cases_used ON cases (used);
"""
Notice = Callable[[str], None]
# SQLite's primary result codes that say the file itself is not a sound database; any other error (busy, locked,
# read-only, I/O, full, cannot open) is about the file's circumstances, and the file is kept.
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def damaged(exc: sqlite3.Error) -> bool:
    """Whether an error says the database file is broken, rather than busy, read-only or out of reach."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _DAMAGED


def say(text: str) -> None:
    print(f"tsqa: {text}", file=sys.stderr)


def default_cache_dir() -> Path:
    """$TSQA_CACHE_DIR, else the platform's user cache folder for tsqa (platformdirs)."""
    given = os.environ.get("TSQA_CACHE_DIR")
    if given:
        return Path(given)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("tsqa", appauthor=False))


def layout_key(layout: Layout) -> bytes:
    """What of the spec a case's facts depend on: a spec that changes only how facts are judged keeps its cases."""
    text = repr((layout.meta_file, layout.case_pattern, layout.image, layout.mask_dir, layout.max_voxels,
                 layout.max_bytes, sorted(layout.pieces), layout.masks))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


@dataclass
class CacheUse:
    """What the cache gave a run: cases and files served without a read, and whether their trailers were checked."""

    cases: int = 0
    files: int = 0
    verified: bool = False


@dataclass(frozen=True)
class CacheInfo:
    """What a cache folder holds."""

    path: Path
    file_bytes: int
    entry_bytes: int
    max_bytes: int
    releases: list[tuple[str, int, int, int]] = field(default_factory=list)  # location, cases, files, bytes


class FactCache:
    """A fact cache folder, open. Methods that meet a broken database say so once and leave the cache off for the
    rest of the run (`usable` turns False): the run goes on without it. A cache this process may not write (a
    read-only folder or file, or one another run held past `busy_ms`) is read but not written (`storing` False)."""

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES, notice: Notice = say,
                 busy_ms: int = BUSY_MS) -> None:
        self.folder, self.max_bytes, self.notice, self.busy_ms = folder, max_bytes, notice, busy_ms
        self.path = folder / DB_NAME
        self.db: sqlite3.Connection | None = None
        self.storing = True
        self.foreign_said = False

    @classmethod
    def open(cls, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES, notice: Notice = say,
             busy_ms: int = BUSY_MS) -> FactCache:
        cache = cls(folder, max_bytes, notice, busy_ms)
        cache._connect()
        return cache

    @property
    def usable(self) -> bool:
        return self.db is not None

    def _connect(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.notice(f"fact cache off: cannot create {self.folder} ({exc.strerror or exc})")
            return
        try:
            self.db = self._prepared(self._connection())
            if not self._writable():
                self._read_only()
        except sqlite3.Error as exc:
            self._close()
            if damaged(exc):
                self._start_anew(exc)
            elif self._writable():
                self.notice(f"fact cache off for this run: {self.path}: {exc}")
            else:
                self._open_read_only()

    def _connection(self, uri: str | None = None) -> sqlite3.Connection:
        db = sqlite3.connect(uri or self.path, timeout=self.busy_ms / 1000, isolation_level=None,
                             check_same_thread=False, uri=uri is not None)
        self.db = db
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_ms)}")
        return db

    def _prepared(self, db: sqlite3.Connection) -> sqlite3.Connection:
        """The database checked and, when it is new or of another version, made anew in one write transaction: an
        open of a sound cache of this version only reads, so that a run another run is writing never waits."""
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        found = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if found != USER_VERSION or not {"cases", "releases"} <= tables:
            with self._transaction() as tx:
                found = tx.execute("PRAGMA user_version").fetchone()[0]
                tables = {row[0] for row in tx.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if found != USER_VERSION and tables:
                    self.notice(f"the fact cache {self.path} is of another tsqa version (format {found}, this one "
                                f"{USER_VERSION}); starting it anew")
                    tx.execute("DROP TABLE IF EXISTS cases")
                    tx.execute("DROP TABLE IF EXISTS releases")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute(f"PRAGMA user_version = {USER_VERSION}")
        # a damaged page shows when it is read: read every entry's key now, not in the middle of a run
        db.execute("SELECT count(*), sum(bytes), sum(length(stamp)) FROM cases").fetchone()
        return db

    def _writable(self) -> bool:
        return os.access(self.folder, os.W_OK) and (not self.path.exists() or os.access(self.path, os.W_OK))

    def _open_read_only(self) -> None:
        """A cache this user may read but not write: its entries serve the run, nothing is stored."""
        if not self.path.exists():
            self.notice(f"fact cache off: {self.folder} is read-only and holds no cache")
            return
        # immutable: a WAL database needs its -shm file written to be read, unless nobody may change it meanwhile
        uri = f"{self.path.absolute().as_uri()}?mode=ro&immutable=1"
        try:
            db = self._connection(uri)
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found != USER_VERSION:
                raise sqlite3.DatabaseError(f"of another tsqa version (format {found}, this one {USER_VERSION})")
            db.execute("SELECT count(*), sum(bytes), sum(length(stamp)) FROM cases").fetchone()
        except sqlite3.Error as exc:
            self._close()
            self.notice(f"fact cache off: {self.path} is read-only and cannot be used ({exc})")
            return
        self._read_only()

    def _read_only(self) -> None:
        self.storing = False
        self.notice(f"the fact cache {self.path} is read-only: its entries are used, nothing new is stored")

    def _start_anew(self, exc: sqlite3.Error) -> None:
        self.notice(f"the fact cache {self.path} is unreadable ({exc}); starting it anew")
        try:
            self._remove()
            self.db = self._prepared(self._connection())
        except (OSError, sqlite3.Error) as again:
            self._close()
            self.notice(f"fact cache off: {self.path}: {getattr(again, 'strerror', None) or again}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        assert self.db is not None
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def _close(self) -> None:
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.close()
        self.db = None

    def close(self) -> None:
        self._close()

    def __enter__(self) -> FactCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def failed(self, exc: Exception) -> None:
        """A database error met during a run: said once, and the cache is off for the rest of the run."""
        self._close()
        self.notice(f"fact cache off for this run: {self.path}: {exc}")

    def stop_storing(self, exc: sqlite3.Error) -> None:
        """A write refused for the file's circumstances (busy past busy_ms, read-only, full): said once; the run
        goes on reading the cache and stores nothing more."""
        self.storing = False
        code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if code in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
            why = f"another run held it for {self.busy_ms / 1000:g} s"
        else:
            why = "it is read-only" if code == 8 else str(exc)  # SQLITE_READONLY
        self.notice(f"the fact cache {self.path} takes no new entries in this run ({why}); nothing was removed")

    def foreign_entry(self, case: str) -> None:
        """An entry that is no facts of this tsqa (damaged, crafted, of another format): a miss, said once."""
        if not self.foreign_said:
            self.foreign_said = True
            self.notice(f"the fact cache {self.path} holds an entry that is not facts of this tsqa (case "
                        f"{case}); it is read again, and so is any other such entry")

    def release(self, location: str, layout: Layout) -> ReleaseCache | None:
        """The entries of one release (by its resolved location), loaded at once; None when the cache is off."""
        for attempt in (1, 2):
            if self.db is None:
                return None
            try:
                return self._load(location, layout)
            except sqlite3.DatabaseError as exc:
                if attempt == 2 or not damaged(exc):  # locked, disk full: not the file's
                    self.failed(exc)
                    return None
                self._close()
                self._start_anew(exc)
        return None

    def _load(self, location: str, layout: Layout) -> ReleaseCache:
        assert self.db is not None
        # paths as the file system's bytes: a name that is not UTF-8 is stored as it is
        key = os.fsencode(location)
        if self.storing:
            try:
                with self._transaction() as tx:
                    tx.execute("INSERT OR IGNORE INTO releases (location) VALUES (?)", (key,))
            except sqlite3.Error as exc:
                if damaged(exc):
                    raise
                self.stop_storing(exc)
        found = self.db.execute("SELECT id FROM releases WHERE location = ?", (key,)).fetchone()
        release = None if found is None else found[0]
        rows = [] if release is None else self.db.execute(
            "SELECT name, layout, mode, stamp, facts FROM cases WHERE release = ?", (release,)).fetchall()
        return ReleaseCache(self, release, layout_key(layout), {os.fsdecode(r[0]): r[1:] for r in rows})

    def write(self, release: int | None, stored: list[tuple[str, bytes, str, bytes, bytes, int]],
              used: list[str]) -> None:
        """Store entries (name, layout, mode, stamp, facts, files) and mark entries used, in one transaction, then
        evict the least recently used entries of any release past the size bound. A quick entry never replaces a
        deep one of the same stamp and layout: the deep one serves both passes."""
        if self.db is None or not self.storing or release is None or not (stored or used):
            return
        now = time.time()
        try:
            with self._transaction() as tx:
                tx.executemany(
                    "INSERT INTO cases (release, name, layout, mode, stamp, facts, bytes, used, files) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (release, name) DO UPDATE SET "
                    "layout = excluded.layout, mode = excluded.mode, stamp = excluded.stamp, facts = excluded.facts, "
                    "bytes = excluded.bytes, used = excluded.used, files = excluded.files "
                    "WHERE NOT (cases.mode = 'deep' AND excluded.mode = 'quick' AND cases.stamp = excluded.stamp "
                    "AND cases.layout = excluded.layout)",
                    [(release, os.fsencode(name), lay, mode, stamp, blob, len(blob) + len(stamp) + len(name), now,
                      files)
                     for name, lay, mode, stamp, blob, files in stored])
                tx.executemany("UPDATE cases SET used = ? WHERE release = ? AND name = ?",
                               [(now, release, os.fsencode(name)) for name in used])
                self._evict(tx)
        except sqlite3.Error as exc:
            if damaged(exc):
                self.failed(exc)
            else:
                self.stop_storing(exc)

    def _evict(self, tx: sqlite3.Connection) -> None:
        total = tx.execute("SELECT coalesce(sum(bytes), 0) FROM cases").fetchone()[0]
        if total <= self.max_bytes:
            return
        doomed, freed = [], 0
        for rowid, size in tx.execute("SELECT rowid, bytes FROM cases ORDER BY used, rowid"):
            if total - freed <= self.max_bytes * 0.9:  # a little room, so that the next run does not evict at once
                break
            doomed.append((rowid,))
            freed += size
        tx.executemany("DELETE FROM cases WHERE rowid = ?", doomed)
        tx.execute("DELETE FROM releases WHERE id NOT IN (SELECT DISTINCT release FROM cases)")

    def info(self) -> CacheInfo:
        size = sum(os.path.getsize(f"{self.path}{s}") for s in ("", "-wal") if os.path.exists(f"{self.path}{s}"))
        if self.db is None:
            return CacheInfo(self.path, size, 0, self.max_bytes)
        rows = self.db.execute("SELECT location, count(*), sum(files), sum(bytes) FROM cases JOIN releases ON "
                               "releases.id = cases.release GROUP BY location ORDER BY location").fetchall()
        return CacheInfo(self.path, size, sum(r[3] for r in rows), self.max_bytes,
                         [(os.fsdecode(r[0]), *r[1:]) for r in rows])

    def clear(self) -> bool:
        """Every entry removed and the file shrunk; False when this process may not write the cache (off, busy,
        read-only): nothing is removed then."""
        if self.db is None or not self.storing:
            return False
        with self._transaction() as tx:
            tx.execute("DELETE FROM cases")
            tx.execute("DELETE FROM releases")
        self.db.execute("VACUUM")
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return True


class ReleaseCache:
    """One release's entries during a run: looked up by case and stamp, new ones written in batches."""

    def __init__(self, cache: FactCache, release: int | None, layout: bytes, rows: dict[str, tuple]) -> None:
        self.cache, self.id, self.layout, self.rows = cache, release, layout, rows
        self.stored: list[tuple[str, bytes, str, bytes, bytes, int]] = []
        self.used: list[str] = []
        self.since = time.monotonic()

    def holds(self, case: str) -> bool:
        return case in self.rows

    def lookup(self, case: str, stamp: bytes, mode: ScanMode) -> CaseFacts | None:
        """The cached facts of a case whose stamp and layout are the entry's, of the deep pass or of the pass asked
        for (deep facts serve a quick run without their voxel facts; quick ones never serve a deep run)."""
        row = self.rows.get(case)
        if row is None:
            return None
        layout, cached_mode, cached_stamp, blob = row
        if layout != self.layout or cached_stamp != stamp or (mode == "deep" and cached_mode != "deep"):
            return None
        facts = decode(blob)
        if facts is None or facts.case != case:
            self.cache.foreign_entry(case)
            return None
        if mode == "quick":
            facts.deep = None
        return facts

    def served(self, case: str) -> None:
        self.used.append(case)
        self._maybe_flush()

    def store(self, case: str, stamp: bytes, mode: ScanMode, blob: bytes, files: int) -> None:
        self.stored.append((case, self.layout, mode, stamp, blob, files))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self.stored) >= BATCH_CASES or time.monotonic() - self.since >= BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        stored, used = self.stored, self.used
        self.stored, self.used, self.since = [], [], time.monotonic()
        self.cache.write(self.id, stored, used)
