"""A release inside a zip archive, read in place: stored members by byte range, deflated ones by inflating them; members
whose names leave the release or repeat, links, and members that would inflate absurdly are never read.

The standard library's zipfile reads a complete central directory only and inflates through zlib; checking a download
needs the local-header walk of an interrupted one, byte ranges of stored members and libdeflate's speed, so the
structures of the ZIP format (APPNOTE 6.3.10, section 4.3) are parsed here, ZIP64 included."""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
import stat
import struct
import zlib
from abc import abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import deflate
import numpy as np

from qa.source.base import Entry, EntryKind, MemberMissing, MemberReader, MemberStat, ReleaseSource, SourceError
from qa.source.fs import OPEN_FLAGS

LOCAL, CENTRAL, END = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
END64, LOCATOR, DESCRIPTOR = b"PK\x06\x06", b"PK\x06\x07", b"PK\x07\x08"
LOCAL_FORMAT = struct.Struct("<4sHHHHHIIIHH")  # signature ... name length, extra length: 30 bytes
CENTRAL_FORMAT = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes
END_FORMAT = struct.Struct("<4sHHHHIIH")  # 22 bytes
END64_FORMAT = struct.Struct("<4sQHHIIQQQQ")  # 56 bytes
LOCATOR_FORMAT = struct.Struct("<4sIQI")  # 20 bytes
ZIP64_EXTRA = 0x0001
MASK32, MASK16 = 0xFFFFFFFF, 0xFFFF
STORED, DEFLATED = 0, 8
METHODS = {STORED: "stored", DEFLATED: "deflated", 9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "Zstandard"}
FLAG_ENCRYPTED, FLAG_DESCRIPTOR, FLAG_UTF8 = 0x1, 0x8, 0x800
UNIX_HOSTS = (3, 19)  # the 'version made by' hosts whose external attributes carry a Unix mode (Unix, OS X)
MSDOS_DIRECTORY = 0x10
# Beside a single top folder, these are an archiving tool's leftovers, not a second root: the folder is still the root.
TOP_LEVEL_JUNK = ("__MACOSX", ".DS_Store")
SEARCH_END = END_FORMAT.size + MASK16  # the end record and the longest comment it can have

# A member declaring more than this is absurd: nothing in a release comes near it.
MAX_MEMBER_BYTES = 16 << 30
# A member that would inflate to more than BOMB_RATIO times its compressed size and more than BOMB_FLOOR bytes is a
# decompression bomb's: never inflated. (The floor spares the small, highly compressible members a release has:
# an empty mask's gzip stream deflates 130:1 again.)
BOMB_RATIO, BOMB_FLOOR = 100, 256 << 20
# A release has up to 230,000 files; an archive claiming ten times as many members, or a directory past its size, is
# not one, and parsing it would be the huge allocation a hostile file aims at.
MAX_MEMBERS = 2_000_000
MAX_DIRECTORY_BYTES = 256 << 20
# Deflated members up to this size are inflated whole with libdeflate when more than their start is asked for, and
# kept for the rest of the case's reads (a source object serves one case in a worker); larger ones are streamed.
WHOLE_BYTES = 32 << 20
KEEP_BYTES = 32 << 20
HEAD_BYTES = 1 << 20  # the start of a member that is inflated on its own, for headers
# What a process keeps of an archive it reads: its index (measured at 190 bytes a member) and, for a member read in
# steps, a window of inflated bytes and a step of compressed ones.
INDEX_BYTES_PER_MEMBER = 256
WINDOW_BYTES = 4 << 20
READ_STEP = 1 << 16
SCAN_STEP = 1 << 20

KINDS: tuple[EntryKind, ...] = ("file", "dir", "symlink", "other")
RECORD = np.dtype([("offset", "<i8"), ("data", "<i8"), ("csize", "<i8"), ("usize", "<i8"), ("crc", "<u4"),
                   ("method", "<u2"), ("flags", "<u2"), ("kind", "u1")])


class NotAZip(SourceError):
    """The file is not a zip archive at all (no zip signature at its start or end), or one this reader cannot take."""


@dataclass(frozen=True)
class RefusedMember:
    """A member that is never read because of what it is: its kind (absolute, parent, duplicate, bomb, overlap), its
    name as stored in the archive, its path in the release when it has one there, and why."""

    kind: str
    name: str
    path: str | None
    reason: str


@dataclass(frozen=True)
class Truncation:
    """Where an archive without its end stops: the first member it cuts (path and name None when the cut falls between
    members, or inside the member's name), how many bytes of that member's data are there, and how many it lacks
    (None: its size is written after its data, so nobody can know)."""

    path: str | None
    name: str | None
    present: int | None
    missing: int | None
    complete_members: int
    header_at: int | None = None  # where the cut member's local header starts; None when the cut falls between


