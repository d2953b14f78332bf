"""dtypes: the image's voxel type, and each mask's type and scaling, on literal facts."""

from __future__ import annotations

from literal import case_facts, context, essentials, header, mask_header

from qa.checks.dtypes import check_case_dtypes
from qa.scan.facts import Problem

CT = "s0001/ct.nii.gz"
LIVER = "s0001/segmentations/liver.nii.gz"
SPLEEN = "s0001/segmentations/spleen.nii.gz"


def dtypes(**facts):
    return check_case_dtypes(case_facts(**facts), context())


def test_int16_image_with_uint8_masks_has_no_dtype_finding() -> None:
    assert dtypes() == []


def test_float_image_is_image_dtype() -> None:
    [found] = dtypes(image=header(dtype="float32"))
    assert essentials([found]) == [("IMAGE_DTYPE", None, "s0001", CT, None, "error")]
    assert found.details == {"dtype": "float32", "allowed": ["int16"], "slope": None, "inter": None}


def test_uint16_image_whose_scaling_loads_air_is_still_image_dtype_and_says_so() -> None:
    """The stored type is judged: readers of stored values see air near 0 whatever scl_inter says."""
    [found] = dtypes(image=header(dtype="uint16", slope=1.0, inter=-1024.0))
    assert essentials([found]) == [("IMAGE_DTYPE", None, "s0001", CT, None, "error")]
    assert "(scl_slope 1, scl_inter -1024)" in found.message
    assert (found.details["slope"], found.details["inter"]) == (1.0, -1024.0)


def test_int16_mask_is_label_dtype_dtype_on_that_mask() -> None:
    [found] = dtypes(masks={"liver": mask_header(dtype="int16")})
    assert essentials([found]) == [("LABEL_DTYPE", "dtype", "s0001", LIVER, "liver", "error")]
    assert found.details == {"dtype": "int16", "allowed": ["uint8"]}


def test_mask_scaling_that_changes_0_or_1_is_label_dtype_scaling_on_that_mask() -> None:
    found = dtypes(masks={"spleen": mask_header(slope=0.5), "liver": mask_header(inter=1.0)})
    assert essentials(found) == [("LABEL_DTYPE", "scaling", "s0001", SPLEEN, "spleen", "error"),
                                 ("LABEL_DTYPE", "scaling", "s0001", LIVER, "liver", "error")]
    assert [f.details for f in found] == [
        {"slope": 0.5, "inter": None, "zero_loads_as": 0.0, "one_loads_as": 0.5},
        {"slope": None, "inter": 1.0, "zero_loads_as": 1.0, "one_loads_as": 2.0},
    ]


def test_identity_scaling_written_out_is_no_finding() -> None:
    assert dtypes(masks={"liver": mask_header(slope=1.0, inter=0.0)}) == []


def test_scaling_of_the_image_is_not_judged() -> None:
    # CT values are commonly stored with a rescale; only binary masks must load as stored
    assert dtypes(image=header(slope=1.0, inter=-1024.0)) == []


def test_mask_of_wrong_type_and_scaling_is_two_findings() -> None:
    found = dtypes(masks={"liver": mask_header(dtype="float32", slope=0.5)})
    assert [(f.code, f.subcode, f.path) for f in found] == [("LABEL_DTYPE", "dtype", LIVER),
                                                             ("LABEL_DTYPE", "scaling", LIVER)]


def test_corrupt_files_are_not_judged_for_their_types() -> None:
    assert dtypes(image=Problem("bad_header", "magic"), masks={"liver": Problem("empty", "empty file")}) == []
