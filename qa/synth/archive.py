"""Zip archives of a synthetic release, written as releases are published (stored or deflated, with or without a top
folder, ZIP64), and faults that break an archive as downloads and hostile archivers do, each named CODE:subcode after
the finding it makes.

A fault either shapes the members as the archive is written (before its size and MD5 are published in the spec) or
damages the download after publishing, as a cut connection or a padded file would."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qa.rules.spec import Archive, ReleaseSpec
from qa.synth.sample import InjectedFault, Sample, fault_subcode

Method = Literal["stored", "deflated"]
METHODS = {"stored": zipfile.ZIP_STORED, "deflated": zipfile.ZIP_DEFLATED}
COMMENT = b"tsqa sample release"
BOMB_BYTES = 288 << 20  # zeros deflate 1,029:1 at level 9: 288 MiB in 280 KiB
CUT_SHARE = 0.7  # an interrupted download keeps the first 70%


@dataclass
class ZippedSample:
    """A sample written as a zip archive: the file, the spec publishing it in `archives` (as the release's record would;
    without an entry when a fault says so), and the archive faults put into it."""

    path: Path
    spec: ReleaseSpec
    top_folder: str | None
    faults: list[InjectedFault]


@contextlib.contextmanager
def _zip64_always() -> Iterator[None]:
    """zipfile writes ZIP64 records only past 4 GiB or 65,535 members; with its limits at zero every member, offset
    and the end record take the ZIP64 form that a 24 GB release archive has, on a few kilobytes."""
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 0, 0
    try:
        yield
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved


def _symlink(archive: zipfile.ZipFile, name: str, target: str) -> None:
    """A symbolic link member, as `zip --symlinks` stores one: a Unix mode saying link, the target as content."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive.writestr(info, target)


