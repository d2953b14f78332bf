"""Checks of the zip archive a release was read from, as a whole: its size and MD5 against the published ones, a
download cut off, a damaged structure, members that are never read. Their findings belong to no case."""

from __future__ import annotations

from qa.checks.base import Context, check, finding
from qa.rules.finding import Finding
from qa.rules.spec import ReleaseSpec
from qa.scan.facts import ArchiveFacts


@check("archive.checksum", ("ARCHIVE_CHECKSUM", "ARCHIVE_UNVERIFIED"), scope="release")
def check_checksum(ctx: Context) -> list[Finding]:
    archive = ctx.facts.archive
    if archive is None:
        return []
    spec, layout = ctx.spec, archive.layout
    name, size = layout.name, layout.size
    entry = spec.published_archive(name, size)
    if entry is None or (entry.size is None and entry.md5 is None):
        known = ", ".join(a.name for a in spec.archives) or "none"
        return [finding(spec, "ARCHIVE_UNVERIFIED", None, None, f"{name}: the spec {spec.id} publishes no size or MD5 "
                        f"for an archive of this name or size (it lists: {known}), so the download cannot be verified",
                        subcode="unknown", archive=name, size=size, published=[a.name for a in spec.archives])]
    renamed = "" if entry.name == name else f" (taken for {entry.name}, which has its size)"
    published = {"archive": name, "published_name": entry.name, "size": size, "published_size": entry.size,
                 "md5": archive.md5, "published_md5": entry.md5}
    if entry.size is not None and entry.size != size:
        gap = entry.size - size
        differs = f"{gap:,} bytes missing" if gap > 0 else f"{-gap:,} bytes too many"
        return [finding(spec, "ARCHIVE_CHECKSUM", None, None, f"{name} is {size:,} bytes, the published archive "
                        f"{entry.size:,}: {differs}", subcode="size", missing=gap, **published)]
    if entry.md5 is None:
        return []
    if archive.md5 is None:
        return [_unverified(spec, archive, entry.size is not None, published)]
    if archive.md5 != entry.md5:
        return [finding(spec, "ARCHIVE_CHECKSUM", None, None, f"{name}{renamed}: MD5 {archive.md5}, the published "
                        f"archive's is {entry.md5}: bytes differ somewhere although the size matches",
                        subcode="digest", **published)]
    return []


def _unverified(spec: ReleaseSpec, archive: ArchiveFacts, size_compared: bool, published: dict) -> Finding:
    name = archive.layout.name
    size = "its size matches the published one" if size_compared else "no size is published to compare"
    if archive.checksum == "skipped":
        message = f"{name}: MD5 not computed (--no-checksum); {size}"
    else:
        message = f"{name}: MD5 not computed: {archive.checksum_error}; {size}"
    return finding(spec, "ARCHIVE_UNVERIFIED", None, None, message, subcode=archive.checksum, **published)


@check("archive.structure", ("ARCHIVE_TRUNCATED", "ARCHIVE_CORRUPT", "ARCHIVE_MEMBER"), scope="release")
def check_structure(ctx: Context) -> list[Finding]:
    archive = ctx.facts.archive
    if archive is None:
        return []
    spec, layout = ctx.spec, archive.layout
    found = []
    cut = layout.truncation
    if cut is not None:
        entry = spec.published_archive(layout.name, layout.size)
        short = None if entry is None or entry.size is None else entry.size - layout.size
        whole = "" if short is None else f"; the archive lacks {short:,} bytes of the published {entry.size:,}"
        complete = f"the {cut.complete_members:,} members before it are complete and were checked"
        if cut.header_at is None:
            message = (f"{layout.name} ends after its last complete member without the central directory: "
                       f"{complete}, more may have followed{whole}")
            subcode = "directory"
        else:
            member = cut.path or cut.name or f"the member at byte {cut.header_at:,}, in its name"
            missing = ("how many are missing cannot be known (its size is written after its data)"
                       if cut.missing is None else f"{cut.missing:,} missing")
            message = (f"{layout.name} is cut off in {member}: {cut.present or 0:,} bytes of its data are there, "
                       f"{missing}; {complete}{whole}")
            subcode = "member"
        found.append(finding(spec, "ARCHIVE_TRUNCATED", None, cut.path, message, subcode=subcode, name=cut.name,
                             header_at=cut.header_at, present=cut.present, missing=cut.missing,
                             complete_members=cut.complete_members, archive_missing=short))
    damage = (("directory", layout.directory_error, "its members were found by walking their local headers instead"),
              ("members", layout.corrupt_at, "members after it are not checked"))
    for where, reason, consequence in damage:
        if reason is not None:
            found.append(finding(spec, "ARCHIVE_CORRUPT", None, None, f"{layout.name}: {reason}; {consequence}",
                                 key=where, reason=reason))
    for refused in layout.refused:
        found.append(finding(spec, "ARCHIVE_MEMBER", None, refused.path, f"{refused.name!r}: {refused.reason}",
                             subcode=refused.kind, key=refused.name, name=refused.name, reason=refused.reason))
    return found
