"""files: case folders against meta.csv, expected and unexpected entries, corrupt files, on literal facts."""

from __future__ import annotations

from literal import V2, case_facts, context, essentials, file_facts, header, mask_header, meta_csv, release_facts, row

from qa.checks.files import check_case_files, check_root
from qa.scan.facts import Problem

CT = "s0001/ct.nii.gz"
LIVER = "s0001/segmentations/liver.nii.gz"


def case_findings(**facts):
    return check_case_files(case_facts(**facts), context())


def root_findings(facts, spec=V2):
    return check_root(context(facts, spec))


def test_clean_case_has_no_file_finding() -> None:
    assert case_findings() == []


def test_missing_mask_is_file_missing_on_that_mask() -> None:
    found = case_findings(absent=["segmentations/liver.nii.gz"])
    assert essentials(found) == [("FILE_MISSING", "file", "s0001", LIVER, "liver", "error")]


def test_missing_image_is_file_missing_of_no_class() -> None:
    found = case_findings(absent=["ct.nii.gz"])
    assert essentials(found) == [("FILE_MISSING", "file", "s0001", CT, None, "error")]


def test_missing_mask_folder_is_one_finding_for_all_its_masks() -> None:
    [found] = case_findings(absent=["segmentations"])
    assert essentials([found]) == [("FILE_MISSING", "folder", "s0001", "s0001/segmentations", None, "error")]
    assert found.details == {"missing_files": 117, "entry": None}


def test_a_mask_folder_that_is_a_link_is_named_as_one() -> None:
    [found] = case_findings(absent=["segmentations"], extra={"segmentations": "symlink"})
    assert essentials([found]) == [("FILE_MISSING", "folder", "s0001", "s0001/segmentations", None, "error")]
    assert found.message == "s0001/segmentations/ is a symbolic link, not a folder: none of its 117 masks is checked"


def test_entries_the_spec_does_not_expect_in_a_case_are_file_unexpected_by_kind() -> None:
    found = case_findings(extra={"segmentations/._liver.nii.gz": "file", "__MACOSX": "dir",
                                 "ct_original.nii.gz": "symlink", "segmentations/liver_old.nii.gz": "file"})
    assert essentials(found) == [
        ("FILE_UNEXPECTED", "os_junk", "s0001", "s0001/__MACOSX", None, "warning"),
        ("FILE_UNEXPECTED", "link", "s0001", "s0001/ct_original.nii.gz", None, "warning"),
        ("FILE_UNEXPECTED", "os_junk", "s0001", "s0001/segmentations/._liver.nii.gz", None, "warning"),
        ("FILE_UNEXPECTED", "unknown", "s0001", "s0001/segmentations/liver_old.nii.gz", None, "warning"),
    ]
    assert [f.details for f in found] == [{"entry": "dir"}, {"entry": "symlink"}, {"entry": "file"}, {"entry": "file"}]


def test_corruption_the_scan_found_is_file_corrupt_with_its_kind_as_subcode() -> None:
    # the first five classes of the spec, in its order
    kinds = {"spleen": "unreadable", "kidney_right": "empty", "kidney_left": "not_gzip", "gallbladder": "truncated",
             "liver": "bad_header"}
    found = case_findings(masks={name: Problem(kind, f"{kind}, as the scan found") for name, kind in kinds.items()})
    assert essentials(found) == [("FILE_CORRUPT", kind, "s0001", f"s0001/segmentations/{name}.nii.gz", name, "error")
                                 for name, kind in kinds.items()]
    assert found[0].details == {"reason": "unreadable, as the scan found", "size": 100, "isize": None}


def test_corrupt_image_is_file_corrupt_of_no_class() -> None:
    found = case_findings(image=Problem("not_gzip", "not gzip (no gzip magic bytes)"))
    assert essentials(found) == [("FILE_CORRUPT", "not_gzip", "s0001", CT, None, "error")]


def test_header_with_more_voxels_than_the_spec_allows_is_absurd_size() -> None:
    found = case_findings(masks={"liver": mask_header(shape=(1001, 1000, 1000))})
    assert essentials(found) == [("FILE_CORRUPT", "absurd_size", "s0001", LIVER, "liver", "error")]