@dataclass(frozen=True)
class ArchiveLayout:
    """What the archive is, as a whole: its members' methods, the single top folder taken as the release root, how the
    members were found (its central directory, or walking its local headers when that is missing or unreadable), and
    what is wrong with it."""

    name: str
    size: int
    top_folder: str | None
    members: int
    stored: int
    deflated: int
    zip64: bool
    directory: Literal["read", "walked"]
    directory_error: str | None = None  # why the central directory could not be used, when it is there
    corrupt_at: str | None = None  # where the local headers stop making sense, when walking them
    truncation: Truncation | None = None
    refused: list[RefusedMember] = field(default_factory=list)


@dataclass(slots=True)
class _Found:
    """A member as parsed, before the index is sorted: its name, its place in the release, its record fields, and
    why it is never read (refused_as, the kind of refusal an archive finding names, and refusal, the reason; or the
    reason alone for a member cut off by the archive's end)."""

    name: str
    name_length: int
    kind: EntryKind
    offset: int
    data: int
    csize: int
    usize: int
    crc: int
    method: int
    flags: int
    zip64: bool = False
    path: str | None = None
    refused_as: str | None = None
    refusal: str | None = None

    def refuse(self, kind: str | None, reason: str) -> None:
        if self.refusal is None:
            self.refused_as, self.refusal = kind, reason


class _Damaged(Exception):
    """The central directory cannot be read as the end record describes it; the message says why."""


def _decode(raw: bytes, flags: int) -> str:
    return raw.decode("utf-8", "surrogateescape") if flags & FLAG_UTF8 else raw.decode("cp437")


def _place(name: str) -> tuple[str | None, str | None]:
    """A member name's path in the archive ('/'-separated, no '.' or empty parts), or None and why it has none."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        return None, "absolute"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return None, "parent"
    return "/".join(p for p in parts if p not in ("", ".")), None


def _kind(name: str, host: int, attributes: int) -> EntryKind:
    """A member's kind from its name and, where its host writes one, its Unix mode; a mode without a file type (some
    archivers write only the permissions) is a file's."""
    file_type = stat.S_IFMT(attributes >> 16) if host in UNIX_HOSTS else 0
    if file_type == stat.S_IFLNK:
        return "symlink"
    if name.endswith("/") or file_type == stat.S_IFDIR or (file_type == 0 and attributes & MSDOS_DIRECTORY):
        return "dir"
    return "file" if file_type in (0, stat.S_IFREG) else "other"


def _zip64_fields(extra: bytes, wanted: list[str]) -> tuple[bool, dict[str, int]]:
    """Whether the extra fields hold a ZIP64 field, and its values for the fields whose 32-bit value was saturated,
    in the order the format gives them."""
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if tag == ZIP64_EXTRA:
            body = extra[at + 4 : at + 4 + length]
            if 8 * len(wanted) > len(body):
                raise _Damaged(f"ZIP64 field too short for its {', '.join(wanted)}")
            return True, {name: struct.unpack_from("<Q", body, 8 * i)[0] for i, name in enumerate(wanted)}
        at += 4 + length
    if wanted:
        raise _Damaged(f"{', '.join(wanted)} saturated without a ZIP64 field")
    return False, {}


class _File:
    """The archive's bytes, read by position (pread), never past the size it had when the check began."""

    def __init__(self, path: str, size: int) -> None:
        self.path, self.size = path, size
        self.fd: int | None = None

    def read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        if self.fd is None:
            try:
                self.fd = os.open(self.path, OPEN_FLAGS)
            except OSError as exc:
                raise SourceError(f"cannot open the archive: {exc.strerror or exc}") from exc
        try:
            data = os.pread(self.fd, length, offset)
        except OSError as exc:
            raise SourceError(f"read error in the archive: {exc.strerror or exc}") from exc
        if len(data) < length:
            raise SourceError(f"the archive got shorter while it was read (at byte {offset + len(data)})")
        return data

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass(frozen=True)
class _End:
    """The end of central directory record (ZIP64's where there is one): where the directory is and what it holds."""

    members: int
    offset: int
    size: int
    position: int  # where the record itself starts: the directory must end before it
    zip64: bool


def _end_records(file: _File) -> list[tuple[int, tuple]]:
    """Every end of central directory record the archive's tail may hold, last first: (position, fields)."""
    start = max(0, file.size - SEARCH_END)
    tail = file.read(start, file.size - start)
    found = []
    at = len(tail)
    while (at := tail.rfind(END, 0, at + len(END) - 1)) >= 0:
        if at + END_FORMAT.size <= len(tail):
            fields = END_FORMAT.unpack_from(tail, at)
            if at + END_FORMAT.size + fields[7] <= len(tail):  # its comment fits
                found.append((start + at, fields))
    return found


