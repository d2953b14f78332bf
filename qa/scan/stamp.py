"""What the fact cache keeps of a case, made where the case is scanned: its stamp (a digest of its listing and of the
stat of every NIfTI file, taken without reading a byte) and its facts as an entry (qa.scan.entry: also the little a
worker sends back); and the check of cached files' gzip trailers."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from qa.scan.case import CaseTask, Layout, ScanMode, case_entries, is_nifti_name, scan_case_guarded
from qa.scan.entry import decode, encode
from qa.scan.facts import CaseFacts, FileFacts
from qa.scan.members import TRAILER_BYTES
from qa.source.base import Entry, ReleaseSource, SourceError

STAMP_BYTES = 16
_STAT = struct.Struct("<qqqQQ")


def case_stamp(source: ReleaseSource, case: str, entries: list[Entry] | None = None) -> bytes:
    """The digest of a case folder's entries and of its first-level subfolders' (names and kinds, as scan_case lists
    them) and of each NIfTI file's size, mtime_ns, ctime_ns, inode and device (following links inside the release),
    or why it cannot be stat'ed. Any change that can change the case's facts changes it, short of a file rewritten
    to the same size, times and inode (what --verify-cache is for)."""
    digest = hashlib.blake2b(digest_size=STAMP_BYTES)
    for entry in case_entries(source, case) if entries is None else entries:
        digest.update(f"{entry.kind}\0{entry.path}\0".encode(errors="surrogateescape"))
        if entry.kind != "dir" and is_nifti_name(entry.path.rsplit("/", 1)[-1]):
            try:
                st = source.stat(entry.path)
            except SourceError as exc:
                digest.update(f"!{exc}\0".encode(errors="surrogateescape"))
            else:
                digest.update(_STAT.pack(st.size, st.mtime_ns, st.ctime_ns, st.inode, st.device))
    return digest.digest()


@dataclass(frozen=True)
class Stamped:
    """A scanned case for the cache: its stamp, taken before it was read, and its facts as an entry (`blob`) when
    they may be cached, else as they are."""

    case: str
    stamp: bytes
    blob: bytes | None
    facts: CaseFacts | None

    def result(self) -> CaseFacts:
        facts = self.facts if self.blob is None else decode(self.blob)
        assert facts is not None, "an entry made in this run reads back"
        return facts


def scan_stamped(source: ReleaseSource, layout: Layout, mode: ScanMode, task: CaseTask) -> Stamped:
    """A case's stamp, taken first, and its facts (scan_case_guarded): a file that changes while it is read makes
    the stamp stale, never the cached facts wrong. Run in a worker, so that stamping and encoding are as parallel as
    scanning, and what comes back is the compressed entry."""
    entries = case_entries(source, task.case)  # one listing for both: the stamp says what the scan saw
    stamp = case_stamp(source, task.case, entries)
    facts = scan_case_guarded(source, layout, mode, task, entries)
    if cacheable(facts):
        return Stamped(task.case, stamp, encode(facts), None)
    return Stamped(task.case, stamp, None, facts)


def cacheable(facts: CaseFacts) -> bool:
    """Whether a case's facts may serve a later run: not when reading failed in a way that may pass (a crash, an
    unforeseen error, an unreadable file) nor when its deep pass left measurements out (another run may have the
    memory to make them)."""
    if facts.internal_error is not None or facts.failures:
        return False
    if facts.deep is not None and facts.deep.skipped:
        return False
    return all(f.corrupt is None or f.corrupt.kind != "unreadable" for f in facts.files.values())


def trailers_match(source: ReleaseSource, facts: CaseFacts) -> bool:
    """Whether every file of a case whose gzip trailer was read still ends with the same 8 bytes."""
    return all(_trailer_matches(source, f) for f in facts.files.values() if f.trailer is not None)


def _trailer_matches(source: ReleaseSource, facts: FileFacts) -> bool:
    try:
        with source.open(facts.path) as reader:
            if reader.size != facts.size:
                return False
            return reader.read_at(facts.size - TRAILER_BYTES, TRAILER_BYTES) == facts.trailer
    except SourceError:
        return False