def test_header_with_more_bytes_than_the_spec_allows_is_absurd_size() -> None:
    # 600 million voxels are allowed, but as float64 they are 4.8 GB, more than max_bytes (4 GiB)
    [found] = case_findings(image=header(shape=(1000, 1000, 600), dtype="float64"))
    assert (found.code, found.subcode, found.path) == ("FILE_CORRUPT", "absurd_size", CT)
    assert "4800000000 bytes" in found.details["reason"]


def test_gzip_trailer_disagreeing_with_the_header_is_size_mismatch() -> None:
    # the header declares 352 + 4 * 5 * 6 = 472 bytes
    [found] = case_findings(masks={"liver": file_facts(LIVER, mask_header(), isize=471)})
    assert essentials([found]) == [("FILE_CORRUPT", "size_mismatch", "s0001", LIVER, "liver", "error")]
    assert found.details["isize"] == 471


def test_gzip_trailer_of_a_file_over_4_gib_is_compared_modulo_2_to_the_32() -> None:
    roomy = V2.model_copy(update={"geometry": V2.geometry.model_copy(update={"max_voxels": 2_000_000_000})})
    image = header(shape=(1024, 1024, 1024), dtype="float32")  # 2^32 data bytes, after a 352-byte header
    case = case_facts(image=file_facts(CT, image, isize=352))
    assert check_case_files(case, context(spec=roomy)) == []


def test_mask_entry_that_is_not_a_regular_file_is_corrupt_unreadable() -> None:
    # a folder named like the mask: the scan lists it but reads no facts from it
    case = case_facts(extra={"segmentations/liver.nii.gz": "dir"})
    del case.files[LIVER]
    [found] = check_case_files(case, context())
    assert essentials([found]) == [("FILE_CORRUPT", "unreadable", "s0001", LIVER, "liver", "error")]
    assert found.details["reason"] == "not a regular file"


def test_release_whose_folders_match_meta_csv_has_no_root_finding() -> None:
    assert root_findings(release_facts(["s0001", "s0002"])) == []


def test_case_listed_in_meta_csv_without_a_folder_is_case_missing() -> None:
    facts = release_facts(["s0001"], meta_csv_text=meta_csv(row("s0001"), row("s0002")))
    assert essentials(root_findings(facts)) == [("CASE_MISSING", None, "s0002", "s0002", None, "error")]


def test_case_folder_not_listed_in_meta_csv_is_case_unlisted() -> None:
    facts = release_facts(["s0001", "s0002"], meta_csv_text=meta_csv(row("s0001")))
    assert essentials(root_findings(facts)) == [("CASE_UNLISTED", None, "s0002", "s0002", None, "error")]


def test_entries_at_the_root_that_are_no_case_are_file_unexpected_of_no_case() -> None:
    junk = {"._meta.csv": "file", "README.txt": "file", "s0002": "symlink", "s01": "dir"}
    found = root_findings(release_facts(["s0001"], root_extra=junk))
    assert essentials(found) == [("FILE_UNEXPECTED", "os_junk", None, "._meta.csv", None, "warning"),
                                 ("FILE_UNEXPECTED", "unknown", None, "README.txt", None, "warning"),
                                 ("FILE_UNEXPECTED", "link", None, "s0002", None, "warning"),
                                 ("FILE_UNEXPECTED", "unknown", None, "s01", None, "warning")]


def test_root_name_matching_root_extra_allowed_is_expected() -> None:
    spec = V2.model_copy(update={"root_extra_allowed": ["LICENSE*"]})
    assert root_findings(release_facts(["s0001"], root_extra={"LICENSE.txt": "file"}), spec) == []


def test_without_a_readable_meta_csv_folders_are_not_compared_with_it() -> None:
    facts = release_facts(["s0001"], meta_csv_text=None, root_extra={"junk": "file"})
    assert essentials(root_findings(facts)) == [("FILE_UNEXPECTED", "unknown", None, "junk", None, "warning")]


def test_a_nifti2_mask_in_a_nifti1_release_is_file_version_on_that_mask() -> None:
    [found] = case_findings(masks={"liver": mask_header(version=2)})
    assert essentials([found]) == [("FILE_VERSION", None, "s0001", "s0001/segmentations/liver.nii.gz", "liver",
                                    "error")]
    assert found.details == {"version": 2, "allowed": [1]}