def _end(file: _File, position: int, fields: tuple) -> _End:
    """The end record at `position`, or the ZIP64 end record its locator points at."""
    _, disk, disk_start, _, total, size, offset, _ = fields
    locator = file.read(position - LOCATOR_FORMAT.size, LOCATOR_FORMAT.size) if position >= LOCATOR_FORMAT.size else b""
    if locator[:4] == LOCATOR:
        _, _, end64, _ = LOCATOR_FORMAT.unpack(locator)
        record = file.read(end64, END64_FORMAT.size) if end64 < position else b""
        if len(record) < END64_FORMAT.size or record[:4] != END64:
            raise _Damaged(f"the ZIP64 end record is not at byte {end64:,}, where its locator says")
        _, _, _, _, disk, disk_start, _, total, size, offset = END64_FORMAT.unpack(record)
        position, zip64 = end64, True
    else:
        zip64 = False
    if disk != 0 or disk_start != 0:
        raise NotAZip("a part of a split (multi-part) archive: join the parts first (zip -s 0 in.zip --out joined.zip)")
    return _End(total, offset, size, position, zip64)


def _directory(file: _File) -> tuple[_End | None, list[_Found] | None, str | None]:
    """The end record and the central directory it points at. The last record whose directory reads wins (bytes after
    it are a padded download, which the size check sees); when none reads, a record that ends the file exactly is the
    archive's own and its directory damaged (the record, where it can be read, and the reason are returned); without
    one, the archive's tail is missing."""
    damaged: tuple[_End | None, list[_Found] | None, str | None] = (None, None, None)
    for position, fields in _end_records(file):
        end = None
        try:
            end = _end(file, position, fields)
            return end, _read_directory(file, end), None
        except _Damaged as exc:
            if damaged[2] is None and position + END_FORMAT.size + fields[7] == file.size:
                damaged = (end, None, str(exc))
    return damaged


def _read_directory(file: _File, end: _End) -> list[_Found]:
    if end.members > MAX_MEMBERS or end.size > MAX_DIRECTORY_BYTES:
        raise NotAZip(f"its directory lists {end.members:,} members in {end.size:,} bytes, more than a release holds "
                      f"({MAX_MEMBERS:,} members, {MAX_DIRECTORY_BYTES:,} bytes): not read")
    if end.offset + end.size > end.position:
        raise _Damaged(f"the central directory would run from byte {end.offset} past its end record")
    data = file.read(end.offset, end.size)
    found: list[_Found] = []
    at = 0
    while at < len(data):
        if data[at : at + 4] != CENTRAL or at + CENTRAL_FORMAT.size > len(data):
            raise _Damaged(f"no directory entry at byte {end.offset + at} (entry {len(found) + 1} of {end.members})")
        (_, made_by, _, flags, method, _, _, crc, csize, usize, name_length, extra_length, comment_length, _, _,
         attributes, local) = CENTRAL_FORMAT.unpack_from(data, at)
        name_at = at + CENTRAL_FORMAT.size
        extra = data[name_at + name_length : name_at + name_length + extra_length]
        saturated = [n for n, v in (("usize", usize), ("csize", csize), ("offset", local)) if v == MASK32]
        zip64, wide = _zip64_fields(extra, saturated)
        name = _decode(data[name_at : name_at + name_length], flags)
        found.append(_Found(name=name, name_length=name_length, kind=_kind(name, made_by >> 8, attributes),
                            offset=wide.get("offset", local), data=-1, csize=wide.get("csize", csize),
                            usize=wide.get("usize", usize), crc=crc, method=method, flags=flags, zip64=zip64))
        at = name_at + name_length + extra_length + comment_length
    if len(found) != end.members:
        raise _Damaged(f"the central directory holds {len(found)} entries, its end record says {end.members}")
    return found


@dataclass
class _Walk:
    """What walking the local headers found: the members (a member the archive's end cuts among them, refused, when
    its header is whole), and how the walk ended: cut off by the archive's end (`cut`), at the central directory, or
    at bytes that are no member header (`corrupt_at`)."""

    found: list[_Found] = field(default_factory=list)
    cut: Truncation | None = None
    at_directory: bool = False
    corrupt_at: str | None = None


