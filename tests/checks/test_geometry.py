"""geometry: the image's spacing, orientation and affine, and every mask's grid against its image, on literal facts."""

from __future__ import annotations

import numpy as np
from literal import V2, case_facts, context, essentials, header, mask_header, ras, shifted

from qa.checks.geometry import check_case_geometry
from qa.scan.facts import Problem
from qa.scan.itk import Placement

CT = "s0001/ct.nii.gz"
LIVER = "s0001/segmentations/liver.nii.gz"
NAN = float("nan")


def geometry(**facts):
    return check_case_geometry(case_facts(**facts), context())


def sheared() -> list[list[float]]:
    affine = ras()
    affine[0][1] = 0.01
    return affine


def test_clean_case_has_no_geometry_finding() -> None:
    assert geometry() == []


def test_image_of_another_spacing_is_geom_spacing_mismatch() -> None:
    [found] = geometry(image=header(zooms=(1.5, 1.5, 3.0)))
    assert essentials([found]) == [("GEOM_SPACING", "mismatch", "s0001", CT, None, "error")]
    assert found.details == {"spacing": [1.5, 1.5, 3.0], "expected": [1.5, 1.5, 1.5], "tolerance": 0.01}


def test_spacing_within_the_tolerance_is_the_releases() -> None:
    assert geometry(image=header(zooms=(1.5, 1.509, 1.491))) == []


def test_nan_voxel_size_is_geom_spacing_not_finite() -> None:
    # only pixdim is NaN: the affine, from the sform, is sound
    found = geometry(image=header(zooms=(1.5, 1.5, NAN), affine=ras()))
    assert essentials(found) == [("GEOM_SPACING", "not_finite", "s0001", CT, None, "error")]


def test_lps_image_in_a_ras_release_is_geom_orientation() -> None:
    [found] = geometry(image=header(affine=ras((-1.5, -1.5, 1.5))))
    assert essentials([found]) == [("GEOM_ORIENTATION", None, "s0001", CT, None, "error")]
    assert found.details == {"axcodes": ["L", "P", "S"], "expected": ["R", "A", "S"]}


UNTRUSTED = {
    "non_finite": header(affine=ras(origin=(NAN, 0, 0))),
    "singular": header(affine=ras((1.5, 0.0, 1.5))),
    "bad_code": header(sform_code=7),
    "bad_quaternion": header(sform_code=0, qform_error="its quaternion is not a rotation"),
    "no_transform": header(sform_code=0, qform_code=0),
    "sform_qform": header(qform=shifted(ras(), 2.0)),
    "not_orthonormal": header(affine=sheared()),
}


def test_image_affine_that_cannot_be_trusted_is_geom_affine_invalid_saying_why() -> None:
    found = {subcode: essentials(geometry(image=image)) for subcode, image in UNTRUSTED.items()}
    assert found == {subcode: [("GEOM_AFFINE_INVALID", subcode, "s0001", CT, None, "error")] for subcode in UNTRUSTED}


def test_image_with_an_unusable_affine_is_one_finding_and_its_masks_are_not_compared() -> None:
    # the orientation is not judged either: a NaN affine has none
    found = geometry(image=header(affine=ras(origin=(NAN, 0, 0))), masks={"liver": mask_header(affine=ras())})
    assert essentials(found) == [("GEOM_AFFINE_INVALID", "non_finite", "s0001", CT, None, "error")]


def test_masks_are_still_compared_with_an_image_whose_sform_and_qform_disagree() -> None:
    image = header(qform=shifted(ras(), 2.0))
    found = geometry(image=image, masks={"liver": mask_header(image, affine=shifted(ras(), 0.5))})
    assert [(f.code, f.path) for f in found] == [("GEOM_AFFINE_INVALID", CT), ("GEOM_AFFINE_MISMATCH", LIVER)]


def test_mask_shifted_half_a_millimetre_is_affine_mismatch_on_that_mask() -> None:
    # the spleen's half a micrometre is within v2's tolerance of 1 micrometre
    found = geometry(masks={"liver": mask_header(affine=shifted(ras(), 0.5)),
                            "spleen": mask_header(affine=shifted(ras(), 0.0005))})
    assert essentials(found) == [("GEOM_AFFINE_MISMATCH", "both", "s0001", LIVER, "liver", "error")]
    assert (found[0].details["max_deviation_mm"], found[0].details["tolerance_mm"]) == (0.5, 0.001)


def test_affine_deviation_is_the_largest_displacement_of_a_grid_corner() -> None:
    flipped = np.diag([1.5, 1.5, -1.5, 1.0])
    flipped[2, 3] = 7.5  # z runs backwards over the same 6 slices: both affines agree only at the mid-plane
    [found] = geometry(masks={"liver": mask_header(affine=flipped.tolist())})
    assert found.details["max_deviation_mm"] == 7.5


