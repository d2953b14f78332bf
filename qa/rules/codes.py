"""The finding codes: tsqa's public contract, each with its default severity, subcodes, pass and explanation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}
# The pass that sees a finding: quick reads headers and gzip trailers, deep also decompresses every byte.
Pass = Literal["quick", "deep"]


@dataclass(frozen=True)
class Subcode:
    """A variant of a code: waivers, severities (`CODE:subcode`) and CI rules can single it out."""

    name: str
    meaning: str
    needs: Pass | None = None  # None: the pass of its code


@dataclass(frozen=True)
class Code:
    """One finding code. A code with subcodes gives every finding one of them; a code without gives none."""

    code: str
    severity: Severity
    title: str
    what: str
    why: str
    fix: str
    needs: Pass = "quick"
    subcodes: tuple[Subcode, ...] = ()

    def subcode(self, name: str) -> Subcode | None:
        return next((s for s in self.subcodes if s.name == name), None)


_CODES = [
    Code(
        "META_MISSING", "error", "meta.csv is missing",
        "The release root has no metadata table (the spec's meta.file, meta.csv for TotalSegmentator).",
        "Without it no case has a split, age or scanner, and nobody can tell which case folders belong to the release.",
        "Restore meta.csv from the release archive; check that the path points at the release root, not a parent "
        "folder.",
    ),
    Code(
        "META_UNREADABLE", "error", "meta.csv cannot be parsed",
        "meta.csv does not decode with the spec's encoding, has no header line, its header does not use the "
        "spec's separator, its rows cannot be parsed, or it is far wider than a metadata table (more than 1,000 "
        "columns, or a cell of more than 1,000 characters).",
        "Every reader of the release (pandas, nnU-Net converters) will fail or read one giant column.",
        "Save the file as UTF-8 (with BOM for TotalSegmentator) and separate columns with the spec's separator (';').",
        subcodes=(
            Subcode("unreadable", "meta.csv is not a regular file inside the release, or reading it failed"),
            Subcode("too_large", "meta.csv is larger than a metadata table can be"),
            Subcode("encoding", "the bytes do not decode with the spec's encoding"),
            Subcode("no_header", "the file has no header line"),
            Subcode("separator", "the header line does not use the spec's separator"),
            Subcode("parse", "the rows cannot be parsed as separated values"),
            Subcode("too_wide", "more columns (1,000) or a longer cell (1,000 characters) than a metadata table has; "
                                "refused before parsing it, so that such a file cannot cost minutes and a huge report"),
        ),
    ),
    Code(
        "META_COLUMNS", "error", "meta.csv columns differ from the spec",
        "A column the spec requires is absent (error), or a column the spec does not know is present (warning). "
        "details.missing / details.unknown list them.",
        "Code that reads meta.csv by column name breaks on a missing column; an unknown column often means a wrong "
        "spec or a typo.",
        "Add the missing column (empty values are allowed where the spec says nullable); rename or drop unknown "
        "columns, "
        "or use a spec for the right release.",
        subcodes=(
            Subcode("missing", "a column the spec requires is absent"),
            Subcode("unknown", "a column the spec does not know is present"),
        ),
    ),
    Code(
        "META_VALUE", "error", "a meta.csv cell breaks its column's rule",
        "One cell fails the rule of its column: wrong type, empty where not nullable, not an allowed value, not "
        "matching "
        "the pattern, or out of range. details give row (the line in the file), column, value and the rule that "
        "failed.",
        "Splits, ages and sexes drive training splits and subgroup statistics; one bad cell silently moves a case.",
        "Correct the value in meta.csv at the given line.",
        subcodes=(
            Subcode("empty", "an empty cell in a column that may not be empty"),
            Subcode("type", "not an integer or not a number where the column needs one"),
            Subcode("range", "a number below the column's min or above its max"),
            Subcode("allowed", "not one of the column's allowed values"),
            Subcode("pattern", "not matching the column's pattern"),
        ),
    ),
    Code(
        "META_NORMALIZED", "info", "a meta.csv cell was accepted after normalisation",
        "A cell of a column marked `normalize` only passes its rule after stripping, collapsing double spaces or "
        "lower-casing "
        "(e.g. 'CT Polytrauma ' or 'ct  operation'). details give the raw and the normalised value.",
        "Grouping by such a column splits one value into several spellings.",
        "Rewrite the cell in its normalised form.",
    ),
    Code(
        "META_DUPLICATE_ID", "error", "an image id is listed more than once",
        "The id column of meta.csv has the same id on several rows. details give the id and the lines.",
        "Two rows for one case can disagree on split or metadata; joins on the id multiply rows.",
        "Keep one row per case.",
    ),
    Code(
        "META_SPLIT_COUNTS", "error", "split sizes differ from the release's",
        "The number of cases per split in meta.csv differs from the spec's expected counts. Skipped with --subset.",
        "A split that lost or gained cases makes published results incomparable and usually means an incomplete copy.",
        "Compare with the published release; if you check a partial copy on purpose, pass --subset.",
        subcodes=(
            Subcode("total", "the number of rows differs from the release's case count"),
            Subcode("splits", "the cases per split differ from the release's"),
        ),
    ),
    Code(
        "CASE_MISSING", "error", "a case listed in meta.csv has no folder",
        "meta.csv lists an image id but the release root has no folder of that name.",
        "Training on the release silently uses fewer cases than documented; incomplete downloads look exactly like "
        "this.",
        "Re-extract or re-download the case; otherwise remove its row from meta.csv.",
    ),
    Code(
        "CASE_UNLISTED", "error", "a case folder is not listed in meta.csv",
        "The release root has a case folder (named like a case) whose id meta.csv does not list.",
        "The case has no split and no metadata; loaders that glob folders use it, loaders that read meta.csv do not.",
        "Add its row to meta.csv or remove the folder.",
    ),
    Code(
        "FILE_MISSING", "error", "an expected file is absent",
        "A case lacks its image or the mask of a class that the spec lists. One finding per missing file.",
        "TotalSegmentator ships one mask per class for every case, empty or not; a missing mask breaks converters "
        "and reads as 'structure absent' to the careless.",
        "Restore the file from the release archive; if the class is truly absent, ship an empty mask.",
        subcodes=(
            Subcode("file", "one expected file is absent"),
            Subcode("folder", "a case's mask folder is absent, so all its masks are"),
        ),
    ),
    Code(
        "FILE_UNEXPECTED", "warning", "an unexpected file or folder",
        "A file or folder that the spec does not expect: unknown mask names, stray copies, macOS junk ('._*', "
        "'.DS_Store', "
        "'__MACOSX'), folders at the root that are not cases, a symbolic link, or a name that is not valid UTF-8 or "
        "holds control characters (reported with those bytes escaped as \\xNN).",
        "Junk inflates the release; an unknown mask name usually means a renamed class that loaders will skip.",
        "Delete the junk; rename masks to the spec's class names, or check with the spec of the right release; "
        "rename a badly named file with its escaped bytes (e.g. mv $'notes_\\xe9.txt' notes.txt).",
        subcodes=(
            Subcode("os_junk", "operating-system leftovers: macOS resource forks and folder metadata, Windows "
                               "thumbnails"),
            Subcode("link", "a symbolic link where a file or folder is expected"),
            Subcode("unknown", "a file or folder the spec does not expect"),
            Subcode("bad_name", "a name that is not valid UTF-8 or holds control characters; the report shows its "
                                "bytes escaped (\\xe9, \\x1b)"),
        ),
    ),
    Code(
        "FILE_CORRUPT", "error", "a file is not a readable NIfTI",
        "The file is empty, not gzip, truncated, has an unreadable or absurd NIfTI header, is not a regular file, is "
        "a link "
        "leaving the release, or the size its header declares differs from the size in the gzip trailer (ISIZE, "
        "modulo 2^32) or is more than the file can hold. ISIZE is the size of the last gzip member only: when it "
        "disagrees, the quick pass reads the stream through once, so that a valid file of several members (which gzip "
        "and nibabel read as one stream) is no finding and a truncated or padded one says where it breaks. "
        "The deep pass also decompresses every byte of every member: a CRC32 or length mismatch anywhere, a broken "
        "later member, or data shorter than "
        "the header says, is found only there (a header can look perfect over a broken stream). The subcode says "
        "which kind, "
        "details.reason the exact problem.",
        "A training job crashes on it hours in, or, worse, a tool reads garbage silently.",
        "Re-extract the file from the archive (avoid macOS Archive Utility), or re-download the case.",
        subcodes=(
            Subcode("unreadable", "not a regular file, a link leaving the release or dangling, or a read error"),
            Subcode("empty", "a file of 0 bytes"),
            Subcode("not_gzip", "named .gz but without gzip's magic bytes"),
            Subcode("truncated", "the gzip stream ends before the end of the NIfTI header"),
            Subcode("bad_header", "no usable NIfTI header: the stream breaks in it, or its size, magic, dimensions, "
                                  "data type or vox_offset are wrong"),
            Subcode("absurd_size", "the header declares more voxels or bytes than geometry.max_voxels or max_bytes, "
                                   "or a vox_offset past max_bytes"),
            Subcode("size_mismatch", "the header's size differs from the gzip stream's (its trailer, or its members "
                                     "read through) or is more than the file can hold: truncated, padded, trailing "
                                     "garbage or a wrong header"),
            Subcode("stream", "decompressing every byte of every gzip member fails: CRC32, length, broken deflate "
                              "data, a broken later member, bytes after the last member, or data shorter than "
                              "declared", "deep"),
        ),
    ),
    Code(
        "FILE_VERSION", "error", "a file's NIfTI version is not one the release's readers open",
        "The file is NIfTI-2 (or NIfTI-1) where the spec's nifti_versions does not allow it. ITK 5.4 (SimpleITK 2.5, "
        "hence TotalSegmentator, nnU-Net and 3D Slicer) opens NIfTI-1 only: 'Unable to determine ImageIO reader'. "
        "details give the version and the versions allowed.",
        "nibabel reads the file, so it passes every nibabel-based check and breaks the first ITK-based pipeline.",
        "Save the file as NIfTI-1 (nibabel: nib.Nifti1Image(data, affine, header) from the NIfTI-2 image).",
    ),
    Code(
        "GEOM_SHAPE_MISMATCH", "error", "a mask's grid shape differs from its image's",
        "The mask's voxel dimensions are not those of the case's image (size), or the mask is not 3-D: its header "
        "has a fourth axis, (x, y, z, 1) (ndim). Both are seen in the header, in quick mode. details give both "
        "shapes.",
        "Voxel-wise training pairs image and mask arrays directly; a different shape crashes or misaligns every "
        "sample. A 4-D mask crashes the plainest use of it: nibabel keeps the axis, and ct[mask > 0] raises an "
        "IndexError.",
        "Resample the mask onto the image grid (nearest neighbour), or regenerate it from the source segmentation; "
        "save a 4-D mask again from its 3-D array (nib.Nifti1Image(data[..., 0], affine, header)).",
        subcodes=(
            Subcode("size", "the mask's first three dimensions differ from its image's"),
            Subcode("ndim", "the mask has more than three axes, e.g. (x, y, z, 1), on its image's grid"),
        ),
    ),
    Code(
        "GEOM_AFFINE_MISMATCH", "error", "a mask's affine differs from its image's",
        "A reader places the mask's grid more than geometry.affine_tolerance_mm away from where it places the image's. "
        "Each of the spec's readers is asked: nibabel (its affine: the sform, else the qform) and ITK (ITK 5.4's "
        "rules: voxel sizes from pixdim, the qform when a sform_code other than 1 comes with a differing qform). The "
        "subcode names who misplaces the mask; details give each reader's largest corner displacement "
        "(nibabel_deviation_mm, itk_deviation_mm) and the affines.",
        "Tools that respect world coordinates shift the mask against the image, or refuse to combine them. A mask only "
        "ITK misplaces looks aligned in nibabel-based tools and is silently off in TotalSegmentator, nnU-Net and 3D "
        "Slicer.",
        "Copy the image's header (sform, qform with its code, pixdim) into the mask's; the voxel data need not change "
        "if the shapes agree.",
        subcodes=(
            Subcode("both", "nibabel and ITK alike put the mask away from its image"),
            Subcode("itk", "only ITK does: its qform, or pixdim against the sform's columns, differs from the image's"),
            Subcode("nibabel", "only nibabel does: the sform it uses differs, while ITK reads a matching qform"),
        ),
    ),
    Code(
        "GEOM_SPACING", "error", "the image's voxel spacing is not the release's",
        "The image's voxel size (pixdim) differs from geometry.spacing by more than geometry.spacing_tolerance. "
        "details give the measured and the expected spacing.",
        "The release promises one spacing; models trained without resampling learn the wrong scale.",
        "Resample the case to the release spacing, or fix the spec if the release mixes spacings on purpose.",
        subcodes=(
            Subcode("mismatch", "a finite spacing that differs from the release's"),
            Subcode("not_finite", "a voxel size that is NaN or infinite"),
        ),
    ),
    Code(
        "GEOM_ORIENTATION", "error", "the image's axis codes are not the release's",
        "The orientation of the image's affine (nibabel.aff2axcodes) is not geometry.axcodes, e.g. LPS in a RAS "
        "release.",
        "Left and right classes swap, and pipelines that assume one orientation flip the anatomy.",
        "Reorient the image and its masks together (nibabel.as_closest_canonical) and rewrite both headers.",
    ),
    Code(
        "GEOM_AFFINE_INVALID", "error", "the affine cannot be trusted",
        "Non-finite or singular affine, neither sform nor qform set, a transform code outside NIfTI's 0 to 5, a qform "
        "whose quaternion is not a rotation, sform and qform that disagree beyond the affine tolerance, direction "
        "cosines that are not orthonormal within geometry.orthonormal_tolerance (1e-4, where ITK 5.4 starts refusing: "
        "it tests max |R R^T - I| elementwise in float32 and, failing it, reads the qform or, without one, refuses the "
        "file with 'ITK only supports orthonormal direction cosines'), or an image that nibabel and ITK place apart by "
        "more than the affine tolerance. The subcode says which, details give the number. Checked on the image, and on "
        "a mask only where its placement differs from the image's.",
        "ITK, SimpleITK and 3D Slicer refuse non-orthonormal direction cosines; tools disagree about which of two "
        "disagreeing transforms to use, so one release looks aligned in one tool and is misplaced in another.",
        "Rewrite the header with an orthonormalised rotation (e.g. from the qform), matching sform and qform, and "
        "pixdim equal to the lengths of the sform's columns.",
        subcodes=(
            Subcode("non_finite", "the affine has NaN or infinite entries"),
            Subcode("singular", "the affine's rotation and scaling part is singular"),
            Subcode("bad_code", "a transform code outside NIfTI's 0 to 5"),
            Subcode("bad_quaternion", "the only transform is a qform whose quaternion is not a rotation"),
            Subcode("no_transform", "neither sform nor qform is set"),
            Subcode("sform_qform", "sform and qform disagree beyond geometry.affine_tolerance_mm"),
            Subcode("not_orthonormal", "direction cosines off orthonormal beyond geometry.orthonormal_tolerance: ITK "
                                       "refuses the file, or reads the qform instead when there is one"),
            Subcode("readers_disagree", "nibabel and ITK place the image's grid apart: ITK reads the qform, or takes "
                                        "voxel sizes from pixdim where nibabel takes the sform's columns"),
        ),
    ),
    Code(
        "IMAGE_DTYPE", "error", "the image's stored data type is not allowed",
        "The image's stored data type (the header's datatype) is not one of the spec's image_dtypes; the spec allows "
        "int16 for TotalSegmentator, whose CTs store Hounsfield units as they are. The stored type is judged, "
        "whatever scl_slope and scl_inter make of it: a uint16 CT with scl_inter -1024 loads air at -1024 HU in "
        "nibabel and ITK, and is still reported; details give the dtype and the scaling.",
        "Float CTs are twice the size and hint at a resampled or rescaled image. An unsigned CT holds air only "
        "through its scaling: every reader that takes the stored values (nibabel's dataobj.get_unscaled(), raw "
        "readers, a converter that drops the header's scaling) sees air near 0 and water near 1000, and the cases "
        "of one release differ in how they must be read.",
        "Convert the image to the release's data type with its scaling applied (int16 HU, scl_slope 1, scl_inter 0).",
    ),
    Code(
        "LABEL_DTYPE", "error", "a mask's stored data type or scaling is not allowed",
        "The mask stores voxels in a type the spec does not allow, or its header scaling (scl_slope, scl_inter) "
        "makes a "
        "stored 0 or 1 load as something else. details give the dtype and the scaling.",
        "Binary masks loaded as floats like 0.999 fail equality tests; the wrong type multiplies the size on disk.",
        "Rewrite the mask as uint8 with scl_slope 1 and scl_inter 0 (or NaN, meaning none).",
        subcodes=(
            Subcode("dtype", "the stored data type is not one of the spec's mask_dtypes"),
            Subcode("scaling", "scl_slope or scl_inter make a stored 0 or 1 load as something else"),
        ),
    ),
]

_CODES += [
    Code(
        "LABEL_VALUES", "error", "a mask holds values other than 0 and 1",
        "A class mask must be binary. details.values lists the other values found with their voxel counts (at most "
        "20).",
        "Converters that build a multi-label map by multiplying or summing masks produce wrong labels; thresholds at "
        "0.5 "
        "or equality tests with 1 silently drop or add voxels.",
        "Binarise the mask (value > 0 -> 1) if the extra values are an export artefact, or find which tool wrote them.",
        needs="deep",
    ),
    Code(
        "LABEL_OVERLAP", "warning", "two masks of a case share voxels",
        "Two class masks of one case mark the same voxels. details give both classes, the voxel count, the volume in "
        "mL and "
        "the share of the smaller mask. The severity comes from the spec's values.overlap_warning_share and "
        "overlap_error_share (below the warning share it is info); the report also aggregates overlaps per class pair.",
        "Converting to one label map lets the later class win silently, so the earlier class loses voxels in "
        "training data.",
        "Decide which class owns the shared voxels and remove them from the other mask.",
        needs="deep",
    ),
    Code(
        "LABEL_IN_PADDING", "warning", "a mask reaches into the image's padding",
        "Part of a mask lies where the image holds only its padding value (the constant minimum that fills the region "
        "outside the scanned volume, when at least 1% of the image has it). details give the voxels there and their "
        "share "
        "of the mask; reported from the spec's values.padding_share on, except for classes in values.padding_exempt "
        "(air-filled organs, whose air a clipped scanner writes as the same value).",
        "Labels beyond the scanned volume are annotation errors: a model is taught that an organ lies where no data "
        "is.",
        "Crop the mask to the scanned volume, or look at the case: the mask may belong to another case or be shifted.",
        needs="deep",
    ),
    Code(
        "LABEL_POSITION", "warning", "a mask lies where its class cannot be",
        "A mask's centroid (world RAS millimetres) breaks the spec's anatomy rules by more than anatomy.tolerance_mm: "
        "a vertebra above its upper neighbour (head_to_feet), a class below one it must lie above (e.g. heart below "
        "the "
        "liver, a lung lobe below it), or a *_left class on the subject's right of its *_right twin. details give both "
        "classes, both centroids and the distance out of place.",
        "Swapped or mislabelled masks teach a model the wrong anatomy; neighbouring vertebrae were mixed up in "
        "10-15% of "
        "reviewed v2.0.1 cases, and hearts were labelled in the abdomen.",
        "Open the case with both masks and relabel the one that is wrong (often two neighbours are swapped).",
        needs="deep",
        subcodes=(
            Subcode("order", "a member of a head-to-feet sequence lies above the one before it"),
            Subcode("above", "a class lies below one it must lie above"),
            Subcode("side", "an *_left class lies on the subject's right of its *_right twin"),
        ),
    ),
    Code(
        "LABEL_ALL_EMPTY", "error", "every mask of a case is empty",
        "The case has masks but none of them marks a single voxel.",
        "A case without annotation teaches a model that nothing is there; a whole MRI release once shipped dozens of "
        "such "
        "cases with matching checksums.",
        "Re-export the segmentations of the case, or drop the case from the release.",
        needs="deep",
    ),
    Code(
        "IMAGE_VALUES", "error", "the image holds implausible values",
        "The image has NaN or infinite voxels, or values outside the spec's values.image_min .. image_max (loaded "
        "units, "
        "HU for CT). details give the measured min, max and the NaN and infinity counts.",
        "Normalisation by min/max or percentiles is thrown off; NaN spreads through every computation. One pre-release "
        "TotalSegmentator CT went from -9758 to 4349 HU.",
        "Re-export the image from the source DICOM, or clip the padding to the scanner's minimum.",
        needs="deep",
    ),
    Code(
        "IMAGE_NOT_CT", "error", "the image is no CT in Hounsfield units: blank, shifted or a label map",
        "The image as a whole cannot be a CT in HU, judged on its voxel percentiles and the HU inside its masks "
        "(values.hu_scale). blank: 98% of its voxels (p1 to p99) lie within blank_spread HU, and so do the means "
        "inside its masks (a body in under 1% of the voxels still has tissue inside its masks): no anatomy. "
        "label_map: "
        "every value is a whole number from 0 to label_max: a segmentation saved as the image. shifted: no voxel "
        "lies below shifted_min HU (no air, lung or fat), or at least shifted_mask_share of the masks judged by "
        "labels.hu (shifted_min_masks or more) lie above their group's range: the values are raw scanner values, "
        "the intercept -1024 lost. The masks of such a case are not blamed: their LABEL_HU and LABEL_IN_PADDING "
        "warnings (a blank image is all padding) are left out, and the masks out of their HU range counted in this "
        "finding's details (masks_out_of_range). "
        "details give the percentiles and, for shifted, the median offset of the masks from their ranges.",
        "Every intensity-based use of the case is wrong: normalisation, windowing, the HU checks of its masks, and "
        "a model trained on it learns tissue 1,000 HU off or no image at all.",
        "Re-export the CT from its source DICOM with RescaleIntercept and RescaleSlope applied (int16 HU); put the "
        "CT, not a segmentation, at the image's path.",
        needs="deep",
        subcodes=(
            Subcode("blank", "98% of the voxels within a few HU of each other: an empty (all -1024) or constant image"),
            Subcode("shifted", "tissue about 1,000 HU too high: raw scanner values stored without their intercept"),
            Subcode("label_map", "whole numbers from 0 to a few hundred only: a segmentation stored as the CT"),
        ),
    ),
    Code(
        "LABEL_CHAIN", "warning", "a chain of classes has a gap or two members labelled as one",
        "The spec's chains (labels.chains: vertebrae C1 to S1, the ribs of each side) run head to feet without a "
        "gap. gap: a member is empty while members above and below it are not, so the gap lies inside the field of "
        "view. merged: a member's volume is far above what its whole neighbours predict (their volumes scaled by the "
        "spec's reference volumes, log-interpolated along the chain), at least labels.merged.volume_ratio, or "
        "soft_volume_ratio together with a head-to-feet extent ratio of extent_ratio (a tall member alone is info). "
        "details give the ratio, the prediction and the neighbours used. Masks cut by the field of view neither "
        "are judged nor predict.",
        "Neighbouring vertebrae merged into one mask or mixed up were the worst known defect of v2.0.1 (10-15% of "
        "about 100 reviewed cases, fixed only in v3): a model trained on them learns to skip or fuse levels. A merge "
        "usually leaves its partner empty, so gap and merged often come together.",
        "Open the case: split the merged mask at the disc (or relabel the levels), and fill the missing member. A "
        "true block vertebra, surgical fusion or a transitional L5/S1 can explain a merged finding; say so in a "
        "waiver.",
        needs="deep",
        subcodes=(
            Subcode("gap", "a member is empty between two members that are not"),
            Subcode("merged", "a member is far larger or taller than its neighbours predict"),
        ),
    ),
    Code(
        "LABEL_FRAGMENTS", "warning", "a mask expected in one piece has extra pieces",
        "A class the spec expects in at most N connected pieces (labels.pieces.expected; 26-connected, pieces below "
        "labels.pieces.min_ml or min_share of the mask not counted) has more. share: an extra piece holds at least "
        "warning_share of the mask; far: an extra piece lies more than far_mm from the largest (gap between their "
        "bounding boxes); minor: neither, info. A mask cut by the field of view gets info whatever its pieces: a cut "
        "through a curved organ splits it. details give the count, the sizes (mL) and the distances.",
        "A piece of another organ labelled as this one, or noisy islands, corrupts volumes and teaches a model to "
        "predict islands; v2.0.1 masks were partly model output with such islands.",
        "Open the case with the mask: delete islands that are not the organ, or give a mislabelled piece its own class."
        " Splenules, an os acromiale or a fracture can be real extra pieces.",
        needs="deep",
        subcodes=(
            Subcode("share", "an extra piece holds a large share of the mask"),
            Subcode("far", "an extra piece lies far from the main one"),
            Subcode("minor", "small extra pieces near the main one, or a mask cut by the field of view"),
        ),
    ),
    Code(
        "LABEL_TRUNCATED", "info", "a mask is cut by the field of view",
        "A non-empty mask touches the first or last slice of its grid along the head-to-feet axis (slices) or an "
        "in-plane edge (edge): the organ continues outside the image. Truncated masks are left out of the class "
        "volume statistics and of the checks that assume a whole organ (LABEL_CHAIN:merged, LABEL_FRAGMENTS' "
        "warnings, LABEL_OUTLIER). details name the faces touched and the mask's head-to-feet extent.",
        "A cut organ counted as whole skews volumes and every statistic built on them; models evaluated on volumes "
        "or on whole-organ metrics need to know.",
        "Nothing to fix in the labels; use the list to exclude cut organs from volumetric analyses.",
        needs="deep",
        subcodes=(
            Subcode("slices", "the mask touches the first or last slice along the head-to-feet axis"),
            Subcode("edge", "the mask touches an in-plane edge of the grid"),
        ),
    ),
    Code(
        "LABEL_HU", "warning", "the image inside a mask is implausible for its class",
        "The mean image value inside a mask of at least labels.hu.min_voxels voxels lies outside its class group's "
        "range (labels.hu.groups: bone well above soft tissue, lung far below, ranges wide enough for every contrast "
        "phase), or its standard deviation exceeds the group's sd_max (another tissue inside). A mean above the range "
        "is info for groups where contrast or metal commonly explain it. details give the mean, the standard "
        "deviation and the group's range.",
        "A 'liver' at -800 HU is lung, a 'humerus' at 40 HU is muscle: the label names the wrong structure, a swap or "
        "a mask where the organ is not.",
        "Open the case with the mask on its CT and relabel or redraw it; check the mask is aligned with its image.",
        needs="deep",
        subcodes=(
            Subcode("low", "the mean is below the class's range"),
            Subcode("high", "the mean is above the class's range"),
            Subcode("spread", "the standard deviation is above the class's bound"),
        ),
    ),
    Code(
        "LABEL_OUTLIER", "warning", "a mask is far larger or smaller than its class elsewhere in the release",
        "Per class, over the release's whole (not truncated) non-empty masks, with at least labels.outliers.min_cases "
        "of them: the robust z-score 0.6745 (ln x - median) / MAD of the log volume (volume) or of the log "
        "head-to-feet extent (extent) is at least z_info (info) or z_warning (warning). details give the z-score, the "
        "value and the class's quartiles.",
        "An organ three times its class's size is a label error (two organs in one mask, a mask grown into its "
        "neighbours) or a rare pathology worth knowing; either way it skews the class's statistics.",
        "Open the case with the mask: fix it if it covers more (or less) than the organ; a real pathology "
        "(splenomegaly, a distended bladder) can be waived.",
        needs="deep",
        subcodes=(
            Subcode("volume", "the mask's volume is an outlier of its class"),
            Subcode("extent", "the mask's head-to-feet extent is an outlier of its class"),
        ),
    ),
    Code(
        "RELEASE_DRIFT", "warning", "a class's coverage or volume moved away from the reference",
        "The spec's reference table (reference: per class coverage and mean volume of the non-empty masks, e.g. the "
        "v2 dataset card) against this release: a class whose coverage moved by at least reference.info.coverage_pp "
        "percentage points (coverage) or whose mean volume moved by at least reference.info.volume_ratio (volume), "
        "each also at least z standard errors of the release's own estimate, is info; beyond reference.warning it is "
        "a warning. details give both values, the change and z.",
        "A class emptied in many cases, a changed class definition, or a unit or spacing error (1 mm written as "
        "1.5 mm is 3.4x the volume) shows first as a class moving against the last release.",
        "Check what changed for the class: its masks, its definition, the cases added or removed; update the "
        "reference when the change is intended.",
        needs="deep",
        subcodes=(
            Subcode("coverage", "the share of cases containing the class moved"),
            Subcode("volume", "the class's mean volume moved"),
        ),
    ),
    Code(
        "QA_INTERNAL", "error", "tsqa could not check a case or a file",
        "Checking this case raised an unexpected error or killed its worker process (the other cases were checked), "
        "or reading or measuring one file raised an unexpected error (the case's other files were checked; the "
        "finding is on that file's path). A case runs in a worker process of its own (one case per worker at a time, "
        "even with --jobs 1); when that process dies (a crash, the kernel's out-of-memory killer, a kill), the case "
        "runs once more in a fresh worker, and only a second death makes this finding. details.error says what "
        "happened.",
        "Nothing is known about the case or the file, so it must not pass silently.",
        "Look at the file or the case's files by hand, and report the error to tsqa's developers with the details.",
        subcodes=(
            Subcode("crash", "the worker process checking the case died twice (crash or killed)"),
            Subcode("error", "checking the case raised an unexpected error"),
            Subcode("file", "reading or measuring one file raised an unexpected error"),
        ),
    ),
    Code(
        "QA_PARTIAL", "warning", "tsqa checked a case only in part",
        "Measuring the case in full at once needs more memory than --max-memory allows (its files declare a large "
        "grid, or a mask has very many voxels or a very large bounding box), so the deep pass left a measurement out. "
        "Every byte was still decompressed and verified, and the image and every mask were measured (values, voxels, "
        "extent), streamed in bounded steps where they did not fit whole. A case's cost is estimated from its image's "
        "header before it starts, and cases run side by side only while their costs fit in --max-memory together; a "
        "case too large for it runs alone with the most complete plan that fits. details.reason says what it would "
        "have needed.",
        "A problem of the kind left out cannot be seen in this case: its absence from the report proves nothing.",
        "Run again with a larger --max-memory where the machine has it (the reason says how much the case needs), "
        "or look at the file: a grid declared far larger than the release's others is a problem of its own.",
        needs="deep",
        subcodes=(
            Subcode("overlaps", "shared voxels were not counted (LABEL_OVERLAP): for the whole case (no room for "
                                "an owner per voxel), or for one mask (no room for its voxels' indices)"),
            Subcode("padding", "the image was streamed, not held: no mask was measured against it "
                               "(LABEL_IN_PADDING, LABEL_HU)"),
            Subcode("pieces", "a mask's connected pieces were not counted (LABEL_FRAGMENTS): it was streamed and its "
                              "voxels' indices did not fit, or labelling its bounding box did not"),
        ),
    ),
    Code(
        "QA_WAIVER_EXPIRED", "warning", "a waiver has expired",
        "An entry of the --waivers file has an `expires` date before the day of the check (--today, by default "
        "today in UTC), so it no longer applies: the findings it matched count for --fail-on again. details give the "
        "waivers file, the entry's number and line, what it matched on, its reason and expiry, and how many findings "
        "it would have waived. Made by --waivers, not by a check of the release.",
        "A waiver accepts a known problem until a date; past it the problem must be fixed or accepted again on "
        "purpose, not forgotten.",
        "Fix what the waiver covered, or, if the problem is still accepted, give the entry a new `expires` date (and "
        "say why in its reason).",
    ),
    Code(
        "QA_WAIVER_UNUSED", "info", "a waiver matched no finding",
        "An entry of the --waivers file that is in force matched no finding of this run: the problem it accepted is "
        "gone, or the entry names a code, subcode, case, path or class that never occurs. details give the waivers "
        "file, the entry's number and line and what it matches on. Made by --waivers, not by a check of the release.",
        "A stale waiver silently accepts the problem if it comes back; a mistyped one never accepted what it was "
        "meant to.",
        "Delete the entry if its problem is fixed; otherwise correct what it matches on (`tsqa explain CODE` lists "
        "subcodes; case, path and class are globs).",
    ),
]

# A release read from a zip archive: the archive as a whole (tsqa check FILE.zip).
_CODES += [
    Code(
        "ARCHIVE_CHECKSUM", "error", "the archive's size or MD5 differs from the published one",
        "The zip file's size, or the MD5 of all its bytes, differs from the spec's `archives` entry of its name (or, "
        "for a renamed download, the entry of its size). details give the archive's and the published values, and "
        "for a size how many bytes are missing or extra. A size that differs is reported alone: the MD5 then differs "
        "too.",
        "A download that does not match its published checksum is cut off or damaged somewhere: a member inside can "
        "be broken while every header looks right.",
        "Download the archive again (a download manager that resumes and verifies helps) and compare `md5sum FILE` "
        "with the record's checksum.",
        subcodes=(
            Subcode("size", "the archive's size differs from the published size: an interrupted or padded download"),
            Subcode("digest", "the size matches but the MD5 digest does not: bytes changed somewhere in the file"),
        ),
    ),
    Code(
        "ARCHIVE_UNVERIFIED", "info", "the archive's download cannot be verified",
        "The archive could not be compared with a published checksum: the spec's `archives` list no archive of its "
        "name or size (or the entry gives neither), the MD5 was not computed (--no-checksum: the size is still "
        "compared), or reading the archive for it failed. details give the archive's size and what is published.",
        "Without a comparison, a download damaged between the releasing and the reading machine goes unseen, unless "
        "it breaks a member's CRC (the deep pass verifies every member's) or a header.",
        "Add the archive's name, size and MD5 to the spec's `archives` (from the release's record), or run without "
        "--no-checksum.",
        subcodes=(
            Subcode("unknown", "the spec lists no archive of this name or size, or its entry gives neither"),
            Subcode("skipped", "the MD5 was not computed (--no-checksum); the size was compared"),
            Subcode("unreadable", "reading the archive for its MD5 failed"),
        ),
    ),
    Code(
        "ARCHIVE_TRUNCATED", "error", "the archive is cut off: an interrupted download",
        "The archive has no end of central directory record: its tail is missing. tsqa walked its local headers from "
        "the start instead and checked every complete member as usual, so the cases the report shows without "
        "findings are intact. The finding names the first incomplete member (path) with the bytes of its data "
        "present and missing (details.present, details.missing; null when its size is only written after its data), "
        "and how many members before it are complete. Cases that lay beyond the cut are not in the file: they show "
        "as CASE_MISSING (when meta.csv arrived) and the cut case's absent files as FILE_MISSING.",
        "Every member after the cut is missing, and tools that read the central directory (unzip, Python's zipfile) "
        "refuse the whole archive.",
        "Resume or repeat the download (`curl -C - -O URL` resumes), then check again; the MD5 tells when it is "
        "complete.",
        subcodes=(
            Subcode("member", "the archive ends inside a member: its header or its data is cut"),
            Subcode("directory", "every member found is complete, but the central directory at the end is missing or "
                                 "cut: more members may have followed"),
        ),
    ),
    Code(
        "ARCHIVE_CORRUPT", "error", "the archive's structure is damaged",
        "The central directory that the end record points at cannot be read (an entry's signature, a ZIP64 field or "
        "the entry count is wrong), or walking the local headers meets bytes that are no member header. Members "
        "found before the damage are checked; details.reason says what and where.",
        "unzip and Python's zipfile refuse the archive or extract only part of it.",
        "Download the archive again; if the published archive itself is damaged, tell its maintainers.",
    ),
    Code(
        "ARCHIVE_MEMBER", "error", "an archive member is never read: hostile or impossible to extract faithfully",
        "A member whose name is absolute or reaches out of the release with '..' (an unzip tool writes it outside "
        "the target folder, or refuses it), a name taken by more than one member (or by a member and a folder: the "
        "extracted content depends on the tool), a member that declares an absurd size or would inflate more than "
        "100-fold to over 256 MiB (a decompression bomb), or a member whose data overlaps another's (an "
        "overlapping-member bomb). tsqa never inflates or reads such a member; where it has a path in the release "
        "and is an expected file, that file also shows as FILE_CORRUPT:unreadable. details.name is the name as "
        "stored.",
        "Extracting the archive writes outside the target, silently keeps one of two contents, or fills the disk.",
        "Rebuild the archive from the release folder (`cd release && zip -r ../release.zip .`), with one member per "
        "file and relative names.",
        subcodes=(
            Subcode("absolute", "an absolute name (/..., C:...)"),
            Subcode("parent", "a name with a '..' part, which reaches out of the release"),
            Subcode("duplicate", "more than one member of this name, or a member and a folder"),
            Subcode("bomb", "a declared size that is absurd, or a compression ratio only a bomb has"),
            Subcode("overlap", "its data overlaps another member's or the central directory"),
        ),
    ),
]

CODES: dict[str, Code] = {c.code: c for c in _CODES}