def _find_descriptor(file: _File, data: int) -> tuple[int, int, int, int] | None:
    """(crc, compressed size, size, descriptor length) of a member whose sizes follow its data: the first data
    descriptor signature whose compressed size is its distance from the data's start; None when the archive ends
    first."""
    at = data
    while at < file.size:
        chunk = file.read(at, SCAN_STEP + 24)
        hit = chunk.find(DESCRIPTOR)
        while 0 <= hit < SCAN_STEP:
            fields = chunk[hit : hit + 24]
            if len(fields) >= 16 and struct.unpack_from("<I", fields, 8)[0] == at + hit - data:
                crc, csize, usize = struct.unpack_from("<III", fields, 4)
                return crc, csize, usize, 16
            if len(fields) == 24 and struct.unpack_from("<Q", fields, 8)[0] == at + hit - data:
                crc, csize, usize = struct.unpack_from("<IQQ", fields, 4)
                return crc, csize, usize, 24
            hit = chunk.find(DESCRIPTOR, hit + 1)
        at += SCAN_STEP
    return None


def _inflated_length(file: _File, data: int) -> int | None:
    """Where a deflate stream starting at `data` ends (its compressed length), or None when the archive ends first,
    the stream is broken, or it inflates as only a bomb does; its output is discarded in bounded steps."""
    inflater = zlib.decompressobj(-15)
    at, produced = data, 0
    try:
        while not inflater.eof and at < file.size and not _bomb(produced, at - data):
            chunk = file.read(at, SCAN_STEP)
            at += len(chunk)
            while chunk and not inflater.eof:
                produced += len(inflater.decompress(chunk, SCAN_STEP))
                chunk = inflater.unconsumed_tail
    except zlib.error:
        return None
    return at - data - len(inflater.unused_data) if inflater.eof else None


def _descriptor_end(file: _File, member: _Found) -> int | None:
    """Fill in the sizes and CRC of a member that writes them after its data; where it ends, or None when the
    archive ends first."""
    descriptor = _find_descriptor(file, member.data)
    if descriptor is None and member.method == DEFLATED:
        length = _inflated_length(file, member.data)
        if length is not None:  # a descriptor without its (optional) signature
            wide = 8 if member.zip64 else 4
            fields = file.read(member.data + length, 4 + 2 * wide)
            if len(fields) == 4 + 2 * wide:
                crc, _, usize = struct.unpack("<IQQ" if wide == 8 else "<III", fields)
                descriptor = crc, length, usize, len(fields)
    if descriptor is None:
        return None
    member.crc, member.csize, member.usize, length = descriptor
    return member.data + member.csize + length


def _walk(file: _File, directory: int | None = None) -> _Walk:
    """The members found by reading local headers one after the other from the start, as an interrupted download
    holds them: every complete member, and where and how the walk stopped (at the latest where the damaged
    `directory` is said to begin)."""
    walk = _Walk()
    at = 0
    while at < file.size:
        if len(walk.found) >= MAX_MEMBERS:
            raise NotAZip(f"more than {MAX_MEMBERS:,} members before byte {at:,}, more than a release holds: not read")
        if at == directory:
            walk.at_directory = True
            return walk
        head = file.read(at, LOCAL_FORMAT.size)
        if head[:4] in (CENTRAL, END, END64):
            walk.at_directory = True
            return walk
        if head[:4] != LOCAL[: len(head[:4])]:
            walk.corrupt_at = f"no member header at byte {at:,} (found {head[:4].hex()})"
            return walk
        complete = len(walk.found)
        if len(head) < LOCAL_FORMAT.size:
            walk.cut = Truncation(None, None, 0, None, complete, header_at=at)
            return walk
        _, _, flags, method, _, _, crc, csize, usize, name_length, extra_length = LOCAL_FORMAT.unpack(head)
        data = at + LOCAL_FORMAT.size + name_length + extra_length
        raw = file.read(at + LOCAL_FORMAT.size, name_length + extra_length)
        name = _decode(raw[:name_length], flags) if len(raw) >= name_length else None
        try:
            zip64, wide = _zip64_fields(raw[name_length:], ["usize", "csize"] if MASK32 in (csize, usize) else [])
        except _Damaged as exc:
            if data > file.size:  # the extra field itself is cut
                zip64, wide = True, {"csize": -1}
            else:
                walk.corrupt_at = f"member {name!r} at byte {at:,}: {exc}"
                return walk
        descriptor = bool(flags & FLAG_DESCRIPTOR)
        csize = wide.get("csize", csize)
        if data > file.size or name is None:
            known = not descriptor and csize >= 0
            walk.cut = Truncation(None, name, 0, data - file.size + csize if known else None, complete, header_at=at)
            return walk
        member = _Found(name=name, name_length=name_length, kind="dir" if name.endswith("/") else "file",
                        offset=at, data=data, csize=csize, usize=wide.get("usize", usize), crc=crc, method=method,
                        flags=flags, zip64=zip64)
        walk.found.append(member)
        end = _descriptor_end(file, member) if descriptor else data + member.csize
        if end is None or end > file.size:
            present = file.size - data
            walk.cut = Truncation(None, name, min(present, member.csize) if end else present,
                                  end - file.size if end else None, complete, header_at=at)
            member.refuse(None, _cut_reason(walk.cut))
            return walk
        at = end
    walk.cut = Truncation(None, None, None, None, len(walk.found))
    return walk