def test_mask_on_another_grid_is_geom_shape_mismatch_and_not_also_an_affine_mismatch() -> None:
    [found] = geometry(masks={"liver": mask_header(shape=(4, 5, 7), affine=shifted(ras(), 3.0))})
    assert essentials([found]) == [("GEOM_SHAPE_MISMATCH", "size", "s0001", LIVER, "liver", "error")]
    assert found.details == {"shape": [4, 5, 7], "image_shape": [4, 5, 6]}


def test_mask_with_a_fourth_axis_is_not_3d_even_when_that_axis_is_one() -> None:
    found = geometry(masks={"spleen": mask_header(shape=(4, 5, 6, 2)), "liver": mask_header(shape=(4, 5, 6, 1))})
    assert essentials(found) == [("GEOM_SHAPE_MISMATCH", "ndim", "s0001", "s0001/segmentations/spleen.nii.gz",
                                  "spleen", "error"),
                                 ("GEOM_SHAPE_MISMATCH", "ndim", "s0001", LIVER, "liver", "error")]
    assert found[1].details == {"shape": [4, 5, 6, 1], "image_shape": [4, 5, 6]}


def test_mask_whose_own_affine_differs_is_also_judged_for_validity() -> None:
    found = geometry(masks={"liver": mask_header(affine=shifted(ras(), 0.5), sform_code=7)})
    assert essentials(found) == [("GEOM_AFFINE_MISMATCH", "both", "s0001", LIVER, "liver", "error"),
                                 ("GEOM_AFFINE_INVALID", "bad_code", "s0001", LIVER, "liver", "error")]


def test_mask_carrying_its_images_affine_is_not_judged_for_validity() -> None:
    # the image's affine was judged already; a bad code on a copy of it would repeat 117 times
    assert geometry(masks={"liver": mask_header(sform_code=7)}) == []


def test_corrupt_image_gives_no_geometry_finding() -> None:
    # FILE_CORRUPT reports it; its masks have nothing to be compared with
    assert geometry(image=Problem("truncated", "stream ends in the header"),
                    masks={"liver": mask_header(shape=(9, 9, 9))}) == []


def test_corrupt_mask_is_not_compared_with_its_image() -> None:
    assert geometry(masks={"liver": Problem("empty", "empty file")}) == []


def itk(affine, transform="sform") -> Placement:
    return Placement(affine=affine, transform=transform)


def test_an_image_itk_places_apart_from_nibabel_is_readers_disagree() -> None:
    image = header(sform_code=2, qform_code=1, qform=ras(), itk=itk(shifted(ras(), 3.0), "qform"))
    found = [f for f in geometry(image=image) if f.subcode == "readers_disagree"]
    assert essentials(found) == [("GEOM_AFFINE_INVALID", "readers_disagree", "s0001", CT, None, "error")]
    assert "ITK reads the qform, nibabel the sform" in found[0].message
    assert (found[0].details["itk_affine"], found[0].details["nibabel_affine"]) == (shifted(ras(), 3.0), ras())


def test_readers_within_the_tolerance_agree() -> None:
    assert geometry(image=header(itk=itk(shifted(ras(), 0.0005)))) == []


def test_an_image_itk_refuses_for_its_version_is_not_readers_disagree() -> None:
    image = header(version=2, itk=Placement(affine=None, transform=None, refusal="no_reader"))
    assert geometry(image=image) == []  # FILE_VERSION's finding, not geometry's


def test_a_mask_only_itk_misplaces_is_an_itk_mismatch_naming_itk() -> None:
    [found] = geometry(masks={"liver": mask_header(itk=itk(shifted(ras(), 40.0), "qform"))})
    assert essentials([found]) == [("GEOM_AFFINE_MISMATCH", "itk", "s0001", LIVER, "liver", "error")]
    assert found.message == f"{LIVER}: ITK places it up to 40 mm from its image (nibabel 0 mm: aligned)"
    assert (found.details["itk_deviation_mm"], found.details["nibabel_deviation_mm"]) == (40.0, 0.0)


def test_a_mask_only_nibabel_misplaces_is_a_nibabel_mismatch() -> None:
    [found] = geometry(masks={"liver": mask_header(affine=shifted(ras(), 0.5), itk=itk(ras(), "qform"))})
    assert essentials([found]) == [("GEOM_AFFINE_MISMATCH", "nibabel", "s0001", LIVER, "liver", "error")]


def test_a_release_read_by_nibabel_alone_does_not_ask_itk() -> None:
    nibabel_only = context(spec=V2.model_copy(update={"readers": ["nibabel"]}))
    case = case_facts(masks={"liver": mask_header(itk=itk(shifted(ras(), 40.0), "qform"))})
    assert check_case_geometry(case, nibabel_only) == []


def test_masks_of_an_image_its_readers_place_apart_are_compared_under_nibabel_only() -> None:
    # ITK reads the image's qform 3 mm away; the masks, written with the sform alone, follow nibabel
    image = header(sform_code=2, qform_code=1, qform=ras(), itk=itk(shifted(ras(), 3.0), "qform"))
    found = geometry(image=image, masks={name: mask_header(itk=itk(ras())) for name in ("liver", "spleen")})
    assert [(f.code, f.path) for f in found] == [("GEOM_AFFINE_INVALID", CT)]