def _members(archive: zipfile.ZipFile, root: Path, prefix: str) -> None:
    """Folders and files in sorted order, as `zip -r --symlinks` adds them; what is neither (a FIFO) is left out."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        here = Path(folder)
        relative = here.relative_to(root).as_posix()
        if relative != ".":
            archive.write(here, f"{prefix}{relative}/")
        for name in sorted(files + [d for d in dirs if (here / d).is_symlink()]):
            path, arcname = here / name, f"{prefix}{(here / name).relative_to(root).as_posix()}"
            if path.is_symlink():
                _symlink(archive, arcname, os.readlink(path))
            elif stat.S_ISREG(path.lstat().st_mode):
                archive.write(path, arcname)


@dataclass(frozen=True)
class Writing:
    """An archive being written, for faults that shape its members: the open archive, the top folder's prefix of
    member names ('' without one), the sample, its spec and the case a fault goes into."""

    archive: zipfile.ZipFile
    prefix: str
    sample: Sample
    spec: ReleaseSpec
    case: str


Shape = Callable[[Writing], list[InjectedFault]]


def zip_release(root: Path, dest: Path, top_folder: str | None = None, method: Method = "deflated",
                zip64: bool = False, shape: Callable[[zipfile.ZipFile, str], list[InjectedFault]] | None = None,
                ) -> list[InjectedFault]:
    """Write the release at `root` as the zip archive `dest`, its members in one top folder or at the archive's root;
    `shape` adds members (given the open archive and the top folder's prefix) before the archive is closed and says
    which faults it made."""
    prefix = f"{top_folder}/" if top_folder else ""
    made: list[InjectedFault] = []
    with contextlib.ExitStack() as stack:
        if zip64:
            stack.enter_context(_zip64_always())
        archive = stack.enter_context(zipfile.ZipFile(dest, "w", METHODS[method], compresslevel=6))
        if top_folder:
            archive.write(root, prefix)
        _members(archive, root, prefix)
        if shape is not None:
            made = shape(archive, prefix)
        archive.comment = COMMENT
    return made


def published(path: Path, top_folder: str | None) -> Archive:
    """The archive as a release's record publishes it: name, size, MD5."""
    md5 = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            md5.update(chunk)
    return Archive(name=path.name, size=path.stat().st_size, md5=md5.hexdigest(), top_folder=top_folder)


# Member faults: what a hostile or careless archiver writes.

def _absolute(writing: Writing) -> list[InjectedFault]:
    writing.archive.writestr(zipfile.ZipInfo("/tmp/tsqa-absolute.txt"), b"written outside the target by naive unzips\n")
    return [InjectedFault("ARCHIVE_MEMBER", None, None)]


def _parent(writing: Writing) -> list[InjectedFault]:
    name = f"{writing.prefix}{writing.case}/../../tsqa-parent.txt"
    writing.archive.writestr(zipfile.ZipInfo(name), b"written beside the target\n")
    return [InjectedFault("ARCHIVE_MEMBER", None, None)]


def _duplicate(writing: Writing) -> list[InjectedFault]:
    """A second member under a mask's name, holding another case's mask: which one an unzip keeps is the tool's
    choice."""
    spec, case = writing.spec, writing.case
    mask = f"{case}/{spec.mask_file('liver' if 'liver' in spec.classes else spec.classes[0])}"
    other = next((c for c in writing.sample.cases if c != case), case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the duplicate name it is asked to write
        other_mask = writing.sample.root / other / mask.split("/", 1)[1]
        writing.archive.writestr(f"{writing.prefix}{mask}", other_mask.read_bytes())
    return [InjectedFault("ARCHIVE_MEMBER", None, mask)]


@functools.cache
def _zeros(size: int) -> bytes:
    return bytes(size)


def _bomb(writing: Writing) -> list[InjectedFault]:
    """288 MiB of zeros deflated at level 9: 280 KiB in the archive, 1,029 times as much inflated."""
    info = zipfile.ZipInfo(f"{writing.prefix}bomb.nii.gz")
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = 9  # zipfile's own per-member level; the public compresslevel is the archive's
    step = 16 << 20
    with writing.archive.open(info, "w") as member:
        for _ in range(BOMB_BYTES // step):
            member.write(_zeros(step))
    return [InjectedFault("ARCHIVE_MEMBER", None, "bomb.nii.gz")]


def _overlap(writing: Writing) -> list[InjectedFault]:
    """A second directory entry pointing at the first's local header: two names, one stream (a non-recursive zip
    bomb repeats this thousands of times)."""
    archive, first_name = writing.archive, f"{writing.prefix}overlap/first.txt"
    archive.writestr(first_name, b"one stream under two names\n" * 64)
    first = archive.getinfo(first_name)
    second = zipfile.ZipInfo(f"{writing.prefix}overlap/second.txt", first.date_time)
    for attribute in ("compress_type", "CRC", "compress_size", "file_size", "header_offset", "external_attr",
                      "create_system", "flag_bits"):
        setattr(second, attribute, getattr(first, attribute))
    archive.filelist.append(second)
    archive.NameToInfo[second.filename] = second
    return [InjectedFault("ARCHIVE_MEMBER", None, "overlap/first.txt"),
            InjectedFault("ARCHIVE_MEMBER", None, "overlap/second.txt")]


# Download faults: what happens to the published archive on its way.

Damage = Callable[[Path, str | None], list[InjectedFault]]


def _cut(path: Path, top_folder: str | None) -> list[InjectedFault]:
    """About the archive's last 30% cut off: the cut falls in the middle of the data of the last member that starts
    before 70% of the file, so that the finding names that member."""
    with zipfile.ZipFile(path) as archive:
        member = max((i for i in archive.infolist() if i.compress_size > 1
                      and i.header_offset < path.stat().st_size * CUT_SHARE), key=lambda i: i.header_offset)
    with path.open("rb") as fh:
        fh.seek(member.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", fh.read(4))
    keep = member.header_offset + 30 + name_length + extra_length + member.compress_size // 2
    os.truncate(path, keep)
    return [InjectedFault("ARCHIVE_TRUNCATED", None,
                          member.filename.removeprefix(f"{top_folder}/" if top_folder else "").rstrip("/"))]


def _directory_start(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return archive.start_dir


def _cut_at_directory(path: Path, top_folder: str | None) -> list[InjectedFault]:
    os.truncate(path, _directory_start(path))
    return [InjectedFault("ARCHIVE_TRUNCATED", None, None)]


def _damage_directory(path: Path, top_folder: str | None) -> list[InjectedFault]:
    """The first directory entry's signature overwritten, as a flipped bit in the file's last megabytes would."""
    with path.open("r+b") as fh:
        fh.seek(_directory_start(path))
        fh.write(b"PK\x00\x00")
    return [InjectedFault("ARCHIVE_CORRUPT", None, None)]


def _pad(path: Path, top_folder: str | None) -> list[InjectedFault]:
    with path.open("ab") as fh:
        fh.write(b"\0" * 1024)
    return [InjectedFault("ARCHIVE_CHECKSUM", None, None)]


def _flip_comment(path: Path, top_folder: str | None) -> list[InjectedFault]:
    """One byte of the archive's comment changed: the size stays, the MD5 does not, every member stays intact."""
    with path.open("r+b") as fh:
        fh.seek(-1, os.SEEK_END)
        last = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([last[0] ^ 0x20]))
    return [InjectedFault("ARCHIVE_CHECKSUM", None, None)]


@dataclass(frozen=True)
class ArchiveFault:
    """One way to break an archive: members shaped while it is written, damage done after it is published, or not
    publishing it at all; what it does, and codes it brings along by its nature."""

    what: str
    shape: Shape | None = None
    damage: Damage | None = None
    publish: bool = True
    collateral: frozenset[str] = frozenset()


def _unknown(path: Path, top_folder: str | None) -> list[InjectedFault]:
    return [InjectedFault("ARCHIVE_UNVERIFIED", None, None)]


ARCHIVE_FAULTS: dict[str, ArchiveFault] = {
    "ARCHIVE_CHECKSUM:size": ArchiveFault("1 KiB of zeros after the archive's end, as a download that wrote on",
                                          damage=_pad),
    "ARCHIVE_CHECKSUM:digest": ArchiveFault("one byte of the archive's comment changed: same size, members intact",
                                            damage=_flip_comment),
    "ARCHIVE_UNVERIFIED:unknown": ArchiveFault("the archive is not in the spec's archives", damage=_unknown,
                                               publish=False),
    "ARCHIVE_TRUNCATED:member": ArchiveFault(
        "the last 30% of the archive cut off, as by an interrupted download", damage=_cut,
        collateral=frozenset({"FILE_CORRUPT", "FILE_MISSING", "CASE_MISSING", "ARCHIVE_CHECKSUM"})),
    "ARCHIVE_TRUNCATED:directory": ArchiveFault("the archive cut where its central directory begins",
                                                damage=_cut_at_directory, collateral=frozenset({"ARCHIVE_CHECKSUM"})),
    "ARCHIVE_CORRUPT": ArchiveFault("the first central directory entry's signature overwritten",
                                    damage=_damage_directory, collateral=frozenset({"ARCHIVE_CHECKSUM"})),
    "ARCHIVE_MEMBER:absolute": ArchiveFault("a member named /tmp/tsqa-absolute.txt", shape=_absolute),
    "ARCHIVE_MEMBER:parent": ArchiveFault("a member named <case>/../../tsqa-parent.txt", shape=_parent),
    "ARCHIVE_MEMBER:duplicate": ArchiveFault("a second member under the case's liver mask's name",
                                             shape=_duplicate, collateral=frozenset({"FILE_CORRUPT"})),
    "ARCHIVE_MEMBER:bomb": ArchiveFault("bomb.nii.gz: 280 KiB inflating to 288 MiB", shape=_bomb,
                                        collateral=frozenset({"FILE_UNEXPECTED"})),
    "ARCHIVE_MEMBER:overlap": ArchiveFault("two directory entries sharing one member's data", shape=_overlap,
                                           collateral=frozenset({"FILE_UNEXPECTED"})),
}
ARCHIVE_FAULT_NAMES = tuple(ARCHIVE_FAULTS)


def zip_sample(sample: Sample, spec: ReleaseSpec, dest: Path, faults: Sequence[str] = (),
               top_folder: str | None = None, method: Method = "deflated", zip64: bool = False) -> ZippedSample:
    """The sample as a zip archive with the named archive faults, and the spec with the archive as published (its
    name, size and MD5 before any download fault), in the last case for faults that need one."""
    unknown = [name for name in faults if name not in ARCHIVE_FAULTS]
    if unknown:
        raise ValueError(f"no archive fault named {', '.join(unknown)}")
    chosen = [(fault_subcode(name), ARCHIVE_FAULTS[name]) for name in faults]

    def shape(archive: zipfile.ZipFile, prefix: str) -> list[InjectedFault]:
        writing = Writing(archive, prefix, sample, spec, sample.cases[-1])
        return [dataclasses.replace(made, subcode=subcode) for subcode, fault in chosen if fault.shape is not None
                for made in fault.shape(writing)]

    made = zip_release(sample.root, dest, top_folder, method, zip64, shape)
    if all(fault.publish for _, fault in chosen):
        spec = spec.model_copy(update={"archives": [*spec.archives, published(dest, top_folder)]})
    made += [dataclasses.replace(damaged, subcode=subcode) for subcode, fault in chosen if fault.damage is not None
             for damaged in fault.damage(dest, top_folder)]
    return ZippedSample(dest, spec, top_folder, made)