def _cut_reason(cut: Truncation) -> str:
    if cut.missing is None:
        return (f"cut off: the archive ends {cut.present:,} bytes into its data, before the record of its size that "
                "follows the data")
    return f"cut off: the archive ends {cut.present:,} bytes into its data, {cut.missing:,} bytes short"


def _bomb(size: int, compressed: int) -> bool:
    """Whether `compressed` bytes inflating to `size` is a decompression bomb's ratio."""
    return size > BOMB_FLOOR and size > BOMB_RATIO * max(compressed, 1)


def _refuse_bombs(found: list[_Found]) -> None:
    for m in found:
        if m.kind != "file":
            continue
        if m.usize > MAX_MEMBER_BYTES:
            m.refuse("bomb", f"declares {m.usize:,} bytes, more than any member of a release ({MAX_MEMBER_BYTES:,})")
        elif _bomb(m.usize, m.csize):
            m.refuse("bomb", f"{m.csize:,} compressed bytes would inflate to {m.usize:,}, "
                             f"{m.usize / max(m.csize, 1):,.0f} times as many")


def _refuse_overlaps(found: list[_Found], directory: int) -> None:
    """Members whose data reaches into the next member's local header (an overlapping-member bomb inflates one
    stream under many names) or into the central directory at byte `directory`: all of them, since which is the
    decoy cannot be known. A cut member reaches past the end by nature and is left to the truncation."""
    ordered = sorted((m for m in found if m.refusal is None or m.refused_as is not None), key=lambda m: m.offset)
    for m, following in zip(ordered, [*ordered[1:], None]):
        limit = directory if following is None else following.offset
        if m.offset + LOCAL_FORMAT.size + m.name_length + m.csize > limit:
            other = "the central directory" if following is None else f"member {following.name!r}"
            m.refuse("overlap", f"its data reaches into {other}")
            if following is not None:
                following.refuse("overlap", f"member {m.name!r}'s data reaches into it")


def _top_folder(paths: list[str], case_pattern: str | None) -> str | None:
    """The one folder every member lies in (archiving leftovers beside it aside), which is then the release root;
    unless its name is a case id: an interrupted download whose first case alone arrived, or an archive of one case,
    is not a release inside that case's folder."""
    tops = {p.split("/", 1)[0] for p in paths if p} - set(TOP_LEVEL_JUNK)
    if len(tops) != 1:
        return None
    top = next(iter(tops))
    if case_pattern is not None and re.search(case_pattern, top, re.ASCII):
        return None
    return top if any(p.startswith(f"{top}/") for p in paths) else None


def _refuse_duplicates(found: list[_Found]) -> list[RefusedMember]:
    """Paths that more than one member takes, or a member and a folder: each such member refused, one finding per
    path; the path keeps one entry in the release."""
    by_path: dict[str, list[_Found]] = {}
    for m in found:
        if m.path:  # '' is the root itself: the top folder's own entry, or '.'
            by_path.setdefault(m.path, []).append(m)
    folders: set[str] = set()
    for path in by_path:
        while "/" in path and (path := path.rsplit("/", 1)[0]) not in folders:
            folders.add(path)
    refused = []
    for path, same in by_path.items():
        files = [m for m in same if m.kind != "dir"]
        if files and (len(same) > 1 or path in folders):
            count = f"{len(same)} members" if len(same) > 1 else "a member and a folder"
            reason = f"{count} of this name: which one an unzip tool keeps depends on the tool, so none is read"
            for m in same:
                m.refuse("duplicate", reason)
            refused.append(RefusedMember("duplicate", same[0].name, path, reason))
        for extra in same[1:]:
            extra.path = None
    return refused


