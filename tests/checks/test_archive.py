"""archive: the zip a release was read from, judged on literal facts: checksum against the spec's published archive,
a cut download, a damaged structure, refused members."""

from __future__ import annotations

import dataclasses

from literal import V2, context, essentials, release_facts

from qa.checks.archive import check_checksum, check_structure
from qa.scan.facts import ArchiveFacts
from qa.source.zip import ArchiveLayout, RefusedMember, Truncation

PUBLISHED = V2.archives[0]  # Totalsegmentator_dataset_v201.zip, its size and MD5


def archive(name: str = PUBLISHED.name, size: int = PUBLISHED.size, md5: str | None = PUBLISHED.md5,
            checksum: str = "computed", error: str | None = None, **layout) -> ArchiveFacts:
    shape = ArchiveLayout(name=name, size=size, top_folder=None, members=145_000, stored=145_000, deflated=0,
                          zip64=True, directory="read")
    return ArchiveFacts(layout=dataclasses.replace(shape, **layout), checksum=checksum, md5=md5, checksum_error=error)


def judged(check, facts: ArchiveFacts | None, spec=V2):
    release = release_facts()
    release.archive = facts
    return check(context(release, spec))


def test_a_folder_has_no_archive_finding() -> None:
    assert judged(check_checksum, None) == [] and judged(check_structure, None) == []


def test_the_published_archive_has_no_finding() -> None:
    assert judged(check_checksum, archive()) == [] and judged(check_structure, archive()) == []


def test_another_size_is_an_error_saying_how_many_bytes_are_missing() -> None:
    (found,) = judged(check_checksum, archive(size=PUBLISHED.size - 1000, md5="0" * 32))
    assert essentials([found]) == [("ARCHIVE_CHECKSUM", "size", None, None, None, "error")]
    assert found.details["missing"] == 1000 and "1,000 bytes missing" in found.message


def test_a_padded_download_has_bytes_too_many() -> None:
    (found,) = judged(check_checksum, archive(size=PUBLISHED.size + 5))
    assert "5 bytes too many" in found.message and found.details["missing"] == -5


def test_the_published_size_with_another_md5_is_a_digest_error() -> None:
    (found,) = judged(check_checksum, archive(md5="f" * 32))
    assert essentials([found]) == [("ARCHIVE_CHECKSUM", "digest", None, None, None, "error")]
    assert (found.details["md5"], found.details["published_md5"]) == ("f" * 32, PUBLISHED.md5)


def test_a_renamed_download_is_matched_by_its_size() -> None:
    (found,) = judged(check_checksum, archive(name="download (1).zip", md5="f" * 32))
    assert found.subcode == "digest" and f"taken for {PUBLISHED.name}" in found.message
    assert judged(check_checksum, archive(name="download (1).zip")) == []


def test_an_archive_the_spec_does_not_publish_is_info() -> None:
    (found,) = judged(check_checksum, archive(name="other.zip", size=12345))
    assert essentials([found]) == [("ARCHIVE_UNVERIFIED", "unknown", None, None, None, "info")]
    assert found.details["published"] == [PUBLISHED.name]


def test_a_published_name_without_size_or_md5_cannot_be_verified() -> None:
    bare = V2.model_copy(update={"archives": [PUBLISHED.model_copy(update={"size": None, "md5": None})]})
    (found,) = judged(check_checksum, archive(), bare)
    assert found.subcode == "unknown"


def test_an_md5_not_computed_is_info_and_says_whether_the_size_matched() -> None:
    (skipped,) = judged(check_checksum, archive(md5=None, checksum="skipped"))
    assert (skipped.code, skipped.subcode, skipped.severity) == ("ARCHIVE_UNVERIFIED", "skipped", "info")
    assert "--no-checksum" in skipped.message and "size matches" in skipped.message
    (failed,) = judged(check_checksum, archive(md5=None, checksum="unreadable", error="read error"))
    assert failed.subcode == "unreadable" and "read error" in failed.message


def test_a_size_published_without_md5_is_verified_by_the_size_alone() -> None:
    spec = V2.model_copy(update={"archives": [PUBLISHED.model_copy(update={"md5": None})]})
    assert judged(check_checksum, archive(md5=None, checksum="skipped"), spec) == []


def test_a_cut_member_is_named_with_the_bytes_there_and_missing() -> None:
    cut = Truncation(path="s0861/ct.nii.gz", name="s0861/ct.nii.gz", present=1000, missing=2500,
                     complete_members=101_234, header_at=9_000_000)
    (found,) = judged(check_structure, archive(size=PUBLISHED.size - 7000, directory="walked", truncation=cut))
    assert essentials([found]) == [("ARCHIVE_TRUNCATED", "member", None, "s0861/ct.nii.gz", None, "error")]
    assert (found.details["present"], found.details["missing"], found.details["archive_missing"]) == (1000, 2500,
                                                                                                     7000)
    assert "the 101,234 members before it are complete and were checked" in found.message


def test_a_cut_member_whose_size_follows_its_data_has_unknown_missing_bytes() -> None:
    cut = Truncation(path="s0861/ct.nii.gz", name="s0861/ct.nii.gz", present=1000, missing=None,
                     complete_members=5, header_at=100)
    (found,) = judged(check_structure, archive(name="x.zip", size=1234, directory="walked", truncation=cut))
    assert "how many are missing cannot be known" in found.message and found.details["archive_missing"] is None


def test_a_cut_between_members_is_a_missing_directory() -> None:
    cut = Truncation(path=None, name=None, present=None, missing=None, complete_members=7)
    (found,) = judged(check_structure, archive(directory="walked", truncation=cut))
    assert essentials([found]) == [("ARCHIVE_TRUNCATED", "directory", None, None, None, "error")]


def test_damage_in_the_directory_and_in_the_members_are_told_apart() -> None:
    found = judged(check_structure, archive(directory="walked", directory_error="no directory entry at byte 9",
                                            corrupt_at="no member header at byte 5"))
    assert [(f.code, f.details["reason"]) for f in found] == [("ARCHIVE_CORRUPT", "no directory entry at byte 9"),
                                                              ("ARCHIVE_CORRUPT", "no member header at byte 5")]
    assert len({f.fingerprint for f in found}) == 2


def test_each_refused_member_is_a_finding_with_its_stored_name() -> None:
    refused = [RefusedMember("parent", "../../x", None, "a name with '..'"),
               RefusedMember("absolute", "/etc/x", None, "an absolute name"),
               RefusedMember("bomb", "s0001/ct.nii.gz", "s0001/ct.nii.gz", "1,000 compressed bytes would inflate ...")]
    found = judged(check_structure, archive(refused=refused))
    assert [(f.subcode, f.path, f.details["name"]) for f in found] == [
        ("parent", None, "../../x"), ("absolute", None, "/etc/x"), ("bomb", "s0001/ct.nii.gz", "s0001/ct.nii.gz")]
    assert len({f.fingerprint for f in found}) == 3