class _Index:
    """One archive's members by path in the release: sorted paths, a record array beside them, and refusals."""

    def __init__(self, file: _File, name: str, case_pattern: str | None) -> None:
        self.file = file
        end, directory, directory_error = _directory(file)
        walk, truncation = None, None
        if directory is None:
            if directory_error is None and file.read(0, 4) != LOCAL:
                raise NotAZip("no zip signature at its start or end")
            walk = _walk(file, None if end is None else end.offset)
            if directory_error is None and walk.corrupt_at is None:
                truncation = walk.cut or Truncation(None, None, None, None, len(walk.found))
        found = directory if directory is not None else walk.found
        refused = self._place_all(found, case_pattern)
        _refuse_overlaps(found, end.offset if directory is not None else file.size)
        _refuse_bombs(found)
        refused += _refuse_duplicates(found)
        refused += [RefusedMember(m.refused_as, m.name, m.path, m.refusal) for m in found
                    if m.refused_as in ("bomb", "overlap")]
        if truncation is not None and truncation.name is not None:
            truncation = dataclasses.replace(truncation, path=self._strip(_place(truncation.name)[0]) or None)
        self._build(found)
        self.layout = ArchiveLayout(
            name=name, size=file.size, top_folder=self.top, members=len(found),
            stored=sum(m.method == STORED for m in found), deflated=sum(m.method == DEFLATED for m in found),
            zip64=any(m.zip64 for m in found) or bool(end is not None and end.zip64),
            directory="read" if directory is not None else "walked", directory_error=directory_error,
            corrupt_at=None if walk is None else walk.corrupt_at, truncation=truncation,
            refused=sorted(refused, key=lambda r: (r.path or "", r.name, r.kind)))

    def _strip(self, path: str | None) -> str | None:
        """A path in the archive as a path in the release: the top folder taken off."""
        if path is None or self.top is None or not (path == self.top or path.startswith(f"{self.top}/")):
            return path
        return path[len(self.top) + 1 :]

    def _place_all(self, found: list[_Found], case_pattern: str | None) -> list[RefusedMember]:
        """Every member's path in the release; those that have none (absolute, '..') refused."""
        refused = []
        for m in found:
            m.path, why = _place(m.name)
            if why is not None:
                what = "an absolute name" if why == "absolute" else "a name with '..', which reaches out of the release"
                m.refuse(why, f"{what}: never extracted or read")
                refused.append(RefusedMember(why, m.name, None, m.refusal))
        self.top = _top_folder([m.path for m in found if m.path is not None], case_pattern)
        for m in found:
            m.path = self._strip(m.path)
        return refused

    def _build(self, found: list[_Found]) -> None:
        kept = sorted((m for m in found if m.path), key=lambda m: m.path)
        self.paths = [m.path for m in kept]
        self.records = np.array([(m.offset, m.data, m.csize, m.usize, m.crc, m.method, m.flags, KINDS.index(m.kind))
                                 for m in kept], dtype=RECORD)
        self.refusals = {i: m.refusal for i, m in enumerate(kept) if m.refusal}

    def find(self, path: str) -> int | None:
        i = bisect.bisect_left(self.paths, path)
        return i if i < len(self.paths) and self.paths[i] == path else None

    def is_folder(self, path: str) -> bool:
        if path == "":
            return True
        i = self.find(path)
        if i is not None and KINDS[self.records[i]["kind"]] == "dir":
            return True
        prefix = f"{path}/"
        i = bisect.bisect_left(self.paths, prefix)
        return i < len(self.paths) and self.paths[i].startswith(prefix)

    def children(self, folder: str) -> list[Entry]:
        prefix = f"{folder}/" if folder else ""
        found: dict[str, EntryKind] = {}
        i = bisect.bisect_left(self.paths, prefix)
        while i < len(self.paths) and self.paths[i].startswith(prefix):
            head, below, _ = self.paths[i][len(prefix) :].partition("/")
            child = prefix + head
            if below:
                found[child] = "dir"
                i = bisect.bisect_left(self.paths, f"{child}0", i)  # '0' follows '/': past everything in the folder
                continue
            found.setdefault(child, KINDS[self.records[i]["kind"]])
            i += 1
        return [Entry(path, kind) for path, kind in sorted(found.items())]


# Each process keeps the index of the archives it reads: a forked worker inherits its parent's, another builds its own.
_INDEXES: dict[tuple[str, int, int, int, str | None], _Index] = {}


def _index(path: str, size: int, mtime_ns: int, inode: int, case_pattern: str | None) -> _Index:
    key = (path, size, mtime_ns, inode, case_pattern)
    if key not in _INDEXES:
        if len(_INDEXES) >= 2:
            for old in _INDEXES.values():
                old.file.close()
            _INDEXES.clear()
        _INDEXES[key] = _Index(_File(path, size), Path(path).name, case_pattern)
    return _INDEXES[key]


def _crc_mismatch(recorded: int, size: int, crc: int) -> str:
    return f"zip CRC32 mismatch: the archive records {recorded:08x} for the member, its {size:,} bytes give {crc:08x}"


class _Checked(MemberReader):
    """A member whose bytes, as they are read from its start without a gap, are summed into a CRC32 that verify()
    compares with the archive's record: a member streamed in steps is verified as one read whole is."""

    def __init__(self, size: int, crc: int) -> None:
        self.size, self.recorded = size, crc
        self._crc = self._mark = 0  # the CRC32 of the member's bytes [0, _mark)

    @abstractmethod
    def _read(self, offset: int, length: int) -> bytes: ...

    def read_at(self, offset: int, length: int) -> bytes:
        data = self._read(offset, length)
        if offset <= self._mark < offset + len(data):
            self._crc = deflate.crc32(memoryview(data)[self._mark - offset :], self._crc)
            self._mark = offset + len(data)
        return data

    def verify(self) -> None:
        while self._mark < self.size and self.read_at(self._mark, SCAN_STEP):
            pass
        if self._mark < self.size or self._crc != self.recorded:
            raise SourceError(_crc_mismatch(self.recorded, self.size, self._crc))


class _Range(_Checked):
    """A stored member: its bytes are the archive's, read by position."""

    def __init__(self, file: _File, data: int, size: int, crc: int) -> None:
        super().__init__(size, crc)
        self.file, self.data = file, data

    def _read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        return self.file.read(self.data + offset, length) if length else b""

    def close(self) -> None:
        pass


class _Inflating(_Checked):
    """A deflated member: its start is inflated on demand (a NIfTI header needs a few kilobytes); a later byte inflates
    the whole member with libdeflate when it is small enough to keep, else streams it with zlib in bounded steps. Reads
    at increasing offsets (a stream read in steps) inflate on from where the last one stopped; only a read before
    that restarts from the member's start."""

    def __init__(self, source: ZipSource, path: str, data: int, csize: int, size: int, crc: int) -> None:
        super().__init__(size, crc)
        self.source, self.path, self.data, self.csize = source, path, data, csize
        self._restart()

    def _restart(self) -> None:
        self.inflater = zlib.decompressobj(-15)
        self.consumed = 0  # compressed bytes fed
        self.window = bytearray()  # inflated bytes from window_start on
        self.window_start = 0

    def _read(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        whole = self.source._kept.get(self.path)
        if whole is None and end > HEAD_BYTES and self.size <= WHOLE_BYTES:
            whole = self.source._inflate(self.path)
        if whole is not None:
            return bytes(memoryview(whole)[offset:end])
        if offset < self.window_start:
            self._restart()
        self._inflate_to(offset, end)
        with memoryview(self.window) as window:  # released at once: the window is resized by the next read
            return bytes(window[offset - self.window_start : end - self.window_start])

    def _inflate_to(self, offset: int, end: int) -> None:
        """Inflate on until the window holds [offset, end); what lies before offset is dropped."""
        try:
            while self.window_start + len(self.window) < end:
                pending = self.inflater.unconsumed_tail
                if not pending:
                    if self.inflater.eof or self.consumed >= self.csize:
                        done = self.window_start + len(self.window)
                        raise SourceError(f"the member's deflate data ends after {done:,} of its {self.size:,} bytes")
                    step = min(READ_STEP, self.csize - self.consumed)
                    pending = self.source._file().read(self.data + self.consumed, step)
                    self.consumed += len(pending)
                self.window += self.inflater.decompress(pending, max(READ_STEP, end - offset))
                if self.window_start + len(self.window) > self.size:
                    raise SourceError(f"the member inflates to more than the {self.size:,} bytes it declares")
                drop = min(offset - self.window_start, len(self.window))
                if drop > 0:
                    del self.window[:drop]
                    self.window_start += drop
        except zlib.error as exc:
            raise SourceError(f"the member's deflate data is broken: {exc}") from exc

    def close(self) -> None:
        self.window = bytearray()


class ZipSource(ReleaseSource):
    """The release inside a zip archive, with or without a single top folder (then the release root, unless its name
    matches `case_pattern`: then it is a case). Pickled to workers as the archive's path and identity; each process
    reads the central directory once and keeps it."""

    def __init__(self, path: Path | str, case_pattern: str | None = None) -> None:
        real = Path(path).resolve()
        try:
            st = os.stat(real)
        except OSError as exc:
            raise NotAZip(f"cannot read {path}: {exc.strerror or exc}") from exc
        self.location = str(real)
        self._identity = (self.location, st.st_size, st.st_mtime_ns, st.st_ino, case_pattern)
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        _index(*self._identity)  # NotAZip now, in the caller's process, rather than in every worker

    def __getstate__(self) -> dict:
        return {"location": self.location, "_identity": self._identity}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._kept = OrderedDict()

    @property
    def _index(self) -> _Index:
        return _index(*self._identity)

    def _file(self) -> _File:
        return self._index.file

    def resident_bytes(self) -> int:
        """The archive's index, the deflated members kept for the case's reads, a window for one read in steps."""
        index = self._index
        kept = KEEP_BYTES if index.layout.deflated else 0
        return INDEX_BYTES_PER_MEMBER * len(index.paths) + kept + WINDOW_BYTES

    @property
    def layout(self) -> ArchiveLayout:
        """The archive as a whole: how its members were found, and its refused members."""
        return self._index.layout

    def entries(self, folder: str) -> list[Entry]:
        index = self._index
        return index.children(folder) if index.is_folder(folder) else []

    def _member(self, path: str) -> int:
        index = self._index
        i = index.find(path)
        if i is None:
            if index.is_folder(path):
                raise SourceError("not a regular file")
            raise MemberMissing("no such member")
        kind = KINDS[index.records[i]["kind"]]
        if kind == "symlink":
            raise SourceError("a symbolic link member: links in an archive are never followed")
        if kind != "file":
            raise SourceError("not a regular file")
        if i in index.refusals:
            raise SourceError(index.refusals[i])
        return i

    def stat(self, path: str) -> MemberStat:
        record = self._index.records[self._member(path)]
        # The member's place in the archive stands for an inode: it tells apart members of one archive.
        return MemberStat(size=int(record["usize"]), inode=int(record["offset"]))

    def _data_start(self, record: np.void) -> int:
        """Where a member's data begins, from its local header, which must agree with the central directory."""
        if record["data"] >= 0:
            return int(record["data"])
        offset = int(record["offset"])
        head = self._file().read(offset, LOCAL_FORMAT.size)
        if len(head) < LOCAL_FORMAT.size or head[:4] != LOCAL:
            raise SourceError(f"no local header at byte {offset}, where the central directory puts the member")
        _, _, _, method, *_, name_length, extra_length = LOCAL_FORMAT.unpack(head)
        if method != record["method"]:
            raise SourceError(f"its local header says method {method}, the central directory {record['method']}")
        data = offset + LOCAL_FORMAT.size + name_length + extra_length
        if data + int(record["csize"]) > self._file().size:
            raise SourceError("its data runs past the end of the archive")
        return data

    def open(self, path: str) -> MemberReader:
        record = self._index.records[self._member(path)]
        flags, method = int(record["flags"]), int(record["method"])
        if flags & FLAG_ENCRYPTED:
            raise SourceError("an encrypted member")
        if method not in (STORED, DEFLATED):
            raise SourceError(f"compressed with {METHODS.get(method, f'method {method}')}, which tsqa does not read")
        csize, usize = int(record["csize"]), int(record["usize"])
        if method == STORED and csize != usize:
            raise SourceError(f"a stored member whose sizes differ ({csize:,} and {usize:,} bytes)")
        data = self._data_start(record)
        if method == STORED:
            return _Range(self._file(), data, usize, int(record["crc"]))
        return _Inflating(self, path, data, csize, usize, int(record["crc"]))

    def _inflate(self, path: str) -> bytes:
        """A deflated member inflated whole with libdeflate (its declared size bounds the output), kept for later
        reads when small enough."""
        record = self._index.records[self._member(path)]
        data, csize, usize = self._data_start(record), int(record["csize"]), int(record["usize"])
        raw = self._file().read(data, csize)
        try:
            whole = deflate.deflate_decompress(raw, usize) if usize else b""
        except deflate.DeflateError as exc:
            del raw
            # zlib says where and how it broke, in the words a streamed read of the member would use
            streamed = _Inflating(self, path, data, csize, usize, int(record["crc"]))
            for offset in range(0, usize, SCAN_STEP):
                streamed._inflate_to(offset, min(usize, offset + SCAN_STEP))
            raise SourceError(f"the member's deflate data is broken or inflates to more than the {usize:,} bytes "
                              "it declares") from exc
        if len(whole) != usize:
            raise SourceError(f"the member's deflate data ends after {len(whole):,} of its {usize:,} bytes")
        if usize <= KEEP_BYTES:
            while self._kept and sum(map(len, self._kept.values())) + usize > KEEP_BYTES:
                self._kept.popitem(last=False)
            self._kept[path] = whole
        return whole

    def read(self, path: str, limit: int) -> bytes:
        """A whole member, verified by the CRC32 the archive records for it; SourceError when it does not match."""
        i = self._member(path)
        record = self._index.records[i]
        usize = int(record["usize"])
        if usize > limit:
            raise SourceError(f"{usize} bytes, more than the {limit} allowed")
        if int(record["method"]) == DEFLATED and not int(record["flags"]) & FLAG_ENCRYPTED:
            whole = self._kept.get(path)
            if whole is None:
                whole = self._inflate(path)
        else:
            with self.open(path) as reader:
                whole = reader.read_at(0, usize)
        crc = deflate.crc32(whole)
        if crc != int(record["crc"]):
            raise SourceError(_crc_mismatch(int(record["crc"]), usize, crc))
        return whole
